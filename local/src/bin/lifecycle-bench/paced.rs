//! The paced scenario: one write event per request at a steady rate (200 a
//! second by default), the latency from each request to its webhook's
//! arrival and the server's CPU per webhook; against the latency of raw
//! POSTs of the same webhook to the same receiver at the same pace.

use super::report::{progress, quantile, Report};
use super::traffic::{event, latencies, report_latencies, Target};
use super::Result;
use chrono::{DateTime, Utc};
use serde_json::json;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub async fn run(events: usize, per_second: u32) -> Result<Report> {
    let target = Arc::new(Target::start().await?);
    let cpu_before = target.server.cpu_seconds();
    let sent: Arc<Mutex<Vec<Option<DateTime<Utc>>>>> = Arc::new(Mutex::new(vec![None; events]));
    let bar = progress(events, "paced requests");
    let posted = pace(events, per_second, |i| {
        let (target, sent, bar) = (target.clone(), sent.clone(), bar.clone());
        async move {
            let body = event(i).to_string();
            sent.lock().unwrap()[i] = Some(Utc::now());
            let posted = target.post(body).await;
            bar.inc(1);
            posted
        }
    })
    .await;
    bar.finish_and_clear();
    posted?;
    target.wait_for(events).await;
    let (arrived, again) = target.arrivals_by_contract(events);
    let delivered = arrived.iter().flatten().count();
    let lags = latencies(&sent.lock().unwrap(), &arrived);
    let baseline = raw_paced_p99(&target, events.min(2_000), per_second).await?;

    let mut report = Report::new(
        "paced",
        json!({"events": events, "per_second": per_second, "delivered": delivered, "delivered_again": again}),
    );
    report.figure("delivered", delivered as f64, "webhooks", Some("all"));
    report.compared(
        "request to arrival p99",
        quantile(&lags, 0.99) as f64,
        "ms",
        "raw POST to the receiver at the same pace, p99 (ms)",
        baseline,
        Some("at most 20 ms"),
    );
    report_latencies(&mut report, "request to arrival", &lags, None);
    target
        .report_process(&mut report, delivered, cpu_before, Some("at most 1.5 s"))
        .await;
    Ok(report)
}

/// Starts `work(i)` for i in 0..count, `per_second` a second, each on its
/// own task (a slow answer does not hold the next request back); the first
/// error, if any.
async fn pace<F, Fut>(count: usize, per_second: u32, work: F) -> std::result::Result<(), String>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = std::result::Result<(), String>> + Send + 'static,
{
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / per_second);
    let mut tasks = Vec::with_capacity(count);
    for i in 0..count {
        ticks.tick().await;
        tasks.push(tokio::spawn(work(i)));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// The p99 in ms (to the microsecond) of POSTing a webhook the run delivered straight to the
/// receiver, at the same pace.
async fn raw_paced_p99(target: &Target, count: usize, per_second: u32) -> Result<f64> {
    let body = target
        .arrivals
        .lock()
        .unwrap()
        .first()
        .ok_or("nothing arrived")?
        .1
        .clone();
    let took: Arc<Mutex<Vec<i64>>> = Arc::default();
    pace(count, per_second, |_| {
        let (client, url, body, took) = (
            target.client.clone(),
            target.receiver.clone(),
            body.clone(),
            took.clone(),
        );
        async move {
            let started = Instant::now();
            client
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            took.lock()
                .unwrap()
                .push(started.elapsed().as_micros() as i64);
            Ok(())
        }
    })
    .await?;
    let mut took = took.lock().unwrap().clone();
    took.sort();
    Ok(quantile(&took, 0.99) as f64 / 1000.0)
}
