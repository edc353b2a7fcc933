//! The plan scenario: contracts, each with a start, an end and one commit of
//! 12 monthly segments, planned for 5 lifecycle notifications, against raw
//! inserts of the same number of schedule rows.

use super::{report::Report, Result, BATCH};
use chrono::SubsecRound;
use lifecycle_core::entity::EntityKind;
use lifecycle_core::planner::desired;
use lifecycle_core::service::Service;
use lifecycle_core::time::format_time;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Instant;

/// Schedules per contract: 1 start, 2 ends, 12 segment starts, 12 segment ends.
pub const SCHEDULES_PER_CONTRACT: usize = 27;

/// The 5 notifications of the scenario, after disabling the system ones so
/// that every schedule counted is one of them.
pub async fn notifications(service: &Service) -> Result<()> {
    for n in service.list_notifications().await? {
        service
            .update_notification(&n.id, &json!({"enabled": false}))
            .await?;
    }
    for (event_type, offset) in [
        ("contract.start", "-P1D"),
        ("contract.end", "-P30D"),
        ("contract.end", "-P7D"),
        ("commit.segment.start", "PT0S"),
        ("commit.segment.end", "PT2H"),
    ] {
        service
            .create_notification(&json!({"event_type": event_type, "offset": offset}))
            .await?;
    }
    Ok(())
}

/// The write events of contracts `range`: a contract, then its commit,
/// with their dates at midnight UTC as billing's are (the first moment, a
/// contract's start less a day, within the default horizon of a day).
pub fn events(range: std::ops::Range<usize>) -> Vec<Value> {
    let now = chrono::Utc::now().trunc_subsecs(0);
    let start =
        now.date_naive().and_time(chrono::NaiveTime::MIN).and_utc() + chrono::Duration::days(2);
    let day = |d: i64| format_time(start + chrono::Duration::days(d));
    let occurred = format_time(now);
    range
        .flat_map(|i| {
            let segments: Vec<_> = (0..12)
                .map(|m| json!({"id": format!("s{m}"), "starting_at": day(30 * m), "ending_before": day(30 * (m + 1)), "amount": 100}))
                .collect();
            [
                json!({"id": format!("wc_{i}"), "type": "contract.create", "occurred_at": occurred,
                       "data": {"id": format!("k_{i}"), "customer_id": format!("c_{}", i % 10_000),
                                "starting_at": day(0), "ending_before": day(365)}}),
                json!({"id": format!("wm_{i}"), "type": "commit.create", "occurred_at": occurred,
                       "data": {"id": format!("m_{i}"), "customer_id": format!("c_{}", i % 10_000),
                                "contract_id": format!("k_{i}"), "type": "prepaid", "access_schedule": segments}}),
            ]
        })
        .collect()
}

/// Batches ingested at once.
const IN_FLIGHT: usize = 2;

/// Contracts per batch of `BATCH` events.
pub const CONTRACTS_PER_BATCH: usize = BATCH / 2;

pub async fn run(contracts: usize) -> Result<Report> {
    let dir = super::tempfile_dir()?;
    let path = dir.join("lifecycle.db");
    let service = super::service_with(&path, lifecycle_local::sender::HttpSender::new())
        .await?
        .service;
    notifications(&service).await?;
    let bar = super::report::progress(contracts, "planning");
    let started = Instant::now();
    // The next batch is built while this one is ingested, as a separate
    // client would: the time measured is the product's, not the bench's.
    let batch_of = |first: usize| {
        let last = (first + CONTRACTS_PER_BATCH).min(contracts);
        tokio::task::spawn_blocking(move || (last, json!({ "events": events(first..last) })))
    };
    // Two batches in flight, as a loader would send them: one is read and
    // planned while the other commits.
    let mut in_flight = std::collections::VecDeque::new();
    let mut next = batch_of(0);
    for _ in (0..contracts).step_by(CONTRACTS_PER_BATCH) {
        let (last, body) = next.await?;
        next = batch_of(last);
        let service = service.clone();
        in_flight.push_back(tokio::spawn(async move {
            service.ingest(&body).await.map(|_| last)
        }));
        if in_flight.len() == IN_FLIGHT {
            let done = in_flight.pop_front().expect("in flight").await??;
            bar.set_position(done as u64);
        }
    }
    for batch in in_flight {
        batch.await??;
    }
    drop(next);
    let elapsed = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let (stored, record_bytes) = schedule_rows(&path)?;
    let schedules = planned_moments(&service).await?;
    let raw = raw_insert_rate(&dir.join("raw.db"), schedules.min(RAW_SAMPLE), record_bytes)?;
    std::fs::remove_dir_all(&dir).ok();

    let mut report = Report::new(
        "plan",
        json!({"contracts": contracts, "entities": contracts * 2, "schedules": schedules,
               "stored_schedule_rows": stored, "deferred_beyond_horizon": schedules - stored,
               "horizon": lifecycle_local::DEFAULT_HORIZON,
               "raw_baseline_rows": schedules.min(RAW_SAMPLE),
               "notifications": 5, "batch_events": BATCH}),
    );
    report.figure(
        "time to plan",
        elapsed,
        "s",
        Some("1,000,000 contracts in under 120 s"),
    );
    report.figure(
        "entities planned",
        (contracts * 2) as f64 / elapsed,
        "entities/s",
        None,
    );
    report.figure(
        "schedule rows stored (within the horizon)",
        stored as f64,
        "rows",
        None,
    );
    report.compared(
        "schedules planned",
        schedules as f64 / elapsed,
        "schedules/s",
        "raw schedule-row inserts/s",
        raw,
        Some("ratio >= 0.50"),
    );
    Ok(report)
}

/// The baseline inserts at most this many rows: more only makes its
/// tables larger and its rate lower, so a sample does not flatter the
/// ratio (and a full baseline of 27,000,000 rows takes 10 minutes).
const RAW_SAMPLE: usize = 2_000_000;

/// The moments the planner wants for every stored entity under the
/// notifications: the schedule rows of a store with no horizon, whether
/// this one stored them or deferred them.
async fn planned_moments(service: &Service) -> Result<usize> {
    let notifications = service.store.notifications().await?;
    let now = chrono::Utc::now();
    let mut count = 0;
    for kind in [EntityKind::Contract, EntityKind::Commit] {
        let mut after: Option<String> = None;
        loop {
            let page = service
                .store
                .entities_after(kind, after.as_deref(), 5_000)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.entity.id().to_string());
            count += page
                .iter()
                .map(|record| desired(record, &notifications, now).len())
                .sum::<usize>();
        }
    }
    Ok(count)
}

/// How many schedule rows the run made, and their average record size.
fn schedule_rows(path: &Path) -> Result<(usize, usize)> {
    let db = rusqlite::Connection::open(path)?;
    let (count, bytes): (i64, f64) = db.query_row(
        "SELECT count(*), coalesce(avg(length(record)), 0) FROM schedules",
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    Ok((count as usize, bytes as usize))
}

/// The baseline: the same number of rows, of the same size, with ids of
/// the same kind (hashes, so they land all over the id index as the real
/// ones do), into a table shaped like the store's schedules table (same
/// indexes), in transactions of 10,000 rows (the best batching for SQLite),
/// with the store's pragmas.
fn raw_insert_rate(path: &Path, rows: usize, record_bytes: usize) -> Result<f64> {
    let mut db = rusqlite::Connection::open(path)?;
    db.execute_batch(lifecycle_local::sqlite::PRAGMAS)?;
    db.execute_batch(
        "CREATE TABLE schedules (
            id TEXT PRIMARY KEY, notification_id TEXT NOT NULL, entity_kind TEXT NOT NULL,
            entity_id TEXT NOT NULL, customer_id TEXT NOT NULL, state TEXT NOT NULL,
            fire_at INTEGER NOT NULL, is_write INTEGER NOT NULL, record TEXT NOT NULL);
         CREATE INDEX schedules_by_entity ON schedules (entity_kind, entity_id);
         CREATE INDEX schedules_by_customer ON schedules (customer_id, state, fire_at, id);
         CREATE INDEX schedules_due ON schedules (fire_at) WHERE state = 'pending';",
    )?;
    let record = "x".repeat(record_bytes);
    let bar = super::report::progress(rows, "raw inserts");
    let started = Instant::now();
    for first in (0..rows).step_by(10_000) {
        let tx = db.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO schedules VALUES (?1, ?2, 'contract', ?3, ?4, 'pending', ?5, 0, ?6)",
            )?;
            for i in first..(first + 10_000).min(rows) {
                insert.execute(rusqlite::params![
                    lifecycle_core::ids::hashed_id("sch", &[&i.to_string()]),
                    format!("ntf_{}", i % 5),
                    format!("k_{}", i / SCHEDULES_PER_CONTRACT),
                    format!("c_{}", (i / SCHEDULES_PER_CONTRACT) % 10_000),
                    1_800_000_000 + (i % 1000) as i64,
                    record
                ])?;
            }
        }
        tx.commit()?;
        bar.set_position((first + 10_000).min(rows) as u64);
    }
    bar.finish_and_clear();
    Ok(rows as f64 / started.elapsed().as_secs_f64())
}
