//! The fire-storm scenario: many moments due at the same second.

use super::report::{progress, quantile, Report};
use axum::routing::post;
use lifecycle_core::time::{format_time, Clock, SystemClock};
use lifecycle_local::sender::HttpSender;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Attempts in flight to one endpoint: the timer loop's per-endpoint bound.
const CONCURRENCY: usize = 8;

pub(crate) type Arrivals = Arc<Mutex<Vec<(chrono::DateTime<chrono::Utc>, String)>>>;

pub(crate) async fn receiver() -> (String, Arrivals) {
    let arrivals: Arrivals = Arc::default();
    let log = arrivals.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |body: String| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push((chrono::Utc::now(), body));
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let url = format!("http://{}/hook", listener.local_addr().expect("bound"));
    tokio::spawn(async move {
        axum::serve(listener, app)
            .await
            .expect("the receiver serves")
    });
    (url, arrivals)
}

pub async fn run(schedules: usize) -> super::Result<Report> {
    let dir = super::tempfile_dir()?;
    let (url, arrivals) = receiver().await;

    let runtime = super::service_with(&dir.join("lifecycle.db"), HttpSender::new()).await?;
    let service = runtime.service.clone();
    service
        .create_endpoint(&json!({"url": url, "event_types": ["contract.end"]}))
        .await?;
    // The storm is the system contract.end moments; the other system
    // notifications would add a webhook per write to fire during the storm.
    for n in service.list_notifications().await? {
        if n.id != "ntf_system_contract_end" {
            service
                .update_notification(&n.id, &json!({"enabled": false}))
                .await?;
        }
    }
    // Every contract ends at the same second, far enough out to load them all first.
    let due = SystemClock.now() + chrono::Duration::seconds(5 + schedules as i64 / 4_000);
    let due_text = format_time(due);
    let bar = progress(schedules, "loading");
    for start in (0..schedules).step_by(super::BATCH) {
        let events: Vec<_> = (start..(start + super::BATCH).min(schedules))
            .map(|i| {
                json!({"id": format!("wr_{i}"), "type": "contract.create", "occurred_at": "2026-01-01T00:00:00Z",
                       "data": {"id": format!("k_{i}"), "customer_id": format!("c_{}", i % 1000),
                                "starting_at": "2026-01-01T00:00:00Z", "ending_before": due_text}})
            })
            .collect();
        service.ingest(&json!({ "events": events })).await?;
        bar.inc(events.len() as u64);
    }
    bar.finish_and_clear();
    if SystemClock.now() >= due {
        return Err("loading took past the due time; use fewer schedules".into());
    }
    runtime.run_timers();
    let bar = progress(schedules, "delivering");
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let arrived = arrivals.lock().unwrap().len();
        bar.set_position(arrived as u64);
        if arrived >= schedules || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bar.finish_and_clear();
    let arrived = arrivals.lock().unwrap().clone();
    let mut lags: Vec<i64> = arrived
        .iter()
        .map(|(at, _)| (*at - due).num_milliseconds())
        .collect();
    lags.sort();
    let last = arrived.iter().map(|(at, _)| *at).max().unwrap_or(due);
    let rate = arrived.len() as f64 / ((last - due).num_milliseconds().max(1) as f64 / 1000.0);
    let lone = lone_lag(&service, &arrivals).await?;
    let body = arrived
        .first()
        .map(|(_, body)| body.clone())
        .ok_or("nothing arrived")?;
    let baseline = raw_post_rate(&url, &body, schedules, CONCURRENCY).await?;
    std::fs::remove_dir_all(&dir).ok();

    let mut report = Report::new(
        "fire-storm",
        json!({"schedules": schedules, "delivered": arrived.len(), "concurrency": CONCURRENCY}),
    );
    report.figure("delivered", arrived.len() as f64, "webhooks", Some("all"));
    report.compared(
        "delivery rate",
        rate,
        "deliveries/s",
        "raw reqwest POSTs/s",
        baseline,
        Some("ratio >= 0.70"),
    );
    report.figure("lag p50", quantile(&lags, 0.5) as f64, "ms", None);
    report.figure(
        "lag p99",
        quantile(&lags, 0.99) as f64,
        "ms",
        Some("under 1,000 ms"),
    );
    report.figure(
        "lag max",
        lags.last().copied().unwrap_or(0) as f64,
        "ms",
        None,
    );
    report.figure("lag of a lone schedule", lone, "ms", Some("under 50 ms"));
    Ok(report)
}

/// After the storm: one contract ending 2 s from now, alone; its lag.
async fn lone_lag(
    service: &lifecycle_core::service::Service,
    arrivals: &Arrivals,
) -> super::Result<f64> {
    let before = arrivals.lock().unwrap().len();
    let due =
        chrono::DateTime::from_timestamp(SystemClock.now().timestamp() + 2, 0).ok_or("a time")?;
    service
        .ingest(&json!({"id": "wr_lone", "type": "contract.create", "occurred_at": format_time(SystemClock.now()),
                        "data": {"id": "k_lone", "customer_id": "c_lone", "starting_at": "2026-01-01T00:00:00Z",
                                 "ending_before": format_time(due)}}))
        .await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while arrivals.lock().unwrap().len() == before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let arrived = arrivals
        .lock()
        .unwrap()
        .get(before)
        .map(|(at, _)| *at)
        .ok_or("the lone schedule did not arrive")?;
    Ok((arrived - due).num_milliseconds() as f64)
}

/// The baseline: the same number of POSTs of a webhook the storm delivered,
/// with the headers of a signed webhook, to the same receiver by reqwest,
/// `concurrency` at a time.
pub(crate) async fn raw_post_rate(
    url: &str,
    body: &str,
    count: usize,
    concurrency: usize,
) -> super::Result<f64> {
    let client = reqwest::Client::new();
    let id = "msg_0000000000000000000000000000";
    let timestamp = SystemClock.now().timestamp();
    let signature = lifecycle_core::signing::signature_header(
        &["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
        id,
        timestamp,
        body.as_bytes(),
    )?;
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, url, body, next, signature) = (
                client.clone(),
                url.to_string(),
                body.to_string(),
                next.clone(),
                signature.clone(),
            );
            tokio::spawn(async move {
                while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < count {
                    let sent = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("webhook-id", id)
                        .header("webhook-timestamp", timestamp.to_string())
                        .header("webhook-signature", &signature)
                        .body(body.clone())
                        .send()
                        .await;
                    sent.expect("the receiver answers");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await?;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}
