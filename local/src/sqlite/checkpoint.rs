//! Checkpoints off the writer: a thread with its own connection copies the
//! WAL back into the database file while the writer goes on writing, on
//! the other core. Checkpointing inside the writer's commits took about a
//! third of its time while planning 1,000,000 contracts.

use rusqlite::Connection;
use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often the checkpointer looks at the WAL.
const EVERY: Duration = Duration::from_millis(250);
/// The writer checkpoints by itself only past this many pages of WAL
/// (400 MB): a bound should the checkpointer fall behind.
pub(super) const WRITER_BACKSTOP: &str = "PRAGMA wal_autocheckpoint = 100000;";

/// Starts the checkpointer; it stops once `alive` is dropped.
pub(super) fn start(path: &Path, alive: &Arc<()>) -> rusqlite::Result<()> {
    let connection = Connection::open(path)?;
    connection.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA synchronous = FULL;")?;
    let alive: Weak<()> = Arc::downgrade(alive);
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            while alive.upgrade().is_some() {
                std::thread::sleep(EVERY);
                // PASSIVE never waits for the writer or readers; what it
                // cannot copy now it copies on a later turn.
                if let Err(error) =
                    connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                {
                    tracing::warn!(%error, "checkpoint failed; the next one retries");
                }
            }
        })
        .map(drop)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}
