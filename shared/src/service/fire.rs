//! Firing due schedules: many at once, in one commit, so a storm of moments
//! due at the same second drains at store speed.

use super::Service;
use crate::endpoint::Endpoint;
use crate::entity::{EntityKey, EntityRecord};
use crate::error::ApiError;
use crate::notification::Notification;
use crate::payload;
use crate::planner::stale_reason;
use crate::ports::{FireCommit, Message};
use crate::schedule::{Delivery, DeliveryStatus, Schedule, ScheduleState};
use crate::time::Time;
use chrono::Duration;
use std::collections::HashMap;

/// A schedule firing more than this after its time says so (`late`): a
/// restart after downtime, a backlog. (Skipping for missed catch-up allows
/// more, see `planner::FIRE_GRACE_SECS`: jitter must not drop a webhook.)
const LATE_AFTER_SECS: i64 = 1;

impl Service {
    /// Fires a due schedule; see [`Service::fire_many`].
    pub async fn fire(&self, schedule_id: &str) -> Result<Vec<String>, ApiError> {
        self.fire_many(&[schedule_id.to_string()]).await
    }

    /// Fires the due schedules among `ids`: each is skipped if it went stale,
    /// otherwise gets its webhook and one delivery per endpoint. Firing twice
    /// does nothing more. Returns the ids of the deliveries now due.
    pub async fn fire_many(&self, ids: &[String]) -> Result<Vec<String>, ApiError> {
        Ok(self.fire_batch(ids).await?.deliveries)
    }

    /// [`Service::fire_many`], also saying which ids the store does not
    /// know (yet: a store whose reads by id lag its writes).
    pub async fn fire_batch(&self, ids: &[String]) -> Result<Fired, ApiError> {
        let (fired, _) = self.fire_leased(ids, None).await?;
        Ok(fired)
    }

    /// Fires the due schedules among `ids` and attempts what they made at
    /// once, `in_flight` sends at a time. The deliveries are written already
    /// leased to this caller (their next attempt at the lease's end), so
    /// they are sent without a claim: a fire's webhook costs the store its
    /// fire and its outcome, and a crash before the outcome is retried
    /// after the lease like any claimed attempt.
    pub async fn fire_and_attempt(
        &self,
        ids: &[String],
        in_flight: usize,
    ) -> Result<Fired, ApiError> {
        let (fired, leased) = self.fire_leased(ids, Some(in_flight.max(1))).await?;
        self.attempt_leased(leased, in_flight).await?;
        Ok(fired)
    }

    /// The fires, with each pending delivery's message; `lease_for`: the
    /// sends in flight the deliveries are leased for (None: due at once).
    async fn fire_leased(
        &self,
        ids: &[String],
        lease_for: Option<usize>,
    ) -> Result<(Fired, Vec<(Delivery, Message)>), ApiError> {
        let _changes = self.changes.write().await;
        let now = self.clock.now();
        let found = self.store.schedules(ids).await?;
        let known: std::collections::HashSet<&str> = found.iter().map(|s| s.id.as_str()).collect();
        let unknown: Vec<String> = ids
            .iter()
            .filter(|id| !known.contains(id.as_str()))
            .cloned()
            .collect();
        let due: Vec<Schedule> = found
            .into_iter()
            .filter(|s| s.state == ScheduleState::Pending && s.fire_at <= now)
            .collect();
        if due.is_empty() {
            let fired = Fired {
                deliveries: Vec::new(),
                unknown,
            };
            return Ok((fired, Vec::new()));
        }
        let mut keys: Vec<EntityKey> = due.iter().map(|s| s.entity.clone()).collect();
        keys.sort();
        keys.dedup();
        let records: HashMap<EntityKey, EntityRecord> = self
            .store
            .entities(&keys)
            .await?
            .into_iter()
            .map(|r| (r.key(), r))
            .collect();
        let notifications: HashMap<String, Notification> = self
            .store
            .notifications()
            .await?
            .into_iter()
            .map(|n| (n.id.clone(), n))
            .collect();
        let endpoints = self.store.endpoints().await?;
        let mut commits: Vec<FireCommit> = due
            .iter()
            .map(|s| {
                fire_one(
                    s,
                    records.get(&s.entity),
                    notifications.get(&s.notification_id),
                    &endpoints,
                    now,
                )
            })
            .collect();
        if let Some(in_flight) = lease_for {
            let pending = commits.iter().flat_map(|c| &c.deliveries);
            let count = pending
                .filter(|d| d.status == DeliveryStatus::Pending)
                .count();
            let lease_until = now + Self::attempt_lease(count.div_ceil(in_flight).max(1));
            for delivery in commits.iter_mut().flat_map(|c| c.deliveries.iter_mut()) {
                if delivery.status == DeliveryStatus::Pending {
                    delivery.next_attempt_at = Some(lease_until);
                }
            }
        }
        let committed = self.store.commit_fires(&commits).await?;
        let fired = (commits.iter().zip(&committed))
            .filter(|(commit, done)| **done && commit.message.is_some())
            .flat_map(|(commit, _)| &commit.deliveries);
        self.count_fired(fired, now);
        let mut leased = Vec::new();
        for (commit, done) in commits.into_iter().zip(committed) {
            let (true, Some(message)) = (done, commit.message) else {
                continue;
            };
            for delivery in commit.deliveries {
                if delivery.status == DeliveryStatus::Pending {
                    leased.push((delivery, message.clone()));
                }
            }
        }
        let deliveries: Vec<Delivery> = leased.iter().map(|(d, _)| d.clone()).collect();
        if lease_for.is_none() {
            self.wake_deliveries(&deliveries, now).await;
        }
        let fired = Fired {
            deliveries: deliveries.into_iter().map(|d| d.id).collect(),
            unknown,
        };
        Ok((fired, leased))
    }
}

/// What a batch of fires came to.
#[derive(Debug, Default)]
pub struct Fired {
    /// The deliveries now due, to attempt.
    pub deliveries: Vec<String>,
    /// Ids the store had no schedule for.
    pub unknown: Vec<String>,
}

/// What firing one due schedule comes to.
pub(super) fn fire_one(
    schedule: &Schedule,
    record: Option<&EntityRecord>,
    notification: Option<&Notification>,
    endpoints: &[Endpoint],
    now: Time,
) -> FireCommit {
    let mut next = schedule.clone();
    next.updated_at = now;
    let expected_fire_at = schedule.fire_at;
    if let Some(reason) = stale_reason(schedule, record, notification, now) {
        next.state = ScheduleState::Skipped;
        next.reason = Some(reason.clone());
        let skipped = Delivery::skipped(schedule, &reason, now);
        return FireCommit {
            schedule: next,
            expected_fire_at,
            message: None,
            deliveries: vec![skipped],
        };
    }
    let late = schedule.late || now - schedule.fire_at > Duration::seconds(LATE_AFTER_SECS);
    let body = payload::build(schedule, record, late).to_string();
    let mut deliveries: Vec<_> = endpoints
        .iter()
        .filter(|e| e.accepts(schedule.event_type))
        .map(|e| Delivery::to_endpoint(schedule, &e.id, now))
        .collect();
    if deliveries.is_empty() {
        deliveries.push(Delivery::skipped(
            schedule,
            "no enabled webhook endpoint takes this event type",
            now,
        ));
    }
    next.state = ScheduleState::Fired;
    let message = Message {
        id: schedule.webhook_id(),
        body,
    };
    FireCommit {
        schedule: next,
        expected_fire_at,
        message: Some(message),
        deliveries,
    }
}
