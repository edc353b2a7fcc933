//! What a runtime provides to the core: a store, a scheduler of timers and a
//! webhook sender (the clock is in `time`). The local runtime implements them
//! with SQLite, an in-process timer loop and reqwest; the AWS runtime with
//! DynamoDB, EventBridge Scheduler and reqwest.

use crate::endpoint::Endpoint;
use crate::entity::{EntityKey, EntityKind, EntityRecord};
use crate::error::ApiError;
use crate::event_type::EventType;
use crate::metrics::Backlog;
use crate::notification::Notification;
use crate::planner::{Plan, TimerChange};
use crate::schedule::{Attempt, Delivery, DeliveryStatus, Schedule, ScheduleState};
use crate::stats::MinuteStats;
use crate::threshold::AlertState;
use crate::time::Time;
use async_trait::async_trait;
use std::collections::{HashMap, HashSet};

#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write lost a race; the caller may reload and retry.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("the cursor is not one this list gave out")]
    InvalidCursor,
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// An entity the store cannot hold (DynamoDB's 400 KB item, after
    /// compression): refused as the client's input, never retried.
    #[error("{} {} takes {bytes} bytes stored; the store holds {limit} at most", entity.kind.as_str(), entity.id)]
    TooLarge {
        entity: crate::entity::EntityKey,
        bytes: usize,
        limit: usize,
    },
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

/// What ingesting a batch of writes needs to know first.
#[derive(Debug, Default)]
pub struct WriteState {
    pub seen_events: HashSet<String>,
    pub records: HashMap<EntityKey, EntityRecord>,
    /// The time-based schedules of each entity, any state.
    pub schedules: HashMap<EntityKey, Vec<Schedule>>,
}

/// A customer's last credit balance snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct Balance {
    pub value: f64,
    pub occurred_at: Time,
}

/// A customer's spend in its current billing period.
#[derive(Clone, Debug, PartialEq)]
pub struct Spend {
    /// The period start, fixed-width so that periods order as text.
    pub period: String,
    pub value: f64,
    pub occurred_at: Time,
}

/// (customer, metric, UTC month) of a usage total.
pub type UsageKey = (String, String, String);

/// What evaluating a batch of signals needs to know first.
#[derive(Clone, Debug, Default)]
pub struct SignalState {
    pub balances: HashMap<String, Balance>,
    pub spends: HashMap<String, Spend>,
    pub usage: HashMap<UsageKey, f64>,
    /// The usage events each stored total already counts that may not be
    /// remembered as seen yet: a store that writes a batch in several
    /// transactions puts the totals before the events' records, and a
    /// retry after a failure between them must not count them again.
    pub counted: HashMap<UsageKey, HashSet<String>>,
    /// The version each stored usage total was read at, for stores where
    /// two writers can meet (DynamoDB): a total is written only over the
    /// version it was computed from. Absent: no total was stored.
    pub versions: HashMap<UsageKey, u64>,
    /// By (notification id, customer id).
    pub alerts: HashMap<(String, String), AlertState>,
}

/// Aggregates, alert states and the webhooks of crossings, to commit.
#[derive(Clone, Debug, Default)]
pub struct SignalChanges {
    pub balances: Vec<(String, Balance)>,
    pub spends: Vec<(String, Spend)>,
    pub usage: Vec<(UsageKey, f64)>,
    /// Per total written, the events it counts that were not remembered as
    /// seen when it was read, and this batch's (`SignalState::counted`).
    pub counted: HashMap<UsageKey, Vec<String>>,
    /// Per total written, the version it was computed from
    /// (`SignalState::versions`); absent for a new total.
    pub versions: HashMap<UsageKey, u64>,
    pub alerts: Vec<AlertState>,
    pub messages: Vec<Message>,
    pub deliveries: Vec<Delivery>,
}

pub use crate::threshold::Measure;

/// The outcome of a batch of writes, committed all at once or not at all.
#[derive(Clone, Debug, Default)]
pub struct WriteCommit {
    /// Event ids to remember, with what became of them (accepted or stale).
    pub events: Vec<(String, &'static str)>,
    /// New entity states, each with the version it must replace (None: must not exist).
    pub records: Vec<(EntityRecord, Option<u64>)>,
    pub plan: Plan,
    pub signals: SignalChanges,
}

/// A due schedule's outcome: fired with a message and its deliveries, or skipped.
#[derive(Clone, Debug)]
pub struct FireCommit {
    /// The schedule in its new state; committed only if it is still pending at the same fire time.
    pub schedule: Schedule,
    pub expected_fire_at: Time,
    pub message: Option<Message>,
    pub deliveries: Vec<Delivery>,
}

/// The exact bytes every attempt of a webhook sends.
#[derive(Clone, Debug)]
pub struct Message {
    pub id: String,
    pub body: String,
}

/// One attempt's outcome, with the delivery's new state.
#[derive(Clone, Debug)]
pub struct AttemptCommit {
    pub delivery: Delivery,
    pub attempt: Attempt,
    /// The lease the attempt ran under (its claim's, or its fire's), if
    /// any. A store keeps the outcome only while the delivery is still under
    /// it, so an attempter that outlived its lease (a slow endpoint, a
    /// throttled write) cannot overwrite the outcome of the attempt that
    /// claimed the delivery after it: its attempt and state are dropped.
    pub leased_until: Option<crate::time::Time>,
}

#[derive(Clone, Debug, Default)]
pub struct DeliveryFilter {
    pub customer_id: Option<String>,
    pub event_type: Option<EventType>,
    pub status: Option<DeliveryStatus>,
    pub endpoint_id: Option<String>,
    pub since: Option<Time>,
    pub until: Option<Time>,
}

#[async_trait]
pub trait Store: Send + Sync {
    /// Adds the system notifications that are not there yet.
    async fn install(&self, defaults: &[Notification]) -> StoreResult<()>;

    async fn write_state(
        &self,
        event_ids: &[String],
        keys: &[EntityKey],
    ) -> StoreResult<WriteState>;
    /// Atomic; `Conflict` if an event id is already seen or a version moved.
    async fn commit_writes(&self, commit: &WriteCommit) -> StoreResult<()>;
    async fn entity(&self, key: &EntityKey) -> StoreResult<Option<EntityRecord>>;
    /// The records of these entities that exist.
    async fn entities(&self, keys: &[EntityKey]) -> StoreResult<Vec<EntityRecord>>;
    /// Entities of a kind ordered by id, after the given id.
    async fn entities_after(
        &self,
        kind: EntityKind,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<EntityRecord>>;

    async fn notifications(&self) -> StoreResult<Vec<Notification>>;
    async fn notification(&self, id: &str) -> StoreResult<Option<Notification>>;
    async fn put_notification(&self, notification: &Notification) -> StoreResult<()>;
    async fn delete_notification(&self, id: &str) -> StoreResult<()>;

    /// The schedules of one notification for these entities, any state.
    async fn schedules_of(
        &self,
        notification_id: &str,
        entities: &[EntityKey],
    ) -> StoreResult<Vec<Schedule>>;
    /// Writes the schedules, the skips and the deferrals (`crate::horizon`)
    /// of a plan. A store that keeps no deferrals must be given none: the
    /// service plans none when it has no horizon.
    async fn apply_plan(&self, plan: &Plan) -> StoreResult<()>;
    /// Entities whose earliest deferred moment fires at or before `until`,
    /// soonest first. A store that keeps no deferrals has none.
    async fn deferred_entities(&self, _until: Time, _limit: usize) -> StoreResult<Vec<EntityKey>> {
        Ok(Vec::new())
    }
    async fn schedule(&self, id: &str) -> StoreResult<Option<Schedule>>;
    /// The schedules with these ids that exist.
    async fn schedules(&self, ids: &[String]) -> StoreResult<Vec<Schedule>>;
    /// Commits fires in one transaction. Each is committed only if its schedule is
    /// still pending at the expected time: false (and nothing of it written) otherwise.
    async fn commit_fires(&self, fires: &[FireCommit]) -> StoreResult<Vec<bool>>;
    /// A customer's time-based schedules in a state, soonest first (write
    /// events fire at once and are not "upcoming"). Pending ones include the
    /// deferred moments (`crate::horizon::deferred_moments`).
    async fn customer_schedules(
        &self,
        customer_id: &str,
        state: ScheduleState,
        until: Option<Time>,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<Schedule>>;

    async fn endpoints(&self) -> StoreResult<Vec<Endpoint>>;
    async fn endpoint(&self, id: &str) -> StoreResult<Option<Endpoint>>;
    async fn put_endpoint(&self, endpoint: &Endpoint) -> StoreResult<()>;
    async fn delete_endpoint(&self, id: &str) -> StoreResult<()>;

    async fn delivery(&self, id: &str) -> StoreResult<Option<(Delivery, Vec<Attempt>)>>;
    /// Newest first.
    async fn deliveries(
        &self,
        filter: &DeliveryFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<(Delivery, Vec<Attempt>)>>;
    /// Takes a due pending delivery for one attempt: pushes its next attempt to
    /// `lease_until` (so a crash mid-attempt retries it then) and returns it
    /// with the body to send. None if it is not pending or not due.
    async fn claim_delivery(
        &self,
        id: &str,
        now: Time,
        lease_until: Time,
    ) -> StoreResult<Option<(Delivery, Message)>>;
    async fn commit_attempt(&self, commit: &AttemptCommit) -> StoreResult<()>;
    /// Claims several deliveries at once, as `claim_delivery` does each:
    /// those that are pending and due, in the order asked. A store that can
    /// claim them in one round trip overrides this.
    async fn claim_deliveries(
        &self,
        ids: &[String],
        now: Time,
        lease_until: Time,
    ) -> StoreResult<Vec<(Delivery, Message)>> {
        let mut claimed = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(one) = self.claim_delivery(id, now, lease_until).await? {
                claimed.push(one);
            }
        }
        Ok(claimed)
    }
    /// Records several attempts, as `commit_attempt` does each; a store that
    /// can write them in one round trip overrides this.
    async fn commit_attempts(&self, commits: &[AttemptCommit]) -> StoreResult<()> {
        for commit in commits {
            self.commit_attempt(commit).await?;
        }
        Ok(())
    }
    /// Records a webhook that comes from no schedule, with its deliveries (each at most once).
    async fn add_message(&self, message: &Message, deliveries: &[Delivery]) -> StoreResult<()>;
    async fn put_delivery(&self, delivery: &Delivery) -> StoreResult<()>;

    /// Balances and spends of these customers, these usage totals, and
    /// every alert state of these customers.
    async fn signal_state(
        &self,
        customers: &[String],
        usage: &[UsageKey],
    ) -> StoreResult<SignalState>;
    async fn apply_signal_changes(&self, changes: &SignalChanges) -> StoreResult<()>;
    /// Every customer's current value of a measure: (customer, value, period).
    /// Usage is the total of `metric` in `month`.
    async fn current_values(
        &self,
        measure: Measure,
        metric: Option<&str>,
        month: &str,
    ) -> StoreResult<Vec<(String, f64, String)>>;
    async fn alerts_of(&self, customer_id: &str) -> StoreResult<Vec<AlertState>>;

    /// Adds these figures to those stored for their minutes (created where
    /// there are none), and lets go of minutes older than `stats::KEPT_DAYS`.
    async fn add_stats(&self, figures: &[MinuteStats]) -> StoreResult<()>;
    /// The stored figures of the minutes in [since, until), by minute.
    async fn stats(&self, since: Time, until: Time) -> StoreResult<Vec<MinuteStats>>;
    /// The pending schedules and deliveries, where the store can count them
    /// without reading them (an index, a maintained count); None otherwise.
    async fn backlog(&self) -> StoreResult<Option<Backlog>> {
        Ok(None)
    }
}

/// Keeps timers in step with pending schedules. The local one wakes its
/// timer loop; the AWS one creates, updates and deletes one-time schedules.
#[async_trait]
pub trait Scheduler: Send + Sync {
    async fn apply(&self, changes: &[TimerChange]) -> Result<(), String>;

    /// Moments were deferred on their entities (`crate::horizon`), the
    /// soonest firing at `earliest`: a scheduler that brings deferred
    /// moments in as they come near (the local timer loop) looks again at
    /// when to. The others have nothing to do.
    async fn deferred(&self, _earliest: crate::time::Time) -> Result<(), String> {
        Ok(())
    }
}

/// A signed webhook ready to send.
#[derive(Clone, Debug)]
pub struct OutgoingWebhook {
    /// What `url` is: a webhook URL, an event bus ARN or a queue URL.
    pub kind: crate::endpoint_kind::EndpointKind,
    pub url: String,
    pub event_type: crate::event_type::EventType,
    pub webhook_id: String,
    pub timestamp: i64,
    pub signature: String,
    pub body: String,
}

/// What came back from one send.
#[derive(Clone, Debug, Default)]
pub struct SendResult {
    pub status: Option<u16>,
    pub timed_out: bool,
    pub error: Option<String>,
    pub latency_ms: u64,
    pub body_excerpt: Option<String>,
    pub retry_after: Option<i64>,
}

#[async_trait]
pub trait Sender: Send + Sync {
    async fn send(&self, webhook: &OutgoingWebhook) -> SendResult;
}

/// A store refusal as the API answers it.
impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(message) => ApiError::conflict(message),
            StoreError::InvalidCursor => {
                ApiError::invalid("cursor", "`cursor` is not one this list gave out")
            }
            StoreError::Unavailable(message) => ApiError::internal(message),
            too_large @ StoreError::TooLarge { .. } => {
                ApiError::invalid("data", too_large.to_string())
            }
        }
    }
}
