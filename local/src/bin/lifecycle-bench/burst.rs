//! The burst scenario: contracts created in batches of 500 from several
//! clients, each one webhook, delivered while ingest goes on; against the
//! same run's fire-storm rate (as many moments due at one second, with no
//! ingest beside them).

use super::ingest_single::seconds;
use super::report::{progress, Report};
use super::traffic::{event, latencies, report_latencies, Target};
use super::{Result, BATCH};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub async fn run(events: usize, clients: usize) -> Result<Report> {
    let storm = super::fire_storm::run(events).await?;
    let storm_rate = storm
        .figures
        .iter()
        .find(|f| f.name == "delivery rate")
        .map(|f| f.value)
        .ok_or("the fire storm reported no rate")?;

    let target = Arc::new(Target::start().await?);
    let cpu_before = target.server.cpu_seconds();
    let answered: Arc<Mutex<Vec<Option<DateTime<Utc>>>>> = Arc::new(Mutex::new(vec![None; events]));
    let batches = events.div_ceil(BATCH);
    let next = Arc::new(AtomicUsize::new(0));
    let bar = progress(events, "ingesting in batches");
    let started = Utc::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (target, answered, next, bar) =
                (target.clone(), answered.clone(), next.clone(), bar.clone());
            tokio::spawn(async move {
                loop {
                    let batch = next.fetch_add(1, Ordering::Relaxed);
                    if batch >= batches {
                        return Ok::<_, String>(());
                    }
                    let range = batch * BATCH..((batch + 1) * BATCH).min(events);
                    let body = json!({"events": range.clone().map(event).collect::<Vec<Value>>()});
                    target.post(body.to_string()).await?;
                    let now = Some(Utc::now());
                    answered.lock().unwrap()[range.clone()].fill(now);
                    bar.inc(range.len() as u64);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await??;
    }
    bar.finish_and_clear();
    let ingested = Utc::now();
    target.wait_for(events).await;
    let (arrived, again) = target.arrivals_by_contract(events);
    let mut times: Vec<DateTime<Utc>> = arrived.iter().flatten().copied().collect();
    times.sort();
    let last = *times.last().ok_or("nothing arrived")?;
    let rate = times.len() as f64 / seconds(started, last);
    // While ingest runs, webhooks should keep arriving, not wait for it.
    let gap = times
        .windows(2)
        .filter(|pair| pair[0] < ingested)
        .map(|pair| (pair[1].min(ingested) - pair[0]).num_milliseconds())
        .max()
        .unwrap_or(0);
    let during = times.iter().filter(|at| **at < ingested).count();
    let lags = latencies(&answered.lock().unwrap(), &arrived);
    let ingest_ms = (ingested - started).num_milliseconds() as f64;

    let mut report = Report::new(
        "burst",
        json!({"events": events, "clients": clients, "batch_events": BATCH,
               "delivered": times.len(), "delivered_again": again}),
    );
    report.figure("delivered", times.len() as f64, "webhooks", Some("all"));
    report.compared(
        "end-to-end rate",
        rate,
        "webhooks/s",
        "fire-storm deliveries/s, same run",
        storm_rate,
        Some("ratio >= 0.80"),
    );
    report.figure("ingest time", ingest_ms, "ms", None);
    report.figure("arrived while ingesting", during as f64, "webhooks", None);
    report.figure(
        "longest gap between arrivals while ingesting",
        gap as f64,
        "ms",
        Some("at most 250 ms"),
    );
    report_latencies(
        &mut report,
        "answer to arrival",
        &lags,
        Some("at most the ingest time + 1,000 ms"),
    );
    target
        .report_process(&mut report, times.len(), cpu_before, None)
        .await;
    Ok(report)
}
