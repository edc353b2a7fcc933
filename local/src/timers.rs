//! The embedded scheduler: timers are rows (pending schedules and pending
//! deliveries), and one loop sleeps until the soonest is due, waking early
//! when a sooner one is registered. On start it finds whatever fell due
//! while the process was down; the core decides if that is still in catch-up.

use crate::sqlite::SqliteStore;
use async_trait::async_trait;
use lifecycle_core::planner::TimerChange;
use lifecycle_core::ports::Scheduler;
use lifecycle_core::service::Service;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};

/// Timers read per pass over the due ones.
const BATCH: usize = 256;
/// Timers run at once; each holds one store round trip or one HTTP request.
const CONCURRENCY: usize = 64;
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

pub async fn run(service: Arc<Service>, store: SqliteStore, wake: Arc<Notify>) {
    let in_flight: Arc<Mutex<HashSet<String>>> = Arc::default();
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    loop {
        let now = service.clock.now();
        let due = match store.due_timers(now, BATCH).await {
            Ok(due) => due,
            Err(error) => {
                tracing::error!(%error, "could not read due timers");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut started = 0;
        for id in due {
            if !in_flight.lock().unwrap().insert(id.clone()) {
                continue;
            }
            started += 1;
            let permit = permits
                .clone()
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let (service, in_flight, wake) = (service.clone(), in_flight.clone(), wake.clone());
            tokio::spawn(async move {
                if let Err(error) = service.run_timer(&id).await {
                    tracing::error!(%error, timer = %id, "timer failed; it stays due and is retried");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                in_flight.lock().unwrap().remove(&id);
                drop(permit);
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
