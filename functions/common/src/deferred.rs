//! The store the `api` function's service runs on: the DynamoDB store with
//! one change. The core re-plans every entity of a notification's kind inline
//! when the notification is created, edited or deleted (`Service::reschedule`
//! pages `entities_after`); on Lambda that cannot finish for a million
//! contracts within the API's 30 s. Here `entities_after` answers an empty
//! page, so the api writes the notification and answers; the notification's
//! stream record starts the fan-out in the `schedule` function (`fanout`).
//! `entities_after` has no other caller in the core. Threshold evaluation
//! over every customer (`current_values`, whose only caller is
//! `Service::evaluate_everyone`) is deferred the same way. A core option to
//! defer both would replace this decorator.

use async_trait::async_trait;
use lifecycle_core::endpoint::Endpoint;
use lifecycle_core::entity::{EntityKey, EntityKind, EntityRecord};
use lifecycle_core::notification::Notification;
use lifecycle_core::planner::Plan;
use lifecycle_core::ports::*;
use lifecycle_core::schedule::{Attempt, Delivery, Schedule, ScheduleState};
use lifecycle_core::threshold::AlertState;
use lifecycle_core::time::Time;
use std::sync::Arc;

pub struct DeferredFanOut(pub Arc<dyn Store>);

#[async_trait]
impl Store for DeferredFanOut {
    async fn install(&self, defaults: &[Notification]) -> StoreResult<()> {
        self.0.install(defaults).await
    }
    async fn write_state(&self, ids: &[String], keys: &[EntityKey]) -> StoreResult<WriteState> {
        self.0.write_state(ids, keys).await
    }
    async fn commit_writes(&self, commit: &WriteCommit) -> StoreResult<()> {
        self.0.commit_writes(commit).await
    }
    async fn entity(&self, key: &EntityKey) -> StoreResult<Option<EntityRecord>> {
        self.0.entity(key).await
    }
    async fn entities(&self, keys: &[EntityKey]) -> StoreResult<Vec<EntityRecord>> {
        self.0.entities(keys).await
    }
    /// Deferred to the `schedule` function: see the module documentation.
    async fn entities_after(
        &self,
        _kind: EntityKind,
        _after: Option<&str>,
        _limit: usize,
    ) -> StoreResult<Vec<EntityRecord>> {
        Ok(Vec::new())
    }
    async fn notifications(&self) -> StoreResult<Vec<Notification>> {
        self.0.notifications().await
    }
    async fn notification(&self, id: &str) -> StoreResult<Option<Notification>> {
        self.0.notification(id).await
    }
    async fn put_notification(&self, notification: &Notification) -> StoreResult<()> {
        self.0.put_notification(notification).await
    }
    async fn delete_notification(&self, id: &str) -> StoreResult<()> {
        self.0.delete_notification(id).await
    }
    async fn schedules_of(&self, id: &str, entities: &[EntityKey]) -> StoreResult<Vec<Schedule>> {
        self.0.schedules_of(id, entities).await
    }
    async fn apply_plan(&self, plan: &Plan) -> StoreResult<()> {
        self.0.apply_plan(plan).await
    }
    async fn schedule(&self, id: &str) -> StoreResult<Option<Schedule>> {
        self.0.schedule(id).await
    }
    async fn schedules(&self, ids: &[String]) -> StoreResult<Vec<Schedule>> {
        self.0.schedules(ids).await
    }
    async fn commit_fires(&self, fires: &[FireCommit]) -> StoreResult<Vec<bool>> {
        self.0.commit_fires(fires).await
    }
    async fn customer_schedules(
        &self,
        customer_id: &str,
        state: ScheduleState,
        until: Option<Time>,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<Schedule>> {
        self.0
            .customer_schedules(customer_id, state, until, cursor, limit)
            .await
    }
    async fn endpoints(&self) -> StoreResult<Vec<Endpoint>> {
        self.0.endpoints().await
    }
    async fn endpoint(&self, id: &str) -> StoreResult<Option<Endpoint>> {
        self.0.endpoint(id).await
    }
    async fn put_endpoint(&self, endpoint: &Endpoint) -> StoreResult<()> {
        self.0.put_endpoint(endpoint).await
    }
    async fn delete_endpoint(&self, id: &str) -> StoreResult<()> {
        self.0.delete_endpoint(id).await
    }
    async fn delivery(&self, id: &str) -> StoreResult<Option<(Delivery, Vec<Attempt>)>> {
        self.0.delivery(id).await
    }
    async fn deliveries(
        &self,
        filter: &DeliveryFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<(Delivery, Vec<Attempt>)>> {
        self.0.deliveries(filter, cursor, limit).await
    }
    async fn claim_delivery(
        &self,
        id: &str,
        now: Time,
        lease_until: Time,
    ) -> StoreResult<Option<(Delivery, Message)>> {
        self.0.claim_delivery(id, now, lease_until).await
    }
    async fn commit_attempt(&self, commit: &AttemptCommit) -> StoreResult<()> {
        self.0.commit_attempt(commit).await
    }
    async fn add_message(&self, message: &Message, deliveries: &[Delivery]) -> StoreResult<()> {
        self.0.add_message(message, deliveries).await
    }
    async fn put_delivery(&self, delivery: &Delivery) -> StoreResult<()> {
        self.0.put_delivery(delivery).await
    }
    async fn signal_state(
        &self,
        customers: &[String],
        usage: &[UsageKey],
    ) -> StoreResult<SignalState> {
        self.0.signal_state(customers, usage).await
    }
    async fn apply_signal_changes(&self, changes: &SignalChanges) -> StoreResult<()> {
        self.0.apply_signal_changes(changes).await
    }
    /// Deferred to the `schedule` function, as `entities_after` is: a
    /// threshold evaluated against every customer could outlast the API's
    /// 30 s. The notification's stream record runs it (`schedule::thresholds`).
    async fn current_values(
        &self,
        _measure: Measure,
        _metric: Option<&str>,
        _month: &str,
    ) -> StoreResult<Vec<(String, f64, String)>> {
        Ok(Vec::new())
    }
    async fn alerts_of(&self, customer_id: &str) -> StoreResult<Vec<AlertState>> {
        self.0.alerts_of(customer_id).await
    }
}
