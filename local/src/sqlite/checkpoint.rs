//! Checkpoints off the writer: a thread with its own connection copies the
//! WAL back into the database file while the writer goes on writing, on
//! the other core. Checkpointing inside the writer's commits took about a
//! third of its time while planning 1,000,000 contracts.
//!
//! SQLite keeps a WAL at its largest size for reuse: 567 MiB at rest after
//! 20,000 single writes. Under load the writer cuts it back to 64 MiB each
//! time it restarts it from the top (`journal_size_limit`), which it does
//! once a checkpoint has copied all of it; at rest, once no write came for
//! a turn, the checkpointer truncates it to nothing. (Truncating under load
//! holds every writer until the readers of the old frames finish: it made
//! a burst's webhooks stall for most of a second.)

use rusqlite::Connection;
use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often the checkpointer looks at the WAL.
const EVERY: Duration = Duration::from_millis(250);
/// The writer checkpoints by itself only past this many pages of WAL
/// (400 MB): a bound should the checkpointer fall behind. And the size the
/// writer cuts the WAL back to when it restarts it.
pub(super) const WRITER_BACKSTOP: &str =
    "PRAGMA wal_autocheckpoint = 100000; PRAGMA journal_size_limit = 67108864;";

/// Starts the checkpointer; it stops once `alive` is dropped.
pub(super) fn start(path: &Path, alive: &Arc<()>) -> rusqlite::Result<()> {
    let connection = Connection::open(path)?;
    connection.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA synchronous = FULL;")?;
    let alive: Weak<()> = Arc::downgrade(alive);
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            let mut frames = 0;
            while alive.upgrade().is_some() {
                std::thread::sleep(EVERY);
                match checkpoint(&connection, frames) {
                    Ok(now) => frames = now,
                    Err(error) => {
                        tracing::warn!(%error, "checkpoint failed; the next one retries")
                    }
                }
            }
        })
        .map(drop)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// Copies what it can of the WAL into the database; truncates it if all of
/// it is copied and no write came since the last turn (it held `before`
/// frames then). The frames it holds now.
fn checkpoint(connection: &Connection, before: i64) -> rusqlite::Result<i64> {
    // PASSIVE never waits for the writer or readers; what it cannot copy
    // now it copies on a later turn.
    let (frames, copied): (i64, i64) =
        connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get(1)?, row.get(2)?))
        })?;
    if frames > 0 && frames == copied && frames == before {
        connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        return Ok(0);
    }
    Ok(frames)
}
