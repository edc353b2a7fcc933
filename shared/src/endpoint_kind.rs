//! What an endpoint delivers to: a webhook URL (signed HTTP), an Amazon
//! EventBridge bus or an Amazon SQS queue (trusted through IAM, unsigned),
//! and the allow-list of AWS accounts and addresses the deployment may
//! deliver to. The AWS kinds' addresses are kept in the endpoint's `url`;
//! the API shows them as `event_bus_arn` and `queue_url`.

use crate::error::ApiError;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointKind {
    #[default]
    Webhook,
    Eventbridge,
    Sqs,
}

impl EndpointKind {
    pub const ALL: [EndpointKind; 3] = [Self::Webhook, Self::Eventbridge, Self::Sqs];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Eventbridge => "eventbridge",
            Self::Sqs => "sqs",
        }
    }

    pub fn parse(text: &str) -> Result<Self, ApiError> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == text)
            .ok_or_else(|| {
                ApiError::invalid("kind", "`kind` must be `webhook`, `eventbridge` or `sqs`")
            })
    }

    /// The request and view field that holds the address.
    pub fn address_field(self) -> &'static str {
        match self {
            Self::Webhook => "url",
            Self::Eventbridge => "event_bus_arn",
            Self::Sqs => "queue_url",
        }
    }
}

/// The AWS accounts, bus ARNs and queue URLs that `eventbridge` and `sqs`
/// endpoints may name. None in a runtime without AWS credentials.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AwsAllowList {
    /// 12-digit account ids, whole ARNs and queue URLs, or `*` for any.
    pub entries: Vec<String>,
}

impl AwsAllowList {
    /// A comma-separated list (blank entries ignored).
    pub fn parse(text: &str) -> Self {
        Self {
            entries: text
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_string)
                .collect(),
        }
    }

    /// Checks an AWS kind's address: well formed, and on the list (its
    /// account, or itself). Answers the address.
    pub fn check(&self, kind: EndpointKind, address: &str) -> Result<String, ApiError> {
        let field = kind.address_field();
        let account = match kind {
            EndpointKind::Eventbridge => bus_account(address),
            EndpointKind::Sqs => queue_account(address),
            EndpointKind::Webhook => None,
        }
        .ok_or_else(|| {
            let shape = match kind {
                EndpointKind::Sqs => {
                    "a queue URL (`https://sqs.<region>.amazonaws.com/<account>/<queue>`)"
                }
                _ => "an event bus ARN (`arn:aws:events:<region>:<account>:event-bus/<name>`)",
            };
            ApiError::invalid(field, format!("`{field}` must be {shape}"))
        })?;
        if (self.entries.iter()).any(|e| e == "*" || e == account || e == address) {
            return Ok(address.to_string());
        }
        Err(ApiError::invalid(
            field,
            format!(
                "`{field}` is in account {account}, outside the deployment's allow-list ({})",
                self.entries.join(", ")
            ),
        ))
    }
}

fn is_account(text: &str) -> bool {
    text.len() == 12 && text.chars().all(|c| c.is_ascii_digit())
}

/// `arn:<partition>:events:<region>:<account>:event-bus/<name>`: the account.
fn bus_account(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [arn_, partition, "events", region, account, resource] = parts[..] else {
        return None;
    };
    let name = resource.strip_prefix("event-bus/")?;
    let name_ok = !name.is_empty()
        && name.len() <= 256
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c));
    (arn_ == "arn" && !partition.is_empty() && !region.is_empty() && is_account(account) && name_ok)
        .then_some(account)
}

/// `http(s)://<host>/<account>/<queue>`: the account. The host is the
/// region's SQS endpoint in AWS, or an emulator's.
fn queue_account(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let mut parts = rest.split('/');
    let (host, account, queue) = (parts.next()?, parts.next()?, parts.next()?);
    let queue_ok = !queue.is_empty()
        && queue.len() <= 80
        && queue
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    (!host.is_empty() && parts.next().is_none() && is_account(account) && queue_ok)
        .then_some(account)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUS: &str = "arn:aws:events:us-east-1:123456789012:event-bus/billing";
    const QUEUE: &str = "https://sqs.us-east-1.amazonaws.com/123456789012/billing.fifo";

    #[test]
    fn addresses_on_the_list_pass_and_others_name_their_field() {
        let list = AwsAllowList::parse(
            " 123456789012 , ,arn:aws:events:eu-west-1:999999999999:event-bus/x",
        );
        assert_eq!(list.check(EndpointKind::Eventbridge, BUS).unwrap(), BUS);
        assert_eq!(list.check(EndpointKind::Sqs, QUEUE).unwrap(), QUEUE);
        let listed = "arn:aws:events:eu-west-1:999999999999:event-bus/x";
        assert!(list.check(EndpointKind::Eventbridge, listed).is_ok());
        let other = "arn:aws:events:eu-west-1:999999999999:event-bus/y";
        let refused = list.check(EndpointKind::Eventbridge, other).unwrap_err();
        assert_eq!(refused.field.as_deref(), Some("event_bus_arn"));
        assert!(
            refused.message.contains("999999999999"),
            "{}",
            refused.message
        );
        let anywhere = AwsAllowList::parse("*");
        assert!(anywhere.check(EndpointKind::Eventbridge, other).is_ok());
        let elsewhere = "http://127.0.0.1:5000/000000000000/q";
        assert_eq!(
            list.check(EndpointKind::Sqs, elsewhere)
                .unwrap_err()
                .field
                .as_deref(),
            Some("queue_url")
        );
    }

    #[test]
    fn malformed_addresses_are_refused() {
        let list = AwsAllowList::parse("123456789012");
        for arn in [
            "arn:aws:events:us-east-1:123456789012:rule/x",
            "arn:aws:sqs:us-east-1:123456789012:event-bus/x",
            "arn:aws:events:us-east-1:1234:event-bus/x",
            "arn:aws:events:us-east-1:123456789012:event-bus/",
            "arn:aws:events:us-east-1:123456789012:event-bus/a b",
            "events:us-east-1:123456789012:event-bus/x",
        ] {
            assert!(list.check(EndpointKind::Eventbridge, arn).is_err(), "{arn}");
        }
        for url in [
            "https://sqs.us-east-1.amazonaws.com/123456789012",
            "https://sqs.us-east-1.amazonaws.com/123456789012/q/extra",
            "ftp://sqs/123456789012/q",
            "https:///123456789012/q",
            "https://sqs.us-east-1.amazonaws.com/12345678901x/q",
        ] {
            assert!(list.check(EndpointKind::Sqs, url).is_err(), "{url}");
        }
    }

    #[test]
    fn kinds_parse_by_name() {
        for kind in EndpointKind::ALL {
            assert_eq!(EndpointKind::parse(kind.as_str()).unwrap(), kind);
        }
        assert_eq!(
            EndpointKind::parse("email").unwrap_err().field.as_deref(),
            Some("kind")
        );
    }
}
