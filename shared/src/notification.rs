//! Notifications: which event type, at what offset from its moment, for
//! which customers. A fresh install has one system notification per type.

use crate::entity::Entity;
use crate::error::ApiError;
use crate::event_type::EventType;
use crate::fields::Fields;
use crate::ids::random_id;
use crate::offset::Offset;
use crate::time::Time;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub id: String,
    pub name: String,
    pub event_type: EventType,
    pub offset: Offset,
    pub catch_up: Offset,
    pub enabled: bool,
    pub system: bool,
    pub filter: Filter,
    pub created_at: Time,
    pub updated_at: Time,
    /// Threshold notifications only: the value whose crossing fires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// Usage thresholds only: the metric summed per UTC month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// Threshold notifications only: also send `*_resolved` on the way back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_on_resolve: Option<bool>,
    /// Threshold notifications only: evaluate every customer when created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluate_on_create: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Filter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_ids: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_fields: BTreeMap<String, String>,
}

impl Filter {
    pub fn matches(&self, customer_id: &str, custom_fields: &BTreeMap<String, String>) -> bool {
        let customer_ok = self
            .customer_ids
            .as_ref()
            .is_none_or(|ids| ids.iter().any(|id| id == customer_id));
        customer_ok
            && self
                .custom_fields
                .iter()
                .all(|(k, v)| custom_fields.get(k) == Some(v))
    }

    fn parse(value: &Value) -> Result<Filter, ApiError> {
        let f = Fields::of(value, "filter")?;
        let filter = Filter {
            customer_ids: f.optional_strings("customer_ids")?,
            custom_fields: f.string_map("custom_fields")?,
        };
        Ok(filter)
    }
}

/// The contract's default `catch_up`; a deployment may set another (`Config::default_catch_up`).
pub const DEFAULT_CATCH_UP: &str = "PT24H";

impl Notification {
    /// Whether this notification is about this entity at all.
    pub fn applies_to(&self, entity: &Entity) -> bool {
        self.enabled
            && self.event_type.kind() == Some(entity.kind())
            && self
                .filter
                .matches(entity.customer_id(), entity.custom_fields())
    }

    pub fn is_threshold(&self) -> bool {
        self.threshold.is_some()
    }

    /// Whether this threshold notification watches this customer (and metric).
    pub fn watches(&self, customer_id: &str, metric: Option<&str>) -> bool {
        self.enabled
            && self.is_threshold()
            && self.metric.as_deref() == metric
            && self.filter.matches(customer_id, &BTreeMap::new())
    }

    /// The fixed id of the system notification of a type.
    pub fn system_id(event_type: EventType) -> String {
        format!("ntf_system_{}", event_type.as_str().replace('.', "_"))
    }

    /// The 15 enabled system notifications of a fresh install.
    pub fn system_defaults(now: Time) -> Vec<Notification> {
        EventType::ALL
            .into_iter()
            .map(|event_type| Notification {
                id: Self::system_id(event_type),
                name: format!("System: {}", event_type.as_str()),
                event_type,
                offset: Offset::zero(),
                catch_up: Offset::parse(DEFAULT_CATCH_UP).expect("default catch-up parses"),
                enabled: true,
                system: true,
                filter: Filter::default(),
                created_at: now,
                updated_at: now,
                threshold: None,
                metric: None,
                notify_on_resolve: None,
                evaluate_on_create: None,
            })
            .collect()
    }

    /// A new notification from a `POST /v1/notifications` body.
    pub fn create(body: &Value, now: Time) -> Result<Notification, ApiError> {
        let f = Fields::of(body, "")?;
        let type_name = f.string("event_type")?;
        let event_type = parse_event_type(&type_name)?;
        let mut notification = Notification {
            id: random_id("ntf"),
            name: f
                .optional_string("name")?
                .unwrap_or_else(|| type_name.clone()),
            event_type,
            offset: Offset::zero(),
            catch_up: Offset::parse(DEFAULT_CATCH_UP).expect("default catch-up parses"),
            enabled: true,
            system: false,
            filter: Filter::default(),
            created_at: now,
            updated_at: now,
            threshold: None,
            metric: None,
            notify_on_resolve: None,
            evaluate_on_create: None,
        };
        if EventType::THRESHOLD.contains(&event_type) {
            if f.given("threshold").is_none() {
                return Err(ApiError::invalid("threshold", "`threshold` is required"));
            }
            notification.threshold = Some(0.0);
            notification.notify_on_resolve = Some(false);
            notification.evaluate_on_create =
                Some(f.optional_bool("evaluate_on_create")?.unwrap_or(true));
        }
        notification.apply_fields(&f)?;
        Ok(notification)
    }

    /// Applies a `PATCH` body. System notifications only take `enabled`.
    pub fn patch(&mut self, body: &Value, now: Time) -> Result<(), ApiError> {
        let f = Fields::of(body, "")?;
        if let Some(type_name) = f.optional_string("event_type")? {
            if type_name != self.event_type.as_str() {
                return Err(ApiError::invalid(
                    "event_type",
                    "`event_type` cannot be changed; create a new notification",
                ));
            }
        }
        if self.system {
            if let Some(field) = ["name", "offset", "catch_up", "filter"]
                .into_iter()
                .find(|k| f.has(k))
            {
                return Err(ApiError::conflict(
                    "system notifications can be enabled or disabled, not edited",
                )
                .at(field));
            }
        }
        if let Some(name) = f.optional_string("name")? {
            self.name = name;
        }
        self.apply_fields(&f)?;
        self.updated_at = now;
        Ok(())
    }

    fn apply_fields(&mut self, f: &Fields) -> Result<(), ApiError> {
        if self.name.is_empty() || self.name.len() > 200 {
            return Err(ApiError::invalid(
                "name",
                "`name` must be 1 to 200 characters",
            ));
        }
        if let Some(text) = f.optional_string("offset")? {
            let offset = Offset::parse(&text).map_err(|m| ApiError::invalid("offset", m))?;
            if !self.event_type.is_time_based() && !offset.is_zero() {
                return Err(ApiError::invalid(
                    "offset",
                    format!("only time-based event types take an offset; `{}` fires when the write is accepted", self.event_type.as_str()),
                ));
            }
            self.offset = offset;
        } else if f.has("offset") && f.given("offset").is_none() {
            self.offset = Offset::zero();
        }
        if let Some(text) = f.optional_string("catch_up")? {
            let catch_up = Offset::parse(&text).map_err(|m| ApiError::invalid("catch_up", m))?;
            if catch_up.is_negative() {
                return Err(ApiError::invalid(
                    "catch_up",
                    "`catch_up` must not be negative",
                ));
            }
            self.catch_up = catch_up;
        }
        if let Some(enabled) = f.optional_bool("enabled")? {
            self.enabled = enabled;
        }
        if let Some(filter) = f.given("filter") {
            self.filter = Filter::parse(filter).map_err(|e| e.under("filter"))?;
        }
        self.apply_threshold_fields(f)
    }

    fn apply_threshold_fields(&mut self, f: &Fields) -> Result<(), ApiError> {
        let threshold_fields = [
            "threshold",
            "metric",
            "notify_on_resolve",
            "evaluate_on_create",
        ];
        if !self.is_threshold() {
            return match threshold_fields.into_iter().find(|k| f.given(k).is_some()) {
                Some(field) => Err(ApiError::invalid(
                    field,
                    "only threshold notifications (`alerts.*`) take this field",
                )),
                None => Ok(()),
            };
        }
        for field in ["offset", "catch_up"] {
            if f.given(field).is_some() && !self.offset.is_zero() {
                return Err(ApiError::invalid(
                    field,
                    "threshold notifications fire when the threshold is crossed",
                ));
            }
        }
        if !self.filter.custom_fields.is_empty() {
            return Err(ApiError::invalid(
                "filter.custom_fields",
                "threshold notifications filter by customer only",
            ));
        }
        if let Some(value) = f.given("threshold") {
            let threshold = value.as_f64().filter(|n| n.is_finite());
            self.threshold = Some(threshold.ok_or_else(|| {
                ApiError::invalid("threshold", "`threshold` must be a finite number")
            })?);
        }
        if let Some(metric) = f.optional_id("metric")? {
            // The same rule as usage.record's, or no signal could ever match it.
            crate::signal::check_metric(&metric)?;
            self.metric = Some(metric);
        }
        let usage = self.event_type == EventType::AlertsUsageThresholdReached;
        match (usage, &self.metric) {
            (true, None) => {
                return Err(ApiError::invalid(
                    "metric",
                    "usage thresholds need the `metric` they sum",
                ))
            }
            (false, Some(_)) => {
                return Err(ApiError::invalid(
                    "metric",
                    "only usage thresholds take a `metric`",
                ))
            }
            _ => {}
        }
        if let Some(resolve) = f.optional_bool("notify_on_resolve")? {
            self.notify_on_resolve = Some(resolve);
        }
        Ok(())
    }
}

fn parse_event_type(name: &str) -> Result<EventType, ApiError> {
    EventType::parse(name)
        .filter(|t| t.is_lifecycle() || EventType::THRESHOLD.contains(t))
        .ok_or_else(|| {
            let message = if name.starts_with("alerts.") && name.ends_with("_resolved") {
                format!("`{name}` is sent by the `_reached` notification with \"notify_on_resolve\": true")
            } else if EventType::parse(name).is_some() {
                format!("`{name}` is sent to endpoints by the system and takes no notification")
            } else {
                format!("unknown event type `{name}`")
            };
            ApiError::invalid("event_type", message)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_time;
    use serde_json::json;

    fn now() -> Time {
        parse_time("2026-11-25T00:00:00Z").unwrap()
    }

    #[test]
    fn fifteen_enabled_system_notifications() {
        let defaults = Notification::system_defaults(now());
        assert_eq!(defaults.len(), 15);
        assert!(defaults
            .iter()
            .all(|n| n.system && n.enabled && n.offset.is_zero()));
        assert_eq!(defaults[1].id, "ntf_system_contract_end");
        assert_eq!(defaults[1].catch_up.as_str(), "PT24H");
    }

    #[test]
    fn create_with_defaults_and_filter() {
        let body = json!({"name": "Renewal", "event_type": "contract.end", "offset": "-P30D",
                          "filter": {"customer_ids": ["c_1"], "custom_fields": {"tier": "enterprise"}}});
        let n = Notification::create(&body, now()).unwrap();
        assert!(n.id.starts_with("ntf_"));
        assert_eq!(n.offset.as_str(), "-P30D");
        assert_eq!(n.catch_up.as_str(), "PT24H");
        assert!(n.enabled && !n.system);
        let tier = |v: &str| BTreeMap::from([("tier".to_string(), v.to_string())]);
        assert!(n.filter.matches("c_1", &tier("enterprise")));
        assert!(!n.filter.matches("c_2", &tier("enterprise")));
        assert!(!n.filter.matches("c_1", &tier("free")));
    }

    #[test]
    fn refusals_name_the_field() {
        let cases = [
            (json!({"event_type": "contract.finish"}), "event_type", 422),
            (
                json!({"event_type": "alerts.spend_threshold_resolved", "threshold": 5}),
                "event_type",
                422,
            ),
            (
                json!({"event_type": "alerts.spend_threshold_reached"}),
                "threshold",
                422,
            ),
            (
                json!({"event_type": "alerts.spend_threshold_reached", "threshold": "5"}),
                "threshold",
                422,
            ),
            (
                json!({"event_type": "alerts.spend_threshold_reached", "threshold": 5, "metric": "calls"}),
                "metric",
                422,
            ),
            (
                json!({"event_type": "alerts.usage_threshold_reached", "threshold": 5}),
                "metric",
                422,
            ),
            (
                json!({"event_type": "alerts.usage_threshold_reached", "threshold": 5, "metric": "api calls"}),
                "metric",
                422,
            ),
            (
                json!({"event_type": "alerts.spend_threshold_reached", "threshold": 5, "offset": "-P1D"}),
                "offset",
                422,
            ),
            (
                json!({"event_type": "alerts.spend_threshold_reached", "threshold": 5, "filter": {"custom_fields": {"a": "b"}}}),
                "filter.custom_fields",
                422,
            ),
            (
                json!({"event_type": "contract.end", "threshold": 5}),
                "threshold",
                422,
            ),
            (
                json!({"event_type": "contract.end", "offset": "-P30X"}),
                "offset",
                422,
            ),
            (
                json!({"event_type": "contract.end", "offset": "P11Y"}),
                "offset",
                422,
            ),
            (
                json!({"event_type": "contract.end", "offset": 30}),
                "offset",
                422,
            ),
            (
                json!({"event_type": "contract.create", "offset": "-P1D"}),
                "offset",
                422,
            ),
            (
                json!({"event_type": "contract.end", "catch_up": "-PT1H"}),
                "catch_up",
                422,
            ),
            (
                json!({"event_type": "contract.end", "enabled": "yes"}),
                "enabled",
                422,
            ),
            (
                json!({"event_type": "contract.end", "filter": {"customer_ids": "c_1"}}),
                "filter.customer_ids",
                422,
            ),
            (
                json!({"event_type": "contract.end", "name": ""}),
                "name",
                422,
            ),
        ];
        for (body, field, status) in cases {
            let error = Notification::create(&body, now()).unwrap_err();
            assert_eq!(
                (error.field.as_deref(), error.status),
                (Some(field), status),
                "{body}: {error}"
            );
        }
    }

    #[test]
    fn system_notifications_only_toggle() {
        let mut n = Notification::system_defaults(now()).remove(0);
        n.patch(&json!({"enabled": false}), now()).unwrap();
        assert!(!n.enabled);
        let error = n.patch(&json!({"offset": "-P1D"}), now()).unwrap_err();
        assert_eq!(
            (error.status, error.field.as_deref()),
            (409, Some("offset"))
        );
    }

    #[test]
    fn patch_edits_fields() {
        let mut n = Notification::create(
            &json!({"event_type": "credit.segment.end", "offset": "PT2H"}),
            now(),
        )
        .unwrap();
        n.patch(
            &json!({"offset": "-P1M", "name": "x", "catch_up": "PT0S"}),
            now(),
        )
        .unwrap();
        assert_eq!(
            (n.offset.as_str(), n.name.as_str(), n.catch_up.as_str()),
            ("-P1M", "x", "PT0S")
        );
        assert_eq!(
            n.patch(&json!({"event_type": "credit.segment.start"}), now())
                .unwrap_err()
                .status,
            422
        );
    }
}
