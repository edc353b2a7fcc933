//! The ingest-single scenario: contracts created one write event per
//! request from many clients, as a billing system sends them, each one
//! webhook to a loopback receiver; against raw POSTs of the same webhook to
//! the same receiver from as many clients.

use super::fire_storm::raw_post_rate;
use super::report::{progress, Report};
use super::traffic::{event, latencies, report_latencies, Target};
use super::Result;
use chrono::{DateTime, Utc};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub async fn run(events: usize, clients: usize) -> Result<Report> {
    let target = Arc::new(Target::start().await?);
    let cpu_before = target.server.cpu_seconds();
    let sent: Arc<Mutex<Vec<Option<DateTime<Utc>>>>> = Arc::new(Mutex::new(vec![None; events]));
    let next = Arc::new(AtomicUsize::new(0));
    let bar = progress(events, "ingesting one per request");
    let started = Utc::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (target, sent, next, bar) =
                (target.clone(), sent.clone(), next.clone(), bar.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= events {
                        return Ok::<_, String>(());
                    }
                    let body = event(i).to_string();
                    sent.lock().unwrap()[i] = Some(Utc::now());
                    target.post(body).await?;
                    bar.inc(1);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await??;
    }
    bar.finish_and_clear();
    let ingest_s = (Utc::now() - started).num_milliseconds() as f64 / 1000.0;
    target.wait_for(events).await;
    let (arrived, again) = target.arrivals_by_contract(events);
    let mut times: Vec<DateTime<Utc>> = arrived.iter().flatten().copied().collect();
    times.sort();
    let last = *times.last().ok_or("nothing arrived")?;
    let rate = times.len() as f64 / seconds(started, last);
    // The first and the last tenth (at most 10,000): does the rate hold as
    // the store grows?
    let window = (events / 10).clamp(1, 10_000).min(times.len());
    let first_rate = window as f64 / seconds(started, times[window - 1]);
    let last_rate = window as f64 / seconds(times[times.len() - window], last).max(1e-3);
    let lags = latencies(&sent.lock().unwrap(), &arrived);
    let body = target.arrivals.lock().unwrap()[0].1.clone();
    let baseline = raw_post_rate(&target.receiver, &body, events, clients).await?;

    let mut report = Report::new(
        "ingest-single",
        json!({"events": events, "clients": clients, "delivered": times.len(), "delivered_again": again}),
    );
    report.figure("delivered", times.len() as f64, "webhooks", Some("all"));
    report.compared(
        "end-to-end rate",
        rate,
        "webhooks/s",
        "raw POSTs/s to the receiver, same clients",
        baseline,
        Some("at least 1,400 webhooks/s"),
    );
    report.figure("ingest rate", events as f64 / ingest_s, "requests/s", None);
    report.compared(
        "rate over the last tenth",
        last_rate,
        "webhooks/s",
        "rate over the first tenth (webhooks/s)",
        first_rate,
        Some("ratio >= 0.80"),
    );
    report_latencies(&mut report, "request to arrival", &lags, None);
    target
        .report_process(&mut report, times.len(), cpu_before, None)
        .await;
    Ok(report)
}

/// Seconds from `from` to `to`, at least a millisecond.
pub(crate) fn seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    ((to - from).num_milliseconds().max(1)) as f64 / 1000.0
}
