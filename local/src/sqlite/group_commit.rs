//! Group commit: the writes that wait for the writer are committed
//! together, in the order they came, each in a savepoint of one
//! transaction synced once. Sixteen clients sending one event each cost one
//! commit, not sixteen, and the index pages they share are written once; an
//! attempt's claim or outcome waits at most for the group ahead of it, not
//! behind every batch of an ingest burst. A write that fails is rolled back
//! to its savepoint alone; the others commit.
//!
//! No thread of its own: the first write to find no group running starts
//! one on the blocking pool, which takes groups from the front of the queue
//! (each up to `WEIGHT` events and timers, at least one write) until it is
//! empty. The connection is taken per group, so other writes interleave.

use super::{unavailable, SqliteStore};
use lifecycle_core::ports::{StoreError, StoreResult};
use rusqlite::Connection;
use std::collections::VecDeque;
use std::sync::Mutex;
use tokio::sync::oneshot;

type Work = Box<dyn FnOnce(&Connection) -> StoreResult<()> + Send>;

struct Job {
    work: Work,
    weight: usize,
    done: oneshot::Sender<StoreResult<()>>,
}

/// What one group takes at most, in rows of work (events, deliveries): a
/// batch of 500 and the small writes beside it, not four batches.
const WEIGHT: usize = 600;

/// Writes waiting for the writer.
#[derive(Default)]
pub(super) struct Queue {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    waiting: VecDeque<Job>,
    /// A leader is taking groups: a new write only queues.
    leading: bool,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next group from the front, or None (and no longer leading).
    fn next_group(&self) -> Option<Vec<Job>> {
        let mut state = self.lock();
        if state.waiting.is_empty() {
            state.leading = false;
            return None;
        }
        let mut group = Vec::new();
        let mut weight = 0;
        while let Some(job) = state.waiting.front() {
            if !group.is_empty() && weight + job.weight > WEIGHT {
                break;
            }
            weight += job.weight;
            group.extend(state.waiting.pop_front());
        }
        Some(group)
    }
}

impl SqliteStore {
    /// Runs `work` (about `weight` rows of it) in the next group's
    /// transaction, synced to disk before it returns; its error rolls back
    /// its own writes only.
    pub(super) async fn grouped(
        &self,
        weight: usize,
        work: impl FnOnce(&Connection) -> StoreResult<()> + Send + 'static,
    ) -> StoreResult<()> {
        let (done, outcome) = oneshot::channel();
        let job = Job {
            work: Box::new(work),
            weight: weight.max(1),
            done,
        };
        let lead = {
            let mut state = self.queue.lock();
            state.waiting.push_back(job);
            !std::mem::replace(&mut state.leading, true)
        };
        if lead {
            let (queue, connection, timer) = (
                self.queue.clone(),
                self.connection.clone(),
                self.write_seconds.clone(),
            );
            tokio::task::spawn_blocking(move || lead_groups(&queue, &connection, timer));
        }
        outcome
            .await
            .map_err(|_| StoreError::Unavailable("the group's commit stopped".into()))?
    }
}

/// Commits groups until the queue is empty.
fn lead_groups(
    queue: &Queue,
    connection: &Mutex<Connection>,
    timer: Option<prometheus_client::metrics::histogram::Histogram>,
) {
    while let Some(group) = queue.next_group() {
        let mut c = connection.lock().unwrap_or_else(|p| p.into_inner());
        let started = std::time::Instant::now();
        commit_group(&mut c, group);
        if let Some(timer) = &timer {
            timer.observe(started.elapsed().as_secs_f64());
        }
    }
}

/// One transaction, a savepoint per write, synced (FULL) at its commit;
/// each write told its outcome once the transaction is committed (or failed).
fn commit_group(c: &mut Connection, group: Vec<Job>) {
    let mut jobs = group.into_iter();
    let mut ran = Vec::new();
    let committed = (|| {
        super::set_synchronous(c, "FULL")?;
        let mut tx = c.transaction().map_err(unavailable)?;
        for job in jobs.by_ref() {
            let savepoint = tx.savepoint().map_err(unavailable)?;
            let outcome = (job.work)(&savepoint);
            if outcome.is_ok() {
                savepoint.commit().map_err(unavailable)?;
            }
            // Dropped uncommitted, a savepoint rolls back.
            ran.push((outcome, job.done));
        }
        tx.commit().map_err(unavailable)
    })();
    // What the writer's other users expect (see `SqliteStore::durably`);
    // should it fail, the next durable write sets FULL again anyway.
    super::set_synchronous(c, "NORMAL").ok();
    let failed =
        |error: &StoreError| StoreError::Unavailable(format!("the group's commit failed: {error}"));
    for (outcome, done) in ran {
        done.send(committed.as_ref().map_err(failed).and(outcome))
            .ok();
    }
    for job in jobs {
        let never = committed.as_ref().err().map(failed);
        job.done
            .send(Err(
                never.unwrap_or_else(|| StoreError::Unavailable("not run".into()))
            ))
            .ok();
    }
}
