//! The usage scenario: `usage.record` ingestion with threshold evaluation,
//! against raw inserts of the same number of rows.

use super::{report::Report, BATCH};
use lifecycle_core::service::Service;
use lifecycle_local::sender::HttpSender;
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::time::Instant;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

pub async fn run(events: usize, customers: usize, thresholds: usize) -> Result<Report> {
    let dir = super::tempfile_dir()?;
    let raw = raw_insert_rate(&dir.join("raw.db"), events)?;
    let service = super::service_with(&dir.join("lifecycle.db"), HttpSender::new())
        .await?
        .service;
    let ours = ingest_rate(&service, events, customers, thresholds).await?;
    std::fs::remove_dir_all(&dir).ok();
    let mut report = Report::new(
        "usage",
        json!({"events": events, "customers": customers, "thresholds_per_customer": thresholds, "batch": BATCH}),
    );
    report.compared(
        "usage.record ingested",
        ours,
        "events/s",
        "raw SQLite inserts/s",
        raw,
        None,
    );
    Ok(report)
}

/// The baseline: the same number of rows into the same embedded database,
/// one transaction per batch, with the pragmas the store uses for writes.
fn raw_insert_rate(path: &std::path::Path, rows: usize) -> Result<f64> {
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

async fn ingest_rate(
    service: &Service,
    events: usize,
    customers: usize,
    thresholds: usize,
) -> Result<f64> {
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
    let bar = super::report::progress(events, "ingesting");
    let started = Instant::now();
    for batch in &batches {
        service.ingest(batch).await?;
        bar.inc(batch["events"].as_array().map_or(0, Vec::len) as u64);
    }
    bar.finish_and_clear();
    Ok(events as f64 / started.elapsed().as_secs_f64())
}
