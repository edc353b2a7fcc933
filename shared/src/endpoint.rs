//! Webhook endpoints: where notifications go, which types they take, and the
//! secrets that sign them (the old one keeps signing for a day after a rotation).

use crate::endpoint_kind::{AwsAllowList, EndpointKind};
use crate::error::ApiError;
use crate::event_type::EventType;
use crate::fields::Fields;
use crate::ids::random_id;
use crate::signing::generate_secret;
use crate::time::Time;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// How long a rotated-out secret keeps signing beside the new one.
pub const ROTATION_GRACE_HOURS: i64 = 24;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub id: String,
    #[serde(default)]
    pub kind: EndpointKind,
    /// Where it sends: the webhook URL, the bus ARN or the queue URL (`kind`).
    pub url: String,
    pub description: Option<String>,
    /// None: every event type.
    pub event_types: Option<Vec<EventType>>,
    pub enabled: bool,
    pub secrets: Vec<Secret>,
    pub created_at: Time,
    pub updated_at: Time,
    /// Since when every attempt has failed (None while it is healthy).
    #[serde(default)]
    pub failing_since: Option<Time>,
    /// Why it was disabled, when it was not by a user.
    #[serde(default)]
    pub disabled_reason: Option<String>,
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Secret {
    pub value: String,
    /// None for the current secret.
    pub expires_at: Option<Time>,
}

/// Without the value: an endpoint logged or shown in an error (`{:?}`)
/// must not carry its signing secret into logs.
impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("value", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// What an endpoint may deliver to in this runtime.
#[derive(Clone, Debug, Default)]
pub struct EndpointRules {
    /// Plain-HTTP webhook URLs (the local runtime, tests).
    pub allow_http: bool,
    /// Where `eventbridge` and `sqs` endpoints may point; None without AWS
    /// credentials and a region, where such endpoints are refused.
    pub aws: Option<AwsAllowList>,
}

impl EndpointRules {
    /// The kind's address, checked.
    fn address(&self, kind: EndpointKind, address: &str) -> Result<String, ApiError> {
        match (kind, &self.aws) {
            (EndpointKind::Webhook, _) => check_url(address, self.allow_http),
            (_, Some(list)) => list.check(kind, address),
            (_, None) => Err(ApiError::invalid(
                "kind",
                format!(
                    "`{}` endpoints need AWS credentials and a region, and this deployment has none",
                    kind.as_str()
                ),
            )),
        }
    }
}

impl Endpoint {
    pub fn create(body: &Value, rules: &EndpointRules, now: Time) -> Result<Endpoint, ApiError> {
        let f = Fields::of(body, "")?;
        let kind = match f.optional_string("kind")? {
            Some(kind) => EndpointKind::parse(&kind)?,
            None => EndpointKind::Webhook,
        };
        let mut endpoint = Endpoint {
            id: random_id("ep"),
            kind,
            url: rules.address(kind, &f.string(kind.address_field())?)?,
            description: None,
            event_types: None,
            enabled: true,
            secrets: vec![Secret {
                value: generate_secret(),
                expires_at: None,
            }],
            created_at: now,
            updated_at: now,
            failing_since: None,
            disabled_reason: None,
        };
        endpoint.apply(&f, rules)?;
        Ok(endpoint)
    }

    pub fn patch(
        &mut self,
        body: &Value,
        rules: &EndpointRules,
        now: Time,
    ) -> Result<(), ApiError> {
        let f = Fields::of(body, "")?;
        self.apply(&f, rules)?;
        self.updated_at = now;
        Ok(())
    }

    /// A new kind comes with its address; an address is its kind's field.
    fn apply(&mut self, f: &Fields, rules: &EndpointRules) -> Result<(), ApiError> {
        let kind = match f.optional_string("kind")? {
            Some(kind) => EndpointKind::parse(&kind)?,
            None => self.kind,
        };
        for other in EndpointKind::ALL.into_iter().filter(|k| *k != kind) {
            let field = other.address_field();
            if f.has(field) {
                return Err(ApiError::invalid(
                    field,
                    format!("`{field}` is for `{}` endpoints", other.as_str()),
                ));
            }
        }
        match f.optional_string(kind.address_field())? {
            Some(address) => self.url = rules.address(kind, &address)?,
            None if kind != self.kind => {
                let field = kind.address_field();
                return Err(ApiError::invalid(
                    field,
                    format!("`{field}` is required for `{}` endpoints", kind.as_str()),
                ));
            }
            None => {}
        }
        self.kind = kind;
        if f.has("description") {
            self.description = f.optional_string("description")?;
        }
        if f.has("event_types") {
            self.event_types = f
                .optional_strings("event_types")?
                .map(|names| {
                    names
                        .iter()
                        .enumerate()
                        .map(|(i, name)| {
                            EventType::parse(name).ok_or_else(|| {
                                ApiError::invalid(
                                    format!("event_types[{i}]"),
                                    format!("unknown event type `{name}`"),
                                )
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?;
        }
        if let Some(enabled) = f.optional_bool("enabled")? {
            if enabled && !self.enabled {
                // A fresh start: the failure window counts from the next failure.
                self.failing_since = None;
                self.disabled_reason = None;
            }
            self.enabled = enabled;
        }
        Ok(())
    }

    pub fn accepts(&self, event_type: EventType) -> bool {
        self.enabled
            && self
                .event_types
                .as_ref()
                .is_none_or(|types| types.contains(&event_type))
    }

    /// The secrets that sign now: the current one and any still in their grace period.
    pub fn signing_secrets(&self, now: Time) -> Vec<&str> {
        self.secrets
            .iter()
            .filter(|s| s.expires_at.is_none_or(|at| at > now))
            .map(|s| s.value.as_str())
            .collect()
    }

    /// A new current secret; the old one signs beside it for the grace period.
    pub fn rotate_secret(&mut self, now: Time) -> &str {
        let grace_end = now + chrono::Duration::hours(ROTATION_GRACE_HOURS);
        self.secrets
            .retain(|s| s.expires_at.is_none_or(|at| at > now));
        for secret in &mut self.secrets {
            if secret.expires_at.is_none() {
                secret.expires_at = Some(grace_end);
            }
        }
        self.secrets.insert(
            0,
            Secret {
                value: generate_secret(),
                expires_at: None,
            },
        );
        self.updated_at = now;
        &self.secrets[0].value
    }

    /// The endpoint as the API shows it: secrets only when asked (create, rotate).
    pub fn view(&self, with_secret: bool) -> Value {
        let mut view = json!({
            "id": self.id, "kind": self.kind, "url": self.url,
            "description": self.description,
            "event_types": self.event_types, "enabled": self.enabled,
            "disabled_reason": self.disabled_reason, "failing_since": self.failing_since,
            "created_at": self.created_at, "updated_at": self.updated_at,
        });
        // The AWS kinds show their address under its own name as well.
        view[self.kind.address_field()] = json!(self.url);
        if with_secret {
            view["secret"] = json!(self.secrets[0].value);
        }
        view
    }
}

fn check_url(url: &str, allow_http: bool) -> Result<String, ApiError> {
    let refuse = |m: &str| Err(ApiError::invalid("url", m.to_string()));
    let rest = if let Some(rest) = url.strip_prefix("https://") {
        rest
    } else if let Some(rest) = url.strip_prefix("http://") {
        if !allow_http {
            return refuse("`url` must use https");
        }
        rest
    } else {
        return refuse("`url` must be an absolute http(s) URL");
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || url.len() > 2048 || url.chars().any(char::is_whitespace) {
        return refuse("`url` must be an absolute http(s) URL with a host, without spaces, under 2048 characters");
    }
    if !valid_authority(authority) {
        return refuse("`url` must have a valid host: a domain name, an IPv4 address or a bracketed IPv6 address, and an optional port up to 65535");
    }
    Ok(url.to_string())
}

/// `[userinfo@]host[:port]`: a host a webhook can be sent to, never one that
/// no HTTP client could parse (`http://[x`, `http://a^b`, `http://a:99999`).
fn valid_authority(authority: &str) -> bool {
    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((userinfo, host_port)) => (userinfo, host_port),
        None => ("", authority),
    };
    let userinfo_ok = userinfo
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._~%!$&'()*+,;=:".contains(c));
    let (host_ok, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        match bracketed.split_once(']') {
            Some((ip, after)) => (
                ip.parse::<std::net::Ipv6Addr>().is_ok(),
                match after {
                    "" => None,
                    _ => match after.strip_prefix(':') {
                        Some(port) => Some(port),
                        None => return false,
                    },
                },
            ),
            None => return false,
        }
    } else {
        let (host, port) = match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        };
        // Letters (internationalized names too), digits, `-`, `.`, `_`, `~`.
        let host_ok = host.chars().any(char::is_alphanumeric)
            && host
                .chars()
                .all(|c| c.is_alphanumeric() || "-._~".contains(c));
        (host_ok, port)
    };
    let port_ok = port.is_none_or(|p| {
        (1..=5).contains(&p.len())
            && p.chars().all(|c| c.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| n <= 65_535)
    });
    userinfo_ok && host_ok && port_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_time;

    fn now() -> Time {
        parse_time("2026-11-25T00:00:00Z").unwrap()
    }

    fn rules(allow_http: bool) -> EndpointRules {
        EndpointRules {
            allow_http,
            aws: None,
        }
    }

    #[test]
    fn an_endpoint_printed_for_a_log_does_not_show_its_secret() {
        let endpoint = Endpoint::create(
            &serde_json::json!({"url": "https://example.com/hook"}),
            &rules(false),
            now(),
        )
        .unwrap();
        let secret = endpoint.secrets[0].value.clone();
        let printed = format!("{endpoint:?} {endpoint:#?}");
        assert!(!printed.contains(&secret), "{printed}");
        assert!(!printed.contains(secret.trim_start_matches("whsec_")));
        assert!(printed.contains("<redacted>"), "{printed}");
    }

    #[test]
    fn create_validates_url_and_types() {
        let ok = Endpoint::create(
            &json!({"url": "http://127.0.0.1:9/hook", "event_types": ["contract.end"]}),
            &rules(true),
            now(),
        )
        .unwrap();
        assert!(ok.accepts(EventType::ContractEnd) && !ok.accepts(EventType::ContractStart));
        assert!(ok.view(true)["secret"]
            .as_str()
            .unwrap()
            .starts_with("whsec_"));
        assert!(ok.view(false).get("secret").is_none());
        let bad_type = Endpoint::create(
            &json!({"url": "https://x.io", "event_types": ["nope"]}),
            &rules(true),
            now(),
        );
        assert_eq!(
            bad_type.unwrap_err().field.as_deref(),
            Some("event_types[0]")
        );
        for url in [
            "https://receiver.example/hook?a=b#c",
            "http://127.0.0.1:9000/hook",
            "http://[::1]:8080",
            "https://user:pa%20ss@bücher.example:443/",
            "http://localhost",
        ] {
            assert!(
                Endpoint::create(&json!({"url": url}), &rules(true), now()).is_ok(),
                "{url} is accepted"
            );
        }
        for url in [
            "ftp://x",
            "http://",
            "https:// x",
            "x.io",
            "http://[::1",
            "http://[x]/",
            "http://]a",
            "http://a^b/",
            "http://a:99999",
            "http://a:",
            "http://a:8x",
            "http://a:1:2",
            "http://[::1]x",
            "http://...",
            "http://a b@c",
            "http://a[b@c",
        ] {
            assert_eq!(
                Endpoint::create(&json!({"url": url}), &rules(true), now())
                    .unwrap_err()
                    .field
                    .as_deref(),
                Some("url")
            );
        }
        assert!(Endpoint::create(&json!({"url": "http://x.io"}), &rules(false), now()).is_err());
    }

    #[test]
    fn aws_kinds_need_aws_and_their_own_address_field() {
        let bus = "arn:aws:events:us-east-1:123456789012:event-bus/billing";
        let body = json!({"kind": "eventbridge", "event_bus_arn": bus});
        let refused = Endpoint::create(&body, &rules(true), now()).unwrap_err();
        assert_eq!(
            (refused.status, refused.field.as_deref()),
            (422, Some("kind"))
        );
        let aws = EndpointRules {
            allow_http: false,
            aws: Some(AwsAllowList::parse("123456789012")),
        };
        let mut ep = Endpoint::create(&body, &aws, now()).unwrap();
        let view = ep.view(false);
        assert_eq!(
            (view["kind"].as_str(), view["event_bus_arn"].as_str()),
            (Some("eventbridge"), Some(bus))
        );
        assert_eq!(view["url"].as_str(), Some(bus));
        let wrong_field = ep
            .patch(&json!({"url": "https://x.io"}), &aws, now())
            .unwrap_err();
        assert_eq!(wrong_field.field.as_deref(), Some("url"));
        let no_address = ep.patch(&json!({"kind": "sqs"}), &aws, now()).unwrap_err();
        assert_eq!(no_address.field.as_deref(), Some("queue_url"));
        assert_eq!(
            ep.kind,
            EndpointKind::Eventbridge,
            "a refused patch changes nothing"
        );
        let queue = "https://sqs.us-east-1.amazonaws.com/123456789012/q";
        ep.patch(&json!({"kind": "sqs", "queue_url": queue}), &aws, now())
            .unwrap();
        assert_eq!((ep.kind, ep.url.as_str()), (EndpointKind::Sqs, queue));
        let missing = Endpoint::create(&json!({"kind": "sqs"}), &aws, now()).unwrap_err();
        assert_eq!(missing.field.as_deref(), Some("queue_url"));
        let plain = Endpoint::create(&json!({"url": "https://x.io"}), &aws, now()).unwrap();
        assert_eq!(plain.view(false)["kind"], "webhook");
    }

    #[test]
    fn rotation_keeps_the_old_secret_for_a_day() {
        let mut ep =
            Endpoint::create(&json!({"url": "https://x.io"}), &rules(false), now()).unwrap();
        let old = ep.secrets[0].value.clone();
        let new = ep.rotate_secret(now()).to_string();
        assert_eq!(ep.signing_secrets(now()), vec![new.as_str(), old.as_str()]);
        let later = now() + chrono::Duration::hours(ROTATION_GRACE_HOURS);
        assert_eq!(ep.signing_secrets(later), vec![new.as_str()]);
    }
}
