//! Group commit: writes that arrive while the writer is busy are committed
//! together, each in a savepoint of one transaction, so sixteen clients
//! sending one event each cost one commit and one sync of the WAL, not
//! sixteen, and the index pages they share are written once. A write that
//! fails is rolled back to its savepoint alone; the others commit.
//!
//! No thread of its own: the first write to find the queue empty leads, on
//! the blocking pool. When it has the connection it takes everything queued
//! by then; a write queued after that finds the queue empty and leads the
//! next group.

use super::{unavailable, SqliteStore};
use lifecycle_core::ports::{StoreError, StoreResult};
use rusqlite::Connection;
use std::sync::Mutex;
use tokio::sync::oneshot;

type Work = Box<dyn FnOnce(&Connection) -> StoreResult<()> + Send>;

/// Writes waiting for the next group.
#[derive(Default)]
pub(super) struct Queue {
    waiting: Mutex<Vec<(Work, oneshot::Sender<StoreResult<()>>)>>,
}

impl Queue {
    fn take(&self) -> Vec<(Work, oneshot::Sender<StoreResult<()>>)> {
        std::mem::take(&mut *self.waiting.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl SqliteStore {
    /// Runs `work` inside the next group's transaction, synced to disk
    /// before it returns; its error rolls back its own writes only.
    pub(super) async fn grouped(
        &self,
        work: impl FnOnce(&Connection) -> StoreResult<()> + Send + 'static,
    ) -> StoreResult<()> {
        let (done, outcome) = oneshot::channel();
        let leads = {
            let mut waiting = self.queue.waiting.lock().unwrap_or_else(|p| p.into_inner());
            waiting.push((Box::new(work), done));
            waiting.len() == 1
        };
        if leads {
            let queue = self.queue.clone();
            let led = self
                .durably(move |c| {
                    commit_group(c, queue.take());
                    Ok(())
                })
                .await;
            if let Err(error) = led {
                // The group never ran (or died): none of it waits forever.
                for (_, done) in self.queue.take() {
                    done.send(Err(error.clone())).ok();
                }
            }
        }
        outcome
            .await
            .map_err(|_| StoreError::Unavailable("the group's commit stopped".into()))?
    }
}

/// One transaction, a savepoint per write; each write told its outcome
/// once the transaction is committed (or failed).
fn commit_group(c: &mut Connection, group: Vec<(Work, oneshot::Sender<StoreResult<()>>)>) {
    let mut outcomes = Vec::with_capacity(group.len());
    let committed = (|| {
        let mut tx = c.transaction().map_err(unavailable)?;
        for (work, done) in group {
            let savepoint = tx.savepoint().map_err(unavailable)?;
            let outcome = work(&savepoint);
            if outcome.is_ok() {
                savepoint.commit().map_err(unavailable)?;
            }
            // Dropped uncommitted, a savepoint rolls back.
            outcomes.push((outcome, done));
        }
        tx.commit().map_err(unavailable)
    })();
    for (outcome, done) in outcomes {
        let told = match &committed {
            Ok(()) => outcome,
            Err(error) => Err(error.clone()),
        };
        done.send(told).ok();
    }
}
