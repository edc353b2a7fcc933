//! Benchmarks of the local runtime, each printed beside a baseline measured
//! in the same run on the same machine.
//!
//! `lifecycle-bench usage [--events N] [--customers N] [--thresholds N]`:
//! `usage.record` ingestion through the core and the embedded store, in
//! batches of 500, against the raw rate of inserting the same number of rows
//! into the same embedded database in batches of 500.
//!
//! `lifecycle-bench fire-storm [--schedules M]`: M contract ends due at the
//! same second, fired by the real timer loop and delivered to one loopback
//! receiver: delivery rate and lag from the due time to arrival, against the
//! raw rate of POSTing the same number of bodies to the same receiver with
//! reqwest at the same concurrency.

use clap::{Parser, Subcommand};
use lifecycle_core::service::{Config, Service};
use lifecycle_core::time::SystemClock;
use lifecycle_local::sender::HttpSender;
use lifecycle_local::sqlite::SqliteStore;
use lifecycle_local::timers::LocalScheduler;
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

const BATCH: usize = 500;

mod fire_storm;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// usage.record ingestion with threshold evaluation.
    Usage {
        #[arg(long, default_value_t = 200_000)]
        events: usize,
        #[arg(long, default_value_t = 10_000)]
        customers: usize,
        #[arg(long, default_value_t = 10)]
        thresholds: usize,
    },
    /// Many schedules due at the same second, to one receiver.
    FireStorm {
        #[arg(long, default_value_t = 100_000)]
        schedules: usize,
    },
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (events, customers, thresholds) = match Cli::parse().scenario {
        Scenario::Usage {
            events,
            customers,
            thresholds,
        } => (events, customers, thresholds),
        Scenario::FireStorm { schedules } => return fire_storm::run(schedules).await,
    };
    let dir = tempfile_dir()?;
    let raw = raw_insert_rate(&dir.join("raw.db"), events)?;
    let ours = usage_ingest_rate(&dir.join("lifecycle.db"), events, customers, thresholds).await?;
    if std::env::var_os("LIFECYCLE_BENCH_KEEP").is_none() {
        std::fs::remove_dir_all(&dir).ok();
    }
    println!(
        "scenario  events  customers  thresholds/customer  batch  events/s  raw inserts/s  ratio"
    );
    println!(
        "usage     {events}  {customers}  {thresholds}  {BATCH}  {ours:.0}  {raw:.0}  {:.2}",
        ours / raw
    );
    Ok(())
}

pub(crate) fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("lifecycle-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The baseline: the same number of rows into the same embedded database,
/// one transaction per batch, with the pragmas the store uses for writes.
fn raw_insert_rate(path: &std::path::Path, rows: usize) -> Result<f64, Box<dyn std::error::Error>> {
    let mut db = rusqlite::Connection::open(path)?;
    db.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
         CREATE TABLE usage (id TEXT PRIMARY KEY, customer_id TEXT, metric TEXT, quantity REAL, timestamp INTEGER);",
    )?;
    let started = Instant::now();
    for batch in 0..rows.div_ceil(BATCH) {
        let tx = db.transaction()?;
        {
            let mut insert = tx.prepare_cached("INSERT INTO usage VALUES (?1, ?2, ?3, ?4, ?5)")?;
            for i in batch * BATCH..((batch + 1) * BATCH).min(rows) {
                insert.execute(rusqlite::params![
                    format!("u_{i}"),
                    format!("c_{}", i % 10_000),
                    "api_calls",
                    1.0,
                    i as i64
                ])?;
            }
        }
        tx.commit()?;
    }
    Ok(rows as f64 / started.elapsed().as_secs_f64())
}

async fn usage_ingest_rate(
    path: &std::path::Path,
    events: usize,
    customers: usize,
    thresholds: usize,
) -> Result<f64, Box<dyn std::error::Error>> {
    let store = SqliteStore::open(path)?;
    let service = Service::new(
        Arc::new(store),
        Arc::new(LocalScheduler::new(Arc::default())),
        Arc::new(HttpSender::new()),
        Arc::new(SystemClock),
        Config::default(),
    );
    service.install().await?;
    for i in 0..thresholds {
        let body = json!({"event_type": "alerts.usage_threshold_reached", "metric": "api_calls", "threshold": 10 * (i + 1)});
        service.create_notification(&body).await?;
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let now = lifecycle_core::time::format_time(chrono::Utc::now());
    let batches: Vec<_> = (0..events.div_ceil(BATCH))
        .map(|batch| {
            let events: Vec<_> = (batch * BATCH..((batch + 1) * BATCH).min(events))
                .map(|i| {
                    json!({"id": format!("u_{i}"), "type": "usage.record", "occurred_at": now,
                           "data": {"customer_id": format!("c_{}", rng.gen_range(0..customers)), "metric": "api_calls",
                                    "quantity": 1, "timestamp": now}})
                })
                .collect();
            json!({ "events": events })
        })
        .collect();
    let started = Instant::now();
    for batch in &batches {
        service.ingest(batch).await?;
    }
    Ok(events as f64 / started.elapsed().as_secs_f64())
}
