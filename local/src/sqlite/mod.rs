//! The store port on SQLite (WAL mode): one file in the data folder, one
//! connection behind a mutex, each call on the blocking thread pool.
//! Records are JSON beside the columns that queries filter and sort on.

mod checkpoint;
mod config_cache;
mod deliveries;
mod group_commit;
mod horizon;
mod leases;
mod messages;
mod port;
mod schedules;
pub mod schema;
mod sealing;
mod signals;
mod stats;
mod writes;

use lifecycle_core::ports::{StoreError, StoreResult};
use lifecycle_core::time::{from_millis, Time};
use prometheus_client::metrics::histogram::Histogram;
use rusqlite::{Connection, OptionalExtension};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The writer connection's settings. WAL lets readers and the writer
/// overlap; FULL syncs every commit, so an accepted write survives a power
/// cut as well as a kill -9 (fires and attempts, which are idempotent and
/// redone after a crash, switch to NORMAL). A 48 MiB page cache (the default
/// is 2 MiB; 100,000 single writes ran 0.75 as fast at the end as at the
/// start with 32 MiB, 0.8-0.9 with 48 or 64, and 64 took a burst's resident
/// memory to 131 MiB), and checkpoints every 40 MB of WAL rather than every 4 MB: a
/// storm's hot pages (indexes, the tails of the tables) are written back
/// once per checkpoint, so fewer checkpoints write much less (20,000
/// deliveries/s: 5,900 -> 8,000-8,600 with both). 8 KiB pages, for new
/// databases (an older one keeps its own): planning, ingest and fire storms
/// ran 5-15 % faster than with 4 KiB, much slower with 1 KiB, and no better
/// with 16 KiB. Their commits each write hundreds of index pages at random
/// places, and the cost is more per page than per byte.
pub const PRAGMAS: &str =
    "PRAGMA page_size = 8192; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
    PRAGMA busy_timeout = 5000; PRAGMA cache_size = -49152; PRAGMA wal_autocheckpoint = 10000;";

/// Reader connections: reads that need no transaction with a write run
/// on one of them, beside the writer and each other.
const READERS: usize = 3;

#[derive(Clone)]
pub struct SqliteStore {
    connection: Arc<Mutex<Connection>>,
    /// Connections for reads that need no transaction with a write: WAL
    /// lets them run beside the writer, on the other core.
    readers: Arc<Vec<Mutex<Connection>>>,
    /// Held while the store is in use: the checkpointer stops without it.
    _alive: Arc<()>,
    leases: Arc<leases::Leases>,
    /// The data folder's lock, held while the store is open.
    _lock: Arc<std::fs::File>,
    /// Seals endpoint secrets at rest (`open_sealed`); None keeps them plain.
    main_key: Option<Arc<lifecycle_core::sealing::MainKey>>,
    /// Times each call on the writer connection (`timing_writes`).
    write_seconds: Option<Histogram>,
    config: Arc<config_cache::ConfigCache>,
    queue: Arc<group_commit::Queue>,
}

impl SqliteStore {
    pub fn open(path: &Path) -> StoreResult<Self> {
        let lock = leases::lock(path)?;
        sealing::private_files(path)?;
        let mut connection = Connection::open(path).map_err(unavailable)?;
        connection.execute_batch(PRAGMAS).map_err(unavailable)?;
        connection
            .execute_batch(checkpoint::WRITER_BACKSTOP)
            .map_err(unavailable)?;
        connection.set_prepared_statement_cache_capacity(64);
        schema::migrate(&mut connection).map_err(unavailable)?;
        let readers = (0..READERS)
            .map(|_| {
                let reader = Connection::open(path)?;
                reader.execute_batch(
                    // A small cache: any write empties it at the next read.
                    "PRAGMA query_only = ON; PRAGMA busy_timeout = 5000; PRAGMA cache_size = -1024;",
                )?;
                reader.set_prepared_statement_cache_capacity(64);
                Ok(Mutex::new(reader))
            })
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(unavailable)?;
        let alive = Arc::new(());
        checkpoint::start(path, &alive).map_err(unavailable)?;
        let connection = Arc::new(Mutex::new(connection));
        Ok(Self {
            connection,
            readers: Arc::new(readers),
            _alive: alive,
            leases: Arc::default(),
            _lock: Arc::new(lock),
            main_key: None,
            write_seconds: None,
            config: Arc::default(),
            queue: Arc::default(),
        })
    }

    /// The same store, observing how long each call on the writer takes.
    pub fn timing_writes(mut self, histogram: Histogram) -> Self {
        self.write_seconds = Some(histogram);
        self
    }

    /// Runs a read on a reader connection, on the blocking pool. It sees
    /// every write committed before it starts.
    async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            // A free one if there is one: a timer's small read need not
            // wait behind an ingest's large one.
            let mut reader = readers
                .iter()
                .find_map(|r| r.try_lock().ok())
                .unwrap_or_else(|| {
                    readers[0]
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                });
            in_snapshot(&mut reader, work)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("store task failed: {e}")))?
    }

    /// A read of a few rows by key, run where it is asked if a reader is
    /// free (else as `read`): handing each to the blocking pool cost more
    /// than the read, and the timer loop and a single-event request make
    /// several of them for each webhook.
    async fn peek<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let work = match self.readers.iter().find_map(|r| r.try_lock().ok()) {
            Some(mut reader) => return in_snapshot(&mut reader, work),
            None => work,
        };
        self.read(work).await
    }

    /// Runs `work` with every commit synced to disk before it returns.
    async fn durably<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        self.with(move |c| {
            set_synchronous(c, "FULL")?;
            let result = work(c);
            set_synchronous(c, "NORMAL")?;
            result
        })
        .await
    }

    /// Runs `work` with the connection on the blocking pool.
    async fn with<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let connection = self.connection.clone();
        let timer = self.write_seconds.clone();
        tokio::task::spawn_blocking(move || {
            let mut connection = connection
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let started = std::time::Instant::now();
            let done = work(&mut connection);
            if let Some(timer) = timer {
                timer.observe(started.elapsed().as_secs_f64());
            }
            done
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("store task failed: {e}")))?
    }
}

/// Runs `work` in one read snapshot: each statement on its own would start
/// a read of its own, and each start after a write empties the
/// connection's page cache.
fn in_snapshot<T>(
    reader: &mut Connection,
    work: impl FnOnce(&Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    let snapshot = reader.transaction().map_err(unavailable)?;
    let found = work(&snapshot)?;
    snapshot.commit().map_err(unavailable)?;
    Ok(found)
}

/// Sets how commits sync: `FULL` or `NORMAL`. Cached: parsing the two
/// pragmas was a tenth of a small write.
pub(super) fn set_synchronous(c: &Connection, level: &str) -> StoreResult<()> {
    let sql = match level {
        "FULL" => "PRAGMA synchronous = FULL",
        _ => "PRAGMA synchronous = NORMAL",
    };
    c.prepare_cached(sql)
        .and_then(|mut pragma| pragma.execute([]))
        .map(drop)
        .map_err(unavailable)
}

pub(crate) fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

pub(crate) fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("records serialize")
}

pub(crate) fn from_json<T: DeserializeOwned>(text: &str) -> StoreResult<T> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Unavailable(format!("unreadable record: {e}")))
}

pub(crate) fn millis(time: Time) -> i64 {
    time.timestamp_millis()
}

/// One record by key, or None.
pub(crate) fn one<T: DeserializeOwned>(
    connection: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> StoreResult<Option<T>> {
    let text: Option<String> = connection
        .prepare_cached(sql)
        .and_then(|mut statement| statement.query_row(params, |row| row.get(0)).optional())
        .map_err(unavailable)?;
    text.map(|t| from_json(&t)).transpose()
}

/// Every record a query returns.
pub(crate) fn all<T: DeserializeOwned>(
    connection: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> StoreResult<Vec<T>> {
    let texts = rows(connection, sql, params, |row| row.get::<_, String>(0))?;
    texts.iter().map(|t| from_json(t)).collect()
}

/// Every row a query returns, each read by `read`.
pub(crate) fn rows<T>(
    connection: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    read: impl FnMut(&rusqlite::Row) -> rusqlite::Result<T>,
) -> StoreResult<Vec<T>> {
    let mut statement = connection.prepare_cached(sql).map_err(unavailable)?;
    let found = statement
        .query_map(params, read)
        .map_err(unavailable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unavailable);
    found
}

/// Local-only queries the timer loop needs beyond the port.
impl SqliteStore {
    /// Schedules due by `now`, soonest first.
    pub async fn due_schedules(&self, now: Time, limit: usize) -> StoreResult<Vec<String>> {
        self.peek(move |c| {
            rows(
                c,
                "SELECT id FROM schedules WHERE state = 'pending' AND fire_at <= ?1 ORDER BY fire_at LIMIT ?2",
                rusqlite::params![millis(now), limit as i64],
                |row| row.get(0),
            )
        })
        .await
    }

    /// One endpoint's deliveries due by `now` and not being attempted,
    /// soonest first: asked per endpoint with free slots, so a busy
    /// endpoint's backlog is never scanned.
    pub async fn due_deliveries(
        &self,
        endpoint_id: String,
        now: Time,
        limit: usize,
    ) -> StoreResult<Vec<String>> {
        let leases = self.leases.clone();
        self.peek(move |c| {
            let mut statement = c
                .prepare_cached(
                    "SELECT id FROM deliveries WHERE status = 'pending' AND endpoint_id = ?1 AND next_attempt_at <= ?2
                     ORDER BY next_attempt_at",
                )
                .map_err(unavailable)?;
            let ids = statement
                .query_map(rusqlite::params![endpoint_id, millis(now)], |row| {
                    row.get::<_, String>(0)
                })
                .map_err(unavailable)?
                .filter(|id| !id.as_ref().is_ok_and(|id| leases.held(id, now)))
                .take(limit)
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable);
            ids
        })
        .await
    }

    /// The soonest due time after `now`, if any: of a timer, or of a lease
    /// whose attempt was never recorded.
    pub async fn next_due_after(&self, now: Time) -> StoreResult<Option<Time>> {
        let lease_ends = self.leases.soonest_end(now);
        self.peek(move |c| {
            let next: Option<i64> = c
                .query_row(
                    "SELECT MIN(t) FROM (
                        SELECT MIN(fire_at) AS t FROM schedules WHERE state = 'pending' AND fire_at > ?1
                        UNION ALL
                        SELECT MIN(next_attempt_at) FROM deliveries WHERE status = 'pending' AND next_attempt_at > ?1)",
                    [millis(now)],
                    |row| row.get(0),
                )
                .map_err(unavailable)?;
            Ok(next.map(from_millis).into_iter().chain(lease_ends).min())
        })
        .await
    }
}
