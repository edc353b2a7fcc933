//! The event types delivered: the 15 lifecycle types (6 time-based moments
//! and 9 write-based ones), the threshold types, and the operational
//! `webhook_endpoint.disabled` and `webhook_endpoint.test`.

use crate::entity::EntityKind;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    ContractStart,
    ContractEnd,
    CommitSegmentStart,
    CommitSegmentEnd,
    CreditSegmentStart,
    CreditSegmentEnd,
    ContractCreate,
    ContractEdit,
    ContractArchive,
    CommitCreate,
    CommitEdit,
    CommitArchive,
    CreditCreate,
    CreditEdit,
    CreditArchive,
    /// Sent to the other endpoints when one is disabled.
    WebhookEndpointDisabled,
    /// Sent on request to one endpoint, to try it out.
    WebhookEndpointTest,
    AlertsLowCreditBalanceReached,
    AlertsLowCreditBalanceResolved,
    AlertsSpendThresholdReached,
    AlertsSpendThresholdResolved,
    AlertsUsageThresholdReached,
    AlertsUsageThresholdResolved,
}

/// Which side of a period a time-based moment is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edge {
    Start,
    End,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteAction {
    Create,
    Edit,
    Archive,
}

impl WriteAction {
    pub fn as_str(self) -> &'static str {
        match self {
            WriteAction::Create => "create",
            WriteAction::Edit => "edit",
            WriteAction::Archive => "archive",
        }
    }
}

/// What makes an event type fire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    Moment(Edge),
    Write(WriteAction),
    /// About the delivery system itself, not about billing.
    Operational,
    /// A threshold crossed, up (`*_reached`) or back (`*_resolved`).
    Threshold,
}

use EventType::*;

impl EventType {
    /// The lifecycle types: the ones notifications are made of.
    pub const ALL: [EventType; 15] = [
        ContractStart,
        ContractEnd,
        CommitSegmentStart,
        CommitSegmentEnd,
        CreditSegmentStart,
        CreditSegmentEnd,
        ContractCreate,
        ContractEdit,
        ContractArchive,
        CommitCreate,
        CommitEdit,
        CommitArchive,
        CreditCreate,
        CreditEdit,
        CreditArchive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ContractStart => "contract.start",
            ContractEnd => "contract.end",
            CommitSegmentStart => "commit.segment.start",
            CommitSegmentEnd => "commit.segment.end",
            CreditSegmentStart => "credit.segment.start",
            CreditSegmentEnd => "credit.segment.end",
            ContractCreate => "contract.create",
            ContractEdit => "contract.edit",
            ContractArchive => "contract.archive",
            CommitCreate => "commit.create",
            CommitEdit => "commit.edit",
            CommitArchive => "commit.archive",
            CreditCreate => "credit.create",
            CreditEdit => "credit.edit",
            CreditArchive => "credit.archive",
            WebhookEndpointDisabled => "webhook_endpoint.disabled",
            WebhookEndpointTest => "webhook_endpoint.test",
            AlertsLowCreditBalanceReached => "alerts.low_credit_balance_reached",
            AlertsLowCreditBalanceResolved => "alerts.low_credit_balance_resolved",
            AlertsSpendThresholdReached => "alerts.spend_threshold_reached",
            AlertsSpendThresholdResolved => "alerts.spend_threshold_resolved",
            AlertsUsageThresholdReached => "alerts.usage_threshold_reached",
            AlertsUsageThresholdResolved => "alerts.usage_threshold_resolved",
        }
    }

    pub fn parse(text: &str) -> Option<EventType> {
        Self::ALL
            .into_iter()
            .chain([WebhookEndpointDisabled, WebhookEndpointTest])
            .chain(Self::THRESHOLD)
            .chain(Self::THRESHOLD.map(|t| t.resolved().expect("threshold types resolve")))
            .find(|t| t.as_str() == text)
    }

    /// The threshold types a notification can be made of.
    pub const THRESHOLD: [EventType; 3] = [
        AlertsLowCreditBalanceReached,
        AlertsSpendThresholdReached,
        AlertsUsageThresholdReached,
    ];

    /// The `*_resolved` type of a `*_reached` one.
    pub fn resolved(self) -> Option<EventType> {
        match self {
            AlertsLowCreditBalanceReached => Some(AlertsLowCreditBalanceResolved),
            AlertsSpendThresholdReached => Some(AlertsSpendThresholdResolved),
            AlertsUsageThresholdReached => Some(AlertsUsageThresholdResolved),
            _ => None,
        }
    }

    pub fn is_lifecycle(self) -> bool {
        self.kind().is_some()
    }

    /// The kind of entity a lifecycle type is about.
    pub fn kind(self) -> Option<EntityKind> {
        Some(match self {
            ContractStart | ContractEnd | ContractCreate | ContractEdit | ContractArchive => {
                EntityKind::Contract
            }
            CommitSegmentStart | CommitSegmentEnd | CommitCreate | CommitEdit | CommitArchive => {
                EntityKind::Commit
            }
            CreditSegmentStart | CreditSegmentEnd | CreditCreate | CreditEdit | CreditArchive => {
                EntityKind::Credit
            }
            _ => return None,
        })
    }

    pub fn trigger(self) -> Trigger {
        match self {
            ContractStart | CommitSegmentStart | CreditSegmentStart => Trigger::Moment(Edge::Start),
            ContractEnd | CommitSegmentEnd | CreditSegmentEnd => Trigger::Moment(Edge::End),
            ContractCreate | CommitCreate | CreditCreate => Trigger::Write(WriteAction::Create),
            ContractEdit | CommitEdit | CreditEdit => Trigger::Write(WriteAction::Edit),
            ContractArchive | CommitArchive | CreditArchive => Trigger::Write(WriteAction::Archive),
            WebhookEndpointDisabled | WebhookEndpointTest => Trigger::Operational,
            _ => Trigger::Threshold,
        }
    }

    pub fn is_time_based(self) -> bool {
        matches!(self.trigger(), Trigger::Moment(_))
    }

    /// The write-based type for an action on a kind of entity.
    pub fn for_write(kind: EntityKind, action: WriteAction) -> EventType {
        Self::ALL
            .into_iter()
            .find(|t| t.kind() == Some(kind) && t.trigger() == Trigger::Write(action))
            .expect("every kind has every write type")
    }

    /// The time-based type for an edge of a kind of entity.
    pub fn for_moment(kind: EntityKind, edge: Edge) -> EventType {
        Self::ALL
            .into_iter()
            .find(|t| t.kind() == Some(kind) && t.trigger() == Trigger::Moment(edge))
            .expect("every kind has a start and an end")
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        EventType::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown event type {text}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifteen_types_round_trip() {
        let names: std::collections::BTreeSet<_> =
            EventType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(names.len(), 15);
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
            assert!(t.as_str().starts_with(t.kind().unwrap().as_str()));
        }
        assert_eq!(
            EventType::ALL.iter().filter(|t| t.is_time_based()).count(),
            6
        );
        assert_eq!(EventType::parse("credit.end"), None);
        let disabled = EventType::parse("webhook_endpoint.disabled").unwrap();
        assert!(!disabled.is_lifecycle() && !EventType::ALL.contains(&disabled));
        let test = EventType::parse("webhook_endpoint.test").unwrap();
        assert_eq!(test.trigger(), Trigger::Operational);
    }

    #[test]
    fn lookups_by_kind() {
        assert_eq!(
            EventType::for_write(EntityKind::Credit, WriteAction::Archive),
            CreditArchive
        );
        assert_eq!(
            EventType::for_moment(EntityKind::Commit, Edge::End),
            CommitSegmentEnd
        );
    }
}
