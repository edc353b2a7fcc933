//! The embedded scheduler: timers are rows (pending schedules and pending
//! deliveries), and one loop sleeps until the soonest is due, waking early
//! when a sooner one is registered. On start it finds whatever fell due
//! while the process was down; the core decides if that is still in catch-up.

use crate::sqlite::SqliteStore;
use async_trait::async_trait;
use lifecycle_core::planner::TimerChange;
use lifecycle_core::ports::Scheduler;
use lifecycle_core::service::Service;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// Schedules fired per pass (in one commit).
const BATCH: usize = 256;
/// Timers run at once; each holds one store round trip or one HTTP request.
const CONCURRENCY: usize = 64;
/// Attempts in flight to one endpoint: a slow one holds at most this many
/// of the slots above, never all of them.
const PER_ENDPOINT: usize = 8;
/// The loop looks again at least this often, whatever it was told.
const MAX_SLEEP: Duration = Duration::from_secs(30);

/// The scheduler port: registering a timer just wakes the loop, which reads
/// what is due from the store.
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
}

/// Bounds on what runs at once: overall and per endpoint.
struct Slots {
    all: Arc<Semaphore>,
    endpoints: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Slots {
    fn endpoint(&self, id: &str) -> Arc<Semaphore> {
        let mut endpoints = self.endpoints.lock().unwrap();
        endpoints
            .entry(id.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(PER_ENDPOINT)))
            .clone()
    }
}

/// Starts what is due: every due schedule in one fire, and each endpoint's
/// due deliveries up to its free slots. Returns how many timers started.
async fn pass(
    service: &Arc<Service>,
    store: &SqliteStore,
    slots: &Slots,
    in_flight: &Arc<Mutex<HashSet<String>>>,
    wake: &Arc<Notify>,
    now: lifecycle_core::time::Time,
) -> Result<usize, lifecycle_core::ports::StoreError> {
    let mut started = 0;
    let fires: Vec<String> = store
        .due_schedules(now, BATCH)
        .await?
        .into_iter()
        .filter(|id| !in_flight.lock().unwrap().contains(id))
        .collect();
    if !fires.is_empty() {
        started += fires.len();
        let permit = slots
            .all
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let service = service.clone();
        run_marked(fires.clone(), in_flight, wake, permit, async move {
            service.fire_many(&fires).await.map(drop)
        });
    }
    for endpoint in service.store.endpoints().await? {
        let endpoint_slots = slots.endpoint(&endpoint.id);
        let free = endpoint_slots.available_permits();
        if free == 0 {
            continue;
        }
        // In-flight ones may still read as due until they are claimed: ask for enough.
        for id in store
            .due_deliveries(endpoint.id.clone(), now, free + PER_ENDPOINT)
            .await?
        {
            if in_flight.lock().unwrap().contains(&id) {
                continue;
            }
            let Ok(endpoint_permit) = endpoint_slots.clone().try_acquire_owned() else {
                break;
            };
            let permit = slots
                .all
                .clone()
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            started += 1;
            let service = service.clone();
            let attempt_id = id.clone();
            run_marked(vec![id], in_flight, wake, permit, async move {
                let outcome = service.attempt(&attempt_id).await;
                drop(endpoint_permit);
                outcome
            });
        }
    }
    Ok(started)
}

/// Runs `work` for timers `ids`, marked in flight until it ends; a failed
/// timer stays due and is picked up again after a pause.
fn run_marked(
    ids: Vec<String>,
    in_flight: &Arc<Mutex<HashSet<String>>>,
    wake: &Arc<Notify>,
    permit: OwnedSemaphorePermit,
    work: impl std::future::Future<Output = Result<(), lifecycle_core::error::ApiError>>
        + Send
        + 'static,
) {
    in_flight.lock().unwrap().extend(ids.iter().cloned());
    let (in_flight, wake) = (in_flight.clone(), wake.clone());
    tokio::spawn(async move {
        if let Err(error) = work.await {
            tracing::error!(%error, timers = ids.len(), first = %ids[0], "timers failed; they stay due and are retried");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let mut marked = in_flight.lock().unwrap();
        for id in &ids {
            marked.remove(id);
        }
        drop(marked);
        drop(permit);
        wake.notify_one();
    });
}

pub async fn run(service: Arc<Service>, store: SqliteStore, wake: Arc<Notify>) {
    let in_flight: Arc<Mutex<HashSet<String>>> = Arc::default();
    let slots = Slots {
        all: Arc::new(Semaphore::new(CONCURRENCY)),
        endpoints: Mutex::default(),
    };
    loop {
        let now = service.clock.now();
        match pass(&service, &store, &slots, &in_flight, &wake, now).await {
            Ok(0) => {}
            Ok(_) => continue,
            Err(error) => {
                tracing::error!(%error, "could not read due timers");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        }
        let next = store.next_due_after(now).await.ok().flatten();
        let sleep = sleep_until(next, service.clock.now());
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = wake.notified() => {}
        }
    }
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
