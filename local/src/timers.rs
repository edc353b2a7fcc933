//! The embedded scheduler: timers are rows (pending schedules and pending
//! deliveries), and one loop sleeps until the soonest is due, waking early
//! when a sooner one is registered. On start it finds whatever fell due
//! while the process was down; the core decides if that is still in catch-up.

use crate::metrics::LocalMetrics;
use crate::sqlite::SqliteStore;
use async_trait::async_trait;
use lifecycle_core::planner::TimerChange;
use lifecycle_core::ports::Scheduler;
use lifecycle_core::service::Service;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// Schedules fired per pass (in one commit).
const BATCH: usize = 1024;
/// Due deliveries one endpoint's batch takes at most.
const DELIVERY_BATCH: usize = 1024;
/// Attempts in flight to one endpoint: a slow one holds at most this many
/// of the sender's requests, never all of them.
const PER_ENDPOINT: usize = 8;
/// Entities planned again per pass as their deferred moments come within
/// the horizon.
const MATERIALISE_BATCH: usize = 500;
/// The loop looks again at least this often, whatever it was told.
const MAX_SLEEP: Duration = Duration::from_secs(30);
/// How often the per-minute figures go to the store: what a kill -9 can
/// lose of them (a graceful stop flushes them all).
pub const STATS_EVERY: Duration = Duration::from_secs(2);

/// The scheduler port: registering a timer, or deferring a moment, just
/// wakes the loop, which reads what is due from the store.
pub struct LocalScheduler {
    wake: Arc<Notify>,
}

impl LocalScheduler {
    pub fn new(wake: Arc<Notify>) -> Self {
        Self { wake }
    }
}

#[async_trait]
impl Scheduler for LocalScheduler {
    async fn apply(&self, changes: &[TimerChange]) -> Result<(), String> {
        if changes.iter().any(|c| matches!(c, TimerChange::Set { .. })) {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// The loop works out again when the soonest deferred moment comes
    /// within the horizon (it may be sooner than it was sleeping for).
    async fn deferred(&self, _earliest: lifecycle_core::time::Time) -> Result<(), String> {
        self.wake.notify_one();
        Ok(())
    }
}

/// What runs now: the schedules being fired, the endpoints being delivered to.
#[derive(Default)]
struct Running {
    fires: Mutex<HashSet<String>>,
    endpoints: Mutex<HashSet<String>>,
}

/// Starts what is due: every due schedule not being fired yet in one fire,
/// and for each endpoint not already being delivered to, a batch of its due
/// deliveries (sent `PER_ENDPOINT` at a time). Returns how many timers started.
async fn pass(
    service: &Arc<Service>,
    store: &SqliteStore,
    running: &Arc<Running>,
    wake: &Arc<Notify>,
    now: lifecycle_core::time::Time,
) -> Result<usize, lifecycle_core::ports::StoreError> {
    let mut started = match service.materialise(MATERIALISE_BATCH).await {
        Ok(planned) => planned,
        Err(error) => {
            tracing::error!(%error, "could not plan the moments coming within the horizon");
            0
        }
    };
    let fires: Vec<String> = store
        .due_schedules(now, BATCH)
        .await?
        .into_iter()
        .filter(|id| !running.fires.lock().unwrap().contains(id))
        .collect();
    if !fires.is_empty() {
        started += fires.len();
        running.fires.lock().unwrap().extend(fires.iter().cloned());
        let (service, running, wake) = (service.clone(), running.clone(), wake.clone());
        tokio::spawn(async move {
            let outcome = service.fire_many(&fires).await.map(drop);
            settle(outcome, &fires[0], fires.len()).await;
            let mut marked = running.fires.lock().unwrap();
            for id in &fires {
                marked.remove(id);
            }
            drop(marked);
            wake.notify_one();
        });
    }
    for endpoint in service.store.endpoints().await? {
        if running.endpoints.lock().unwrap().contains(&endpoint.id) {
            continue;
        }
        let due = store
            .due_deliveries(endpoint.id.clone(), now, DELIVERY_BATCH)
            .await?;
        if due.is_empty() {
            continue;
        }
        started += due.len();
        running
            .endpoints
            .lock()
            .unwrap()
            .insert(endpoint.id.clone());
        let (service, running, wake) = (service.clone(), running.clone(), wake.clone());
        tokio::spawn(async move {
            let outcome = service.attempt_many(&due, PER_ENDPOINT).await;
            settle(outcome, &due[0], due.len()).await;
            running.endpoints.lock().unwrap().remove(&endpoint.id);
            wake.notify_one();
        });
    }
    Ok(started)
}

/// Logs failed timers; they stay due and are picked up again after a pause.
async fn settle(outcome: Result<(), lifecycle_core::error::ApiError>, first: &str, timers: usize) {
    if let Err(error) = outcome {
        tracing::error!(%error, timers, first, "timers failed; they stay due and are retried");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Runs the timers, and flushes the per-minute figures every `STATS_EVERY`.
pub async fn run(
    service: Arc<Service>,
    store: SqliteStore,
    wake: Arc<Notify>,
    metrics: Arc<LocalMetrics>,
) {
    tokio::spawn(flush_stats(service.clone()));
    let running: Arc<Running> = Arc::default();
    loop {
        let now = service.clock.now();
        match pass(&service, &store, &running, &wake, now).await {
            Ok(0) => {}
            Ok(_) => continue,
            Err(error) => {
                tracing::error!(%error, "could not read due timers");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        }
        let next = store.next_due_after(now).await.ok().flatten();
        let next = next
            .into_iter()
            .chain(next_within_horizon(&service, &store, now).await)
            .min();
        let sleep = sleep_until(next, service.clock.now());
        tokio::select! {
            _ = tokio::time::sleep(sleep) => metrics.timer_woke("timer"),
            _ = wake.notified() => metrics.timer_woke("notified"),
        }
    }
}

async fn flush_stats(service: Arc<Service>) {
    let mut every = tokio::time::interval(STATS_EVERY);
    loop {
        every.tick().await;
        if let Err(error) = service.flush_stats().await {
            tracing::warn!(%error, "could not store the per-minute figures; the next flush retries");
        }
    }
}

/// When the soonest deferred moment comes within the horizon, so that the
/// loop wakes to plan it. At least a second from now: one already within
/// it that the pass could not plan (the store failing) is retried then,
/// not in a busy loop.
async fn next_within_horizon(
    service: &Service,
    store: &SqliteStore,
    now: lifecycle_core::time::Time,
) -> Option<lifecycle_core::time::Time> {
    let horizon = service.config.horizon?;
    let earliest = store.earliest_deferred().await.ok().flatten()?;
    Some((earliest - horizon).max(now + chrono::Duration::seconds(1)))
}

/// How long the loop sleeps before the next timer. One that fell due while
/// the pass ran is due now: no sleep (sleeping until a wake-up instead cost
/// moments milliseconds apart up to `MAX_SLEEP` of lag).
fn sleep_until(
    next: Option<lifecycle_core::time::Time>,
    now: lifecycle_core::time::Time,
) -> Duration {
    next.map(|at| (at - now).to_std().unwrap_or(Duration::ZERO))
        .unwrap_or(MAX_SLEEP)
        .min(MAX_SLEEP)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration as Span, Utc};

    #[test]
    fn sleeps_until_the_next_timer_and_not_past_one_already_due() {
        let now = Utc::now();
        assert_eq!(
            sleep_until(Some(now - Span::milliseconds(2)), now),
            Duration::ZERO
        );
        assert_eq!(
            sleep_until(Some(now + Span::milliseconds(250)), now),
            Duration::from_millis(250)
        );
        assert_eq!(sleep_until(Some(now + Span::hours(1)), now), MAX_SLEEP);
        assert_eq!(sleep_until(None, now), MAX_SLEEP);
    }
}
