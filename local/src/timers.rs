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

/// Timers read per pass over the due ones.
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

    /// Endpoints with no slot left.
    fn busy(&self) -> Vec<String> {
        let endpoints = self.endpoints.lock().unwrap();
        endpoints
            .iter()
            .filter(|(_, s)| s.available_permits() == 0)
            .map(|(id, _)| id.clone())
            .collect()
    }
}

pub async fn run(service: Arc<Service>, store: SqliteStore, wake: Arc<Notify>) {
    let in_flight: Arc<Mutex<HashSet<String>>> = Arc::default();
    let slots = Slots {
        all: Arc::new(Semaphore::new(CONCURRENCY)),
        endpoints: Mutex::default(),
    };
    loop {
        let now = service.clock.now();
        let due = match store.due_timers(now, BATCH, slots.busy()).await {
            Ok(due) => due,
            Err(error) => {
                tracing::error!(%error, "could not read due timers");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut started = 0;
        for (id, endpoint) in due {
            if in_flight.lock().unwrap().contains(&id) {
                continue;
            }
            let endpoint_permit: Option<OwnedSemaphorePermit> = match &endpoint {
                Some(endpoint) => match slots.endpoint(endpoint).try_acquire_owned() {
                    Ok(permit) => Some(permit),
                    Err(_) => continue,
                },
                None => None,
            };
            let permit = slots
                .all
                .clone()
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            in_flight.lock().unwrap().insert(id.clone());
            started += 1;
            let (service, in_flight, wake) = (service.clone(), in_flight.clone(), wake.clone());
            tokio::spawn(async move {
                // Firing only makes the deliveries; each is then its own timer,
                // so the per-endpoint bound applies to every attempt.
                let outcome = match endpoint_permit {
                    Some(_) => service.attempt(&id).await,
                    None => service.fire(&id).await.map(drop),
                };
                if let Err(error) = outcome {
                    tracing::error!(%error, timer = %id, "timer failed; it stays due and is retried");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                in_flight.lock().unwrap().remove(&id);
                drop((permit, endpoint_permit));
                wake.notify_one();
            });
        }
        if started > 0 {
            continue;
        }
        let next = store.next_due_after(now).await.ok().flatten();
        let sleep = next
            .and_then(|at| (at - service.clock.now()).to_std().ok())
            .unwrap_or(MAX_SLEEP)
            .min(MAX_SLEEP);
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = wake.notified() => {}
        }
    }
}
