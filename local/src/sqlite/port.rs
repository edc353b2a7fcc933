//! The store port, delegating to the table modules.

use super::{to_json, SqliteStore};
use async_trait::async_trait;
use lifecycle_core::endpoint::Endpoint;
use lifecycle_core::entity::{EntityKey, EntityKind, EntityRecord};
use lifecycle_core::metrics::Backlog;
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
impl Store for SqliteStore {
    async fn install(&self, defaults: &[Notification]) -> StoreResult<()> {
        self.install_notifications(defaults.to_vec()).await
    }

    async fn write_state(
        &self,
        event_ids: &[String],
        keys: &[EntityKey],
    ) -> StoreResult<WriteState> {
        self.load_write_state(event_ids.to_vec(), keys.to_vec())
            .await
    }

    async fn commit_writes(&self, commit: &WriteCommit) -> StoreResult<()> {
        self.commit_write_batch(commit.clone()).await
    }

    async fn entity(&self, key: &EntityKey) -> StoreResult<Option<EntityRecord>> {
        self.load_entity(key.clone()).await
    }

    async fn entities(&self, keys: &[EntityKey]) -> StoreResult<Vec<EntityRecord>> {
        self.load_entities(keys.to_vec()).await
    }

    async fn entities_after(
        &self,
        kind: EntityKind,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<EntityRecord>> {
        self.load_entities_after(kind, after.map(str::to_string), limit)
            .await
    }

    async fn notifications(&self) -> StoreResult<Vec<Notification>> {
        self.cached_notifications().await
    }

    async fn notification(&self, id: &str) -> StoreResult<Option<Notification>> {
        self.load_by_id("notifications", id.to_string()).await
    }

    async fn put_notification(&self, notification: &Notification) -> StoreResult<()> {
        self.put_record(
            "notifications",
            notification.id.clone(),
            to_json(notification),
        )
        .await
    }

    async fn delete_notification(&self, id: &str) -> StoreResult<()> {
        self.delete_record("notifications", id.to_string()).await
    }

    async fn schedules_of(
        &self,
        notification_id: &str,
        entities: &[EntityKey],
    ) -> StoreResult<Vec<Schedule>> {
        self.schedules_of_notification(notification_id.to_string(), entities.to_vec())
            .await
    }

    async fn apply_plan(&self, plan: &Plan) -> StoreResult<()> {
        self.write_plan(plan.clone()).await
    }

    async fn deferred_entities(&self, until: Time, limit: usize) -> StoreResult<Vec<EntityKey>> {
        self.deferred_until(until, limit).await
    }

    async fn schedule(&self, id: &str) -> StoreResult<Option<Schedule>> {
        self.load_schedule(id.to_string()).await
    }

    async fn schedules(&self, ids: &[String]) -> StoreResult<Vec<Schedule>> {
        self.load_schedules(ids.to_vec()).await
    }

    async fn commit_fires(&self, fires: &[FireCommit]) -> StoreResult<Vec<bool>> {
        self.fire_all(fires.to_vec()).await
    }

    async fn customer_schedules(
        &self,
        customer_id: &str,
        state: ScheduleState,
        until: Option<Time>,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<Schedule>> {
        self.customer_page(
            customer_id.to_string(),
            state,
            until,
            cursor.map(str::to_string),
            limit,
        )
        .await
    }

    async fn endpoints(&self) -> StoreResult<Vec<Endpoint>> {
        self.cached_endpoints().await
    }

    async fn endpoint(&self, id: &str) -> StoreResult<Option<Endpoint>> {
        let endpoint: Option<Endpoint> = self.load_by_id("endpoints", id.to_string()).await?;
        endpoint.map(|e| self.opened(e)).transpose()
    }

    async fn put_endpoint(&self, endpoint: &Endpoint) -> StoreResult<()> {
        let sealed = self.sealed(endpoint);
        self.put_record("endpoints", endpoint.id.clone(), to_json(&sealed))
            .await
    }

    async fn delete_endpoint(&self, id: &str) -> StoreResult<()> {
        self.delete_record("endpoints", id.to_string()).await
    }

    async fn delivery(&self, id: &str) -> StoreResult<Option<(Delivery, Vec<Attempt>)>> {
        self.load_delivery(id.to_string()).await
    }

    async fn deliveries(
        &self,
        filter: &DeliveryFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<(Delivery, Vec<Attempt>)>> {
        self.delivery_page(filter.clone(), cursor.map(str::to_string), limit)
            .await
    }

    async fn claim_delivery(
        &self,
        id: &str,
        now: Time,
        lease_until: Time,
    ) -> StoreResult<Option<(Delivery, Message)>> {
        let mut claimed = self.claim(vec![id.to_string()], now, lease_until).await?;
        Ok(claimed.pop())
    }

    async fn commit_attempt(&self, commit: &AttemptCommit) -> StoreResult<()> {
        self.record_attempts(vec![commit.clone()]).await
    }

    async fn claim_deliveries(
        &self,
        ids: &[String],
        now: Time,
        lease_until: Time,
    ) -> StoreResult<Vec<(Delivery, Message)>> {
        self.claim(ids.to_vec(), now, lease_until).await
    }

    async fn commit_attempts(&self, commits: &[AttemptCommit]) -> StoreResult<()> {
        self.record_attempts(commits.to_vec()).await
    }

    async fn add_message(&self, message: &Message, deliveries: &[Delivery]) -> StoreResult<()> {
        self.insert_message(message.clone(), deliveries.to_vec())
            .await
    }

    async fn signal_state(
        &self,
        customers: &[String],
        usage: &[UsageKey],
    ) -> StoreResult<SignalState> {
        self.load_signal_state(customers.to_vec(), usage.to_vec())
            .await
    }

    async fn apply_signal_changes(&self, changes: &SignalChanges) -> StoreResult<()> {
        self.save_signal_changes(changes.clone()).await
    }

    async fn current_values(
        &self,
        measure: Measure,
        metric: Option<&str>,
        month: &str,
    ) -> StoreResult<Vec<(String, f64, String)>> {
        self.load_current_values(measure, metric.map(str::to_string), month.to_string())
            .await
    }

    async fn alerts_of(&self, customer_id: &str) -> StoreResult<Vec<AlertState>> {
        self.load_alerts_of(customer_id.to_string()).await
    }

    async fn put_delivery(&self, delivery: &Delivery) -> StoreResult<()> {
        self.save_delivery(delivery.clone()).await
    }

    async fn add_stats(&self, figures: &[MinuteStats]) -> StoreResult<()> {
        self.add_minute_stats(figures.to_vec()).await
    }

    async fn stats(&self, since: Time, until: Time) -> StoreResult<Vec<MinuteStats>> {
        self.load_stats(since, until).await
    }

    async fn backlog(&self) -> StoreResult<Option<Backlog>> {
        self.count_backlog().await.map(Some)
    }
}
