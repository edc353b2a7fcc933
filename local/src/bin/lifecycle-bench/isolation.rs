//! The isolation scenario: delivery lag to a healthy endpoint while a second
//! endpoint times out on every request, against the same run without it.

use super::fire_storm::{receiver, Arrivals};
use super::report::{progress, quantile, Report};
use super::Result;
use axum::routing::post;
use lifecycle_core::time::{format_time, Clock, SystemClock};
use lifecycle_local::sender::HttpSender;
use serde_json::json;
use std::time::{Duration, Instant};

pub async fn run(notifications: usize) -> Result<Report> {
    let alone = healthy_lags(notifications, false).await?;
    let beside = healthy_lags(notifications, true).await?;
    let mut report = Report::new(
        "isolation",
        json!({"notifications": notifications, "spread_ms": spread_ms(notifications),
               "failing_endpoint": "answers after the 15 s send timeout"}),
    );
    for (name, q) in [("p50", 0.5), ("p99", 0.99)] {
        report.compared(
            &format!("healthy lag {name}"),
            quantile(&beside, q) as f64,
            "ms",
            &format!("{name} without the failing endpoint (ms)"),
            quantile(&alone, q) as f64,
            (name == "p99").then_some("under 1,000 ms"),
        );
    }
    report.figure(
        "healthy lag max",
        beside.last().copied().unwrap_or(0) as f64,
        "ms",
        None,
    );
    Ok(report)
}

/// Moments due over a few seconds, 1 ms apart at most.
fn spread_ms(notifications: usize) -> i64 {
    (notifications as i64 * 2).min(10_000)
}

/// The sorted lags (arrival minus `scheduled_for`) at the healthy endpoint.
async fn healthy_lags(notifications: usize, with_failing: bool) -> Result<Vec<i64>> {
    let dir = super::tempfile_dir()?;
    let runtime = super::service_with(&dir.join("lifecycle.db"), HttpSender::new()).await?;
    let service = runtime.service.clone();
    let (healthy, arrivals) = receiver().await;
    service
        .create_endpoint(&json!({"url": healthy, "event_types": ["contract.end"]}))
        .await?;
    if with_failing {
        let failing = hanging_receiver().await?;
        service
            .create_endpoint(&json!({"url": failing, "event_types": ["contract.end"]}))
            .await?;
    }
    let first = SystemClock.now() + chrono::Duration::seconds(3);
    let step = spread_ms(notifications) / notifications.max(1) as i64;
    for start in (0..notifications).step_by(super::BATCH) {
        let events: Vec<_> = (start..(start + super::BATCH).min(notifications))
            .map(|i| {
                let end = first + chrono::Duration::milliseconds(step * i as i64);
                json!({"id": format!("wr_{i}"), "type": "contract.create", "occurred_at": format_time(SystemClock.now()),
                       "data": {"id": format!("k_{i}"), "customer_id": format!("c_{}", i % 100),
                                "starting_at": "2026-01-01T00:00:00Z", "ending_before": format_time(end)}})
            })
            .collect();
        service.ingest(&json!({ "events": events })).await?;
    }
    let runner = runtime.run_timers();
    let bar = progress(notifications, if with_failing { "beside" } else { "alone" });
    let deadline = Instant::now() + Duration::from_secs(120);
    while arrivals.lock().unwrap().len() < notifications && Instant::now() < deadline {
        bar.set_position(arrivals.lock().unwrap().len() as u64);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bar.finish_and_clear();
    runner.abort();
    std::fs::remove_dir_all(&dir).ok();
    lags(&arrivals, notifications)
}

fn lags(arrivals: &Arrivals, expected: usize) -> Result<Vec<i64>> {
    let arrived = arrivals.lock().unwrap().clone();
    if arrived.len() < expected {
        return Err(format!(
            "only {} of {expected} healthy deliveries arrived",
            arrived.len()
        )
        .into());
    }
    let mut lags = arrived
        .iter()
        .map(|(at, body)| {
            let body: serde_json::Value = serde_json::from_str(body)?;
            let scheduled: chrono::DateTime<chrono::Utc> = body["data"]["scheduled_for"]
                .as_str()
                .ok_or("scheduled_for")?
                .parse()?;
            Ok((*at - scheduled).num_milliseconds())
        })
        .collect::<Result<Vec<i64>>>()?;
    lags.sort();
    Ok(lags)
}

/// An endpoint that accepts the connection and never answers in time.
async fn hanging_receiver() -> Result<String> {
    let app = axum::Router::new().route(
        "/hook",
        post(|| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            ""
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}
