//! The restart scenario: the `lifecycle` binary started on a database of
//! pending schedules. Time to serving, time to the first due delivery (a
//! moment that fell due while it was down) and resident memory, against the
//! same start on an empty database.

use super::plan::{self, CONTRACTS_PER_BATCH, SCHEDULES_PER_CONTRACT};
use super::server::{self, peak_rss_kb, start};
use super::{report::Report, Result};
use lifecycle_core::time::format_time;
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

pub async fn run(schedules: usize) -> Result<Report> {
    let binary = server::binary()?;
    let dir = super::tempfile_dir()?;
    let (url, arrivals) = super::fire_storm::receiver().await;
    let contracts = schedules.div_ceil(SCHEDULES_PER_CONTRACT);
    populate(&dir.join("full"), contracts, &url).await?;

    let empty = start(&binary, &dir.join("empty"))?;
    let baseline_serving = empty.serving_ms;
    let baseline_rss = peak_rss_kb(&empty, Duration::from_millis(500)).await;
    drop(empty);

    let started_at = chrono::Utc::now();
    let full = start(&binary, &dir.join("full"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while arrivals.lock().unwrap().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let first = arrivals
        .lock()
        .unwrap()
        .first()
        .map(|(at, _)| (*at - started_at).num_milliseconds() as f64)
        .ok_or("the due moment was not delivered within 60 s")?;
    let rss = peak_rss_kb(&full, Duration::from_secs(2)).await;
    let serving = full.serving_ms;
    drop(full);
    std::fs::remove_dir_all(&dir).ok();

    let mut report = Report::new(
        "restart",
        json!({"pending_schedules": contracts * SCHEDULES_PER_CONTRACT + 1, "contracts": contracts}),
    );
    report.compared(
        "start to serving",
        serving,
        "ms",
        "start to serving, empty database (ms)",
        baseline_serving,
        Some("under 1,000 ms"),
    );
    report.figure("start to first due delivery", first, "ms", None);
    report.compared(
        "resident memory (peak)",
        rss / 1024.0,
        "MiB",
        "empty database (MiB)",
        baseline_rss / 1024.0,
        Some("under 200 MiB"),
    );
    Ok(report)
}

/// Pending schedules for `contracts` contracts, and one moment that fell due
/// 5 s ago (within its catch-up) for an endpoint at `url`. Planned with no
/// horizon, so that every one is a row: the database the process starts on
/// is as large as pending schedules can make it.
async fn populate(data: &Path, contracts: usize, url: &str) -> Result<()> {
    std::fs::create_dir_all(data)?;
    let service = super::service_with_horizon(
        &data.join("lifecycle.db"),
        lifecycle_local::sender::HttpSender::new(),
        None,
    )
    .await?
    .service;
    plan::notifications(&service).await?;
    service
        .create_endpoint(&json!({"url": url, "event_types": ["contract.end"]}))
        .await?;
    let bar = super::report::progress(contracts, "populating");
    for first in (0..contracts).step_by(CONTRACTS_PER_BATCH) {
        let last = (first + CONTRACTS_PER_BATCH).min(contracts);
        service
            .ingest(&json!({ "events": plan::events(first..last) }))
            .await?;
        bar.set_position(last as u64);
    }
    bar.finish_and_clear();
    // Its -P30D moment is 5 s past: due the moment the process starts.
    let end = chrono::Utc::now() + chrono::Duration::days(30) - chrono::Duration::seconds(5);
    service
        .ingest(&json!({"id": "wr_due", "type": "contract.create", "occurred_at": format_time(chrono::Utc::now()),
                        "data": {"id": "k_due", "customer_id": "c_due", "starting_at": "2026-01-01T00:00:00Z",
                                 "ending_before": format_time(end)}}))
        .await?;
    Ok(())
}
