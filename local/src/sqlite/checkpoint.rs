//! Checkpoints off the writer: a thread with its own connection copies the
//! WAL back into the database file while the writer goes on writing, on
//! the other core. Checkpointing inside the writer's commits took about a
//! third of its time while planning 1,000,000 contracts.
//!
//! SQLite keeps a WAL at its largest size for reuse: 567 MiB at rest after
//! 20,000 single writes. Past `WAL_AT_REST` it is cut back: by the writer
//! when it restarts the WAL under load (`journal_size_limit`), and by the
//! checkpointer to nothing once everything in it has been copied; and to
//! nothing too once no write came for a turn.

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
            let mut frames = 0;
            while alive.upgrade().is_some() {
                std::thread::sleep(EVERY);
                match checkpoint(&connection, &wal, frames) {
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

/// Copies what it can of the WAL into the database; truncates it once all
/// of it is copied if it is over `WAL_AT_REST` or no write came since the
/// last turn (it held `before` frames then). The frames it holds now.
fn checkpoint(connection: &Connection, wal: &Path, before: i64) -> rusqlite::Result<i64> {
    // PASSIVE never waits for the writer or readers; what it cannot copy
    // now it copies on a later turn.
    let (frames, copied): (i64, i64) =
        connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get(1)?, row.get(2)?))
        })?;
    let large = std::fs::metadata(wal).is_ok_and(|m| m.len() > WAL_AT_REST);
    let idle = frames > 0 && frames == before;
    if frames == copied && (large || idle) {
        // Nothing left to copy, so this only waits for readers of the old
        // frames to finish, holding writers back meanwhile.
        connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        return Ok(0);
    }
    Ok(frames)
}
