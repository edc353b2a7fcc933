//! Checkpoints off the writer: a thread with its own connection copies the
//! WAL back into the database file while the writer goes on writing, on
//! the other core. Checkpointing inside the writer's commits took about a
//! third of its time while planning 1,000,000 contracts.
//!
//! SQLite keeps a WAL at its largest size for reuse: 567 MiB at rest after
//! 20,000 single writes. Past `WAL_AT_REST` it is cut back: by the writer
//! when it restarts the WAL under load (`journal_size_limit`), and by the
//! checkpointer to nothing once everything in it has been copied.

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
/// The WAL the checkpointer leaves at rest, at most.
const WAL_AT_REST: u64 = 64 << 20;

/// Starts the checkpointer; it stops once `alive` is dropped.
pub(super) fn start(path: &Path, alive: &Arc<()>) -> rusqlite::Result<()> {
    let connection = Connection::open(path)?;
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let wal = std::path::PathBuf::from(wal);
    connection.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA synchronous = FULL;")?;
    let alive: Weak<()> = Arc::downgrade(alive);
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            while alive.upgrade().is_some() {
                std::thread::sleep(EVERY);
                if let Err(error) = checkpoint(&connection, &wal) {
                    tracing::warn!(%error, "checkpoint failed; the next one retries");
                }
            }
        })
        .map(drop)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// Copies what it can of the WAL into the database; truncates a WAL over
/// `WAL_AT_REST` once all of it is copied.
fn checkpoint(connection: &Connection, wal: &Path) -> rusqlite::Result<()> {
    // PASSIVE never waits for the writer or readers; what it cannot copy
    // now it copies on a later turn.
    let (log, copied): (i64, i64) =
        connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get(1)?, row.get(2)?))
        })?;
    let large = std::fs::metadata(wal).is_ok_and(|m| m.len() > WAL_AT_REST);
    if large && log == copied {
        // Nothing left to copy, so this only waits for readers of the old
        // frames to finish, holding writers back meanwhile.
        connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    }
    Ok(())
}
