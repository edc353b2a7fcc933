//! Write events: `{"id", "type": "contract.create", "occurred_at", "data"}`,
//! alone or as `{"events": [...]}` of up to 500, validated whole.

use crate::entity::{Entity, EntityKey, EntityKind};
use crate::error::ApiError;
use crate::event_type::WriteAction;
use crate::fields::Fields;
use crate::signal::{is_signal_type, Signal};
use crate::time::Time;
use serde_json::Value;

/// One event of `POST /v1/events`: a write to an entity, or a usage signal.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Write(WriteEvent),
    Signal(Signal),
}

impl Event {
    pub fn id(&self) -> &str {
        match self {
            Event::Write(w) => &w.id,
            Event::Signal(s) => &s.id,
        }
    }

    /// Its `type`, as the request named it: `contract.create`, `usage.record`.
    pub fn type_name(&self) -> String {
        match self {
            Event::Write(w) => format!("{}.{}", w.kind.as_str(), w.action.as_str()),
            Event::Signal(s) => s.type_name().to_string(),
        }
    }
}

pub const MAX_BATCH: usize = 500;

#[derive(Clone, Debug, PartialEq)]
pub struct WriteEvent {
    pub id: String,
    pub kind: EntityKind,
    pub action: WriteAction,
    pub occurred_at: Time,
    pub change: Change,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// The full state after a create or an edit.
    Put(Entity),
    Archive {
        id: String,
        customer_id: String,
    },
}

impl WriteEvent {
    pub fn key(&self) -> EntityKey {
        let id = match &self.change {
            Change::Put(entity) => entity.id().to_string(),
            Change::Archive { id, .. } => id.clone(),
        };
        EntityKey {
            kind: self.kind,
            id,
        }
    }

    pub fn customer_id(&self) -> &str {
        match &self.change {
            Change::Put(entity) => entity.customer_id(),
            Change::Archive { customer_id, .. } => customer_id,
        }
    }
}

/// The events of a request body; one bad event refuses them all, naming it.
pub fn parse_events(body: &Value) -> Result<Vec<Event>, ApiError> {
    let Value::Object(object) = body else {
        return Err(ApiError::malformed(
            "the body must be a JSON object: one event or {\"events\": [...]}",
        ));
    };
    let Some(events) = object.get("events") else {
        return Ok(vec![parse_any(body)?]);
    };
    let items = events
        .as_array()
        .ok_or_else(|| ApiError::invalid("events", "`events` must be an array"))?;
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(ApiError::invalid(
            "events",
            format!("`events` must hold 1 to {MAX_BATCH} events"),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| parse_any(item).map_err(|e| e.under(&format!("events[{i}]"))))
        .collect()
}

/// A write event (a signal is refused).
pub fn parse_event(value: &Value) -> Result<WriteEvent, ApiError> {
    match parse_any(value)? {
        Event::Write(write) => Ok(write),
        Event::Signal(_) => Err(ApiError::invalid(
            "type",
            "expected a write event, not a usage signal",
        )),
    }
}

fn parse_any(value: &Value) -> Result<Event, ApiError> {
    let f = Fields::of(value, "")?;
    let id = f.id("id")?;
    let type_name = f.string("type")?;
    if is_signal_type(&type_name) {
        let occurred_at = f.time("occurred_at")?;
        return Ok(Event::Signal(Signal::parse(
            id,
            &type_name,
            occurred_at,
            f.required("data")?,
        )?));
    }
    let (kind, action) = parse_type(&type_name)?;
    let occurred_at = f.time("occurred_at")?;
    let data = f.required("data")?;
    let change = match action {
        WriteAction::Archive => {
            let d = Fields::of(data, "data")?;
            Change::Archive {
                id: d.id("id").map_err(|e| e.under("data"))?,
                customer_id: d.id("customer_id").map_err(|e| e.under("data"))?,
            }
        }
        _ => Change::Put(Entity::parse(kind, data).map_err(|e| e.under("data"))?),
    };
    Ok(Event::Write(WriteEvent {
        id,
        kind,
        action,
        occurred_at,
        change,
    }))
}

fn parse_type(name: &str) -> Result<(EntityKind, WriteAction), ApiError> {
    let parsed = name.split_once('.').and_then(|(kind, action)| {
        let action = match action {
            "create" => WriteAction::Create,
            "edit" => WriteAction::Edit,
            "archive" => WriteAction::Archive,
            _ => return None,
        };
        Some((EntityKind::parse(kind)?, action))
    });
    parsed.ok_or_else(|| {
        ApiError::invalid(
            "type",
            format!("unknown event type `{name}`: expected contract|commit|credit . create|edit|archive, balance.update, spend.update or usage.record"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn contract(id: &str) -> Value {
        json!({"id": "wr_1", "type": "contract.create", "occurred_at": "2026-11-25T10:00:00Z",
               "data": {"id": id, "customer_id": "c_1", "starting_at": "2026-12-01T00:00:00Z"}})
    }

    #[test]
    fn one_event_or_a_batch() {
        assert_eq!(parse_events(&contract("k_1")).unwrap().len(), 1);
        let batch = json!({"events": [contract("k_1"), contract("k_2")]});
        let events = parse_events(&batch).unwrap();
        let Event::Write(second) = &events[1] else {
            panic!("a write")
        };
        assert_eq!(
            second.key(),
            EntityKey {
                kind: EntityKind::Contract,
                id: "k_2".into()
            }
        );
    }

    #[test]
    fn a_bad_event_in_a_batch_is_named_by_index() {
        let mut bad = contract("k_3");
        bad["data"]["starting_at"] = json!(12);
        let batch = json!({"events": [contract("k_1"), contract("k_2"), bad]});
        let error = parse_events(&batch).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("events[2].data.starting_at"));
        assert_eq!(error.status, 422);
    }

    #[test]
    fn refusals() {
        let mut unknown = contract("k");
        unknown["type"] = json!("contract.delete");
        assert_eq!(
            parse_events(&unknown).unwrap_err().field.as_deref(),
            Some("type")
        );
        let mut no_time = contract("k");
        no_time.as_object_mut().unwrap().remove("occurred_at");
        assert_eq!(
            parse_events(&no_time).unwrap_err().field.as_deref(),
            Some("occurred_at")
        );
        assert_eq!(parse_events(&json!([1])).unwrap_err().status, 400);
        assert_eq!(
            parse_events(&json!({"events": []}))
                .unwrap_err()
                .field
                .as_deref(),
            Some("events")
        );
        let archive = json!({"id": "wr_2", "type": "credit.archive", "occurred_at": "2026-11-25T10:00:00Z", "data": {"id": "cr_1"}});
        assert_eq!(
            parse_events(&archive).unwrap_err().field.as_deref(),
            Some("data.customer_id")
        );
    }

    #[test]
    fn archive_needs_only_ids() {
        let archive = json!({"id": "wr_2", "type": "credit.archive", "occurred_at": "2026-11-25T10:00:00Z",
                             "data": {"id": "cr_1", "customer_id": "c_1"}});
        let event = parse_event(&archive).unwrap();
        assert_eq!(event.action, WriteAction::Archive);
        assert_eq!(event.customer_id(), "c_1");
    }
}
