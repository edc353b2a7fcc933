//! Schedules (one per offset-adjusted moment of one notification) and the
//! deliveries a fired schedule makes (one per endpoint).

use crate::entity::EntityKey;
use crate::event_type::EventType;
use crate::ids::{hashed_id, with_prefix};
use crate::offset::Offset;
use crate::time::Time;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleState {
    Pending,
    Fired,
    Skipped,
    Cancelled,
}

impl ScheduleState {
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleState::Pending => "pending",
            ScheduleState::Fired => "fired",
            ScheduleState::Skipped => "skipped",
            ScheduleState::Cancelled => "cancelled",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentRef {
    pub id: String,
    pub index: usize,
    pub count: usize,
}

/// What a write-based schedule remembers of its write: the payload shows
/// the entity as that write left it, even if later writes change it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WriteInfo {
    pub event_id: String,
    pub occurred_at: Time,
    pub version: u64,
    pub snapshot: Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// `sch_<hash>` of (notification, entity, segment, event type, moment).
    pub id: String,
    pub notification_id: String,
    pub event_type: EventType,
    pub customer_id: String,
    pub entity: EntityKey,
    pub segment: Option<SegmentRef>,
    /// The moment itself (or the write's `occurred_at`).
    pub event_time: Time,
    pub offset: Offset,
    pub fire_at: Time,
    pub state: ScheduleState,
    /// Planned after its fire time had passed (within catch-up).
    pub late: bool,
    /// Why it was skipped or cancelled.
    pub reason: Option<String>,
    pub write: Option<WriteInfo>,
    pub updated_at: Time,
}

impl Schedule {
    /// The webhook id: the same for every retry, resend and duplicate fire.
    pub fn webhook_id(&self) -> String {
        with_prefix(&self.id, "msg")
    }

    /// A row of the upcoming view.
    pub fn upcoming_view(&self) -> Value {
        let mut view = json!({
            "schedule_id": self.id, "fire_at": self.fire_at, "event_type": self.event_type,
            "notification_id": self.notification_id, "customer_id": self.customer_id,
            "event_time": self.event_time, "offset": self.offset, "late": self.late,
            "status": self.state.as_str(), "webhook_id": self.webhook_id(),
        });
        view[self.entity.kind.id_field()] = json!(self.entity.id);
        if let Some(segment) = &self.segment {
            view["segment_id"] = json!(segment.id);
        }
        if let Some(reason) = &self.reason {
            view["reason"] = json!(reason);
        }
        view
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
    Skipped,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Skipped => "skipped",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed, Self::Skipped]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// One webhook to one endpoint, or the record that a moment was skipped.
/// Stored as it serializes, without its empty fields: a record is written
/// for every webhook (and again for each attempt), and the empty ones were
/// a tenth of it. (`view` is what the API shows, every field.)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// `dlv_<hash>` of (schedule, endpoint): at most one per endpoint per webhook.
    pub id: String,
    pub webhook_id: String,
    /// The schedule it came from, or the webhook id for operational webhooks.
    pub schedule_id: String,
    pub notification_id: Option<String>,
    pub event_type: EventType,
    /// Empty for operational webhooks, which are about no customer.
    pub customer_id: String,
    pub entity: Option<EntityKey>,
    pub endpoint_id: Option<String>,
    pub status: DeliveryStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub scheduled_for: Time,
    pub attempt_count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<Time>,
    /// A resend in progress: one attempt, no retry chain.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub manual: bool,
    pub created_at: Time,
    pub updated_at: Time,
}

impl Delivery {
    fn new(
        schedule: &Schedule,
        endpoint_id: Option<&str>,
        status: DeliveryStatus,
        now: Time,
    ) -> Self {
        Delivery {
            id: hashed_id("dlv", &[&schedule.id, endpoint_id.unwrap_or("-")]),
            webhook_id: schedule.webhook_id(),
            schedule_id: schedule.id.clone(),
            notification_id: Some(schedule.notification_id.clone()),
            event_type: schedule.event_type,
            customer_id: schedule.customer_id.clone(),
            entity: Some(schedule.entity.clone()),
            endpoint_id: endpoint_id.map(str::to_string),
            status,
            reason: None,
            scheduled_for: schedule.fire_at,
            attempt_count: 0,
            next_attempt_at: None,
            manual: false,
            created_at: now,
            updated_at: now,
        }
    }

    /// A delivery due now to an endpoint.
    pub fn to_endpoint(schedule: &Schedule, endpoint_id: &str, now: Time) -> Self {
        let mut delivery = Self::new(schedule, Some(endpoint_id), DeliveryStatus::Pending, now);
        delivery.next_attempt_at = Some(now);
        delivery
    }

    /// A webhook that comes from no schedule (a threshold crossing, an
    /// operational notice), due now to an endpoint.
    pub fn direct(
        webhook_id: &str,
        event_type: EventType,
        endpoint_id: &str,
        customer_id: &str,
        notification_id: Option<&str>,
        now: Time,
    ) -> Self {
        Delivery {
            id: hashed_id("dlv", &[webhook_id, endpoint_id]),
            webhook_id: webhook_id.to_string(),
            schedule_id: webhook_id.to_string(),
            notification_id: notification_id.map(str::to_string),
            event_type,
            customer_id: customer_id.to_string(),
            entity: None,
            endpoint_id: Some(endpoint_id.to_string()),
            status: DeliveryStatus::Pending,
            reason: None,
            scheduled_for: now,
            attempt_count: 0,
            next_attempt_at: Some(now),
            manual: false,
            created_at: now,
            updated_at: now,
        }
    }

    /// The record of a moment that was not sent, and why.
    pub fn skipped(schedule: &Schedule, reason: &str, now: Time) -> Self {
        let mut delivery = Self::new(schedule, None, DeliveryStatus::Skipped, now);
        delivery.reason = Some(reason.to_string());
        delivery
    }

    pub fn view(&self, attempts: &[Attempt]) -> Value {
        let mut view = json!({
            "id": self.id, "webhook_id": self.webhook_id, "schedule_id": self.schedule_id,
            "notification_id": self.notification_id, "event_type": self.event_type,
            "customer_id": self.customer_id, "endpoint_id": self.endpoint_id,
            "status": self.status.as_str(), "reason": self.reason, "scheduled_for": self.scheduled_for,
            "attempt_count": self.attempt_count, "next_attempt_at": self.next_attempt_at,
            "created_at": self.created_at, "updated_at": self.updated_at, "attempts": attempts,
        });
        if let Some(entity) = &self.entity {
            view[entity.kind.id_field()] = json!(entity.id);
        }
        view
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub delivery_id: String,
    pub number: u32,
    pub at: Time,
    pub endpoint_id: String,
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<String>,
    /// The start of the response body, at most 4 KiB.
    pub response: Option<String>,
    pub manual: bool,
}
