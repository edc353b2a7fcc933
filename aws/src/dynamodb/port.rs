//! The store port, delegating to the item modules.

use super::{to_json, DynamoStore};
use async_trait::async_trait;
use lifecycle_core::endpoint::Endpoint;
use lifecycle_core::entity::{EntityKey, EntityKind, EntityRecord};
use lifecycle_core::notification::Notification;
use lifecycle_core::planner::Plan;
use lifecycle_core::ports::{
    AttemptCommit, DeliveryFilter, FireCommit, Measure, Message, Page, SignalChanges, SignalState,
    Store, StoreResult, UsageKey, WriteCommit, WriteState,
};
use lifecycle_core::schedule::{Attempt, Delivery, Schedule, ScheduleState};
use lifecycle_core::stats::MinuteStats;
use lifecycle_core::threshold::AlertState;
use lifecycle_core::time::Time;

#[async_trait]
impl Store for DynamoStore {
    async fn install(&self, defaults: &[Notification]) -> StoreResult<()> {
        self.install_notifications(defaults).await
    }

    async fn write_state(
        &self,
        event_ids: &[String],
        keys: &[EntityKey],
    ) -> StoreResult<WriteState> {
        self.load_write_state(event_ids, keys).await
    }

    async fn commit_writes(&self, commit: &WriteCommit) -> StoreResult<()> {
        self.commit_write_batch(commit).await
    }

    async fn entity(&self, key: &EntityKey) -> StoreResult<Option<EntityRecord>> {
        self.load_entity(key).await
    }

    async fn entities(&self, keys: &[EntityKey]) -> StoreResult<Vec<EntityRecord>> {
        self.load_entities(keys).await
    }

    async fn entities_after(
        &self,
        kind: EntityKind,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<EntityRecord>> {
        self.load_entities_after(kind, after, limit).await
    }

    async fn notifications(&self) -> StoreResult<Vec<Notification>> {
        self.cached_notifications().await
    }

    async fn notification(&self, id: &str) -> StoreResult<Option<Notification>> {
        self.load_one("NTF", id).await
    }

    async fn put_notification(&self, notification: &Notification) -> StoreResult<()> {
        self.put_config_record("NTF", &notification.id, to_json(notification), "NTF")
            .await
    }

    async fn delete_notification(&self, id: &str) -> StoreResult<()> {
        self.delete_config_record("NTF", id).await
    }

    async fn schedules_of(
        &self,
        notification_id: &str,
        entities: &[EntityKey],
    ) -> StoreResult<Vec<Schedule>> {
        self.schedules_of_notification(notification_id, entities)
            .await
    }

    async fn apply_plan(&self, plan: &Plan) -> StoreResult<()> {
        self.write_plan(plan).await
    }

    async fn deferred_entities(&self, until: Time, limit: usize) -> StoreResult<Vec<EntityKey>> {
        self.load_deferred_entities(until, limit).await
    }

    async fn schedule(&self, id: &str) -> StoreResult<Option<Schedule>> {
        Ok(self.load_schedules(&[id.to_string()]).await?.pop())
    }

    async fn schedules(&self, ids: &[String]) -> StoreResult<Vec<Schedule>> {
        self.load_schedules(ids).await
    }

    async fn commit_fires(&self, fires: &[FireCommit]) -> StoreResult<Vec<bool>> {
        self.fire_all(fires).await
    }

    async fn customer_schedules(
        &self,
        customer_id: &str,
        state: ScheduleState,
        until: Option<Time>,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<Schedule>> {
        self.customer_page(customer_id, state, until, cursor, limit)
            .await
    }

    async fn endpoints(&self) -> StoreResult<Vec<Endpoint>> {
        let endpoints = self.cached_endpoints().await?;
        endpoints.into_iter().map(|e| self.opened(e)).collect()
    }

    async fn endpoint(&self, id: &str) -> StoreResult<Option<Endpoint>> {
        let endpoint: Option<Endpoint> = self.load_one("EP", id).await?;
        endpoint.map(|e| self.opened(e)).transpose()
    }

    async fn put_endpoint(&self, endpoint: &Endpoint) -> StoreResult<()> {
        let sealed = self.sealed(endpoint);
        self.put_config_record("EP", &endpoint.id, to_json(&sealed), "EP")
            .await
    }

    async fn delete_endpoint(&self, id: &str) -> StoreResult<()> {
        self.delete_config_record("EP", id).await
    }

    async fn delivery(&self, id: &str) -> StoreResult<Option<(Delivery, Vec<Attempt>)>> {
        self.load_delivery(id).await
    }

    async fn deliveries(
        &self,
        filter: &DeliveryFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<(Delivery, Vec<Attempt>)>> {
        self.delivery_page(filter, cursor, limit).await
    }

    async fn claim_delivery(
        &self,
        id: &str,
        now: Time,
        lease_until: Time,
    ) -> StoreResult<Option<(Delivery, Message)>> {
        self.claim(id, now, lease_until).await
    }

    async fn commit_attempt(&self, commit: &AttemptCommit) -> StoreResult<()> {
        self.record_attempts(std::slice::from_ref(commit)).await
    }

    async fn claim_deliveries(
        &self,
        ids: &[String],
        now: Time,
        lease_until: Time,
    ) -> StoreResult<Vec<(Delivery, Message)>> {
        self.claim_many(ids, now, lease_until).await
    }

    async fn commit_attempts(&self, commits: &[AttemptCommit]) -> StoreResult<()> {
        self.record_attempts(commits).await
    }

    async fn add_message(&self, message: &Message, deliveries: &[Delivery]) -> StoreResult<()> {
        self.insert_message(message, deliveries).await
    }

    async fn signal_state(
        &self,
        customers: &[String],
        usage: &[UsageKey],
    ) -> StoreResult<SignalState> {
        self.load_signal_state(customers, usage).await
    }

    async fn apply_signal_changes(&self, changes: &SignalChanges) -> StoreResult<()> {
        self.save_signal_changes(changes).await
    }

    async fn current_values(
        &self,
        measure: Measure,
        metric: Option<&str>,
        month: &str,
    ) -> StoreResult<Vec<(String, f64, String)>> {
        self.load_current_values(measure, metric, month).await
    }

    async fn alerts_of(&self, customer_id: &str) -> StoreResult<Vec<AlertState>> {
        self.load_alerts_of(customer_id).await
    }

    async fn put_delivery(&self, delivery: &Delivery) -> StoreResult<()> {
        self.save_delivery(delivery).await
    }

    async fn add_stats(&self, figures: &[MinuteStats]) -> StoreResult<()> {
        self.add_minute_stats(figures).await
    }

    async fn stats(&self, since: Time, until: Time) -> StoreResult<Vec<MinuteStats>> {
        self.load_stats(since, until).await
    }
}
