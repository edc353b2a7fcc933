//! The fire-storm scenario: many moments due at the same second.

use axum::routing::post;
use lifecycle_core::service::{Config, Service};
use lifecycle_core::time::{format_time, Clock, SystemClock};
use lifecycle_local::sender::HttpSender;
use lifecycle_local::sqlite::SqliteStore;
use lifecycle_local::timers::{self, LocalScheduler};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Attempts in flight to one endpoint: the timer loop's per-endpoint bound.
const CONCURRENCY: usize = 8;

type Arrivals = Arc<Mutex<Vec<(chrono::DateTime<chrono::Utc>, String)>>>;

async fn receiver() -> (String, Arrivals) {
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

pub async fn run(schedules: usize) -> Result<(), Box<dyn std::error::Error>> {
    let dir = super::tempfile_dir()?;
    let (url, arrivals) = receiver().await;
    let baseline = raw_post_rate(&url, schedules).await?;
    arrivals.lock().unwrap().clear();

    let store = SqliteStore::open(&dir.join("lifecycle.db"))?;
    let wake = Arc::new(Notify::new());
    let service = Arc::new(Service::new(
        Arc::new(store.clone()),
        Arc::new(LocalScheduler::new(wake.clone())),
        Arc::new(HttpSender::new()),
        Arc::new(SystemClock),
        Config::default(),
    ));
    service.install().await?;
    service
        .create_endpoint(&json!({"url": url, "event_types": ["contract.end"]}))
        .await?;
    // Every contract ends at the same second, far enough out to load them all first.
    let due = SystemClock.now() + chrono::Duration::seconds(5 + schedules as i64 / 4_000);
    let due_text = format_time(due);
    for start in (0..schedules).step_by(super::BATCH) {
        let events: Vec<_> = (start..(start + super::BATCH).min(schedules))
            .map(|i| {
                json!({"id": format!("wr_{i}"), "type": "contract.create", "occurred_at": "2026-01-01T00:00:00Z",
                       "data": {"id": format!("k_{i}"), "customer_id": format!("c_{}", i % 1000),
                                "starting_at": "2026-01-01T00:00:00Z", "ending_before": due_text}})
            })
            .collect();
        service.ingest(&json!({ "events": events })).await?;
    }
    if SystemClock.now() >= due {
        return Err("loading took past the due time; use fewer schedules".into());
    }
    tokio::spawn(timers::run(service.clone(), store, wake));
    let deadline = Instant::now() + Duration::from_secs(600);
    while arrivals.lock().unwrap().len() < schedules && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let arrived = arrivals.lock().unwrap().clone();
    let mut lags: Vec<i64> = arrived
        .iter()
        .map(|(at, _)| (*at - due).num_milliseconds())
        .collect();
    lags.sort();
    let last = arrived.iter().map(|(at, _)| *at).max().unwrap_or(due);
    let rate = arrived.len() as f64 / ((last - due).num_milliseconds().max(1) as f64 / 1000.0);
    let pick = |q: f64| {
        lags.get(((lags.len() as f64 * q) as usize).min(lags.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    std::fs::remove_dir_all(&dir).ok();
    println!("scenario    schedules  delivered  deliveries/s  raw POST/s  ratio  lag p50 ms  lag p99 ms  lag max ms");
    println!(
        "fire-storm  {schedules}  {}  {rate:.0}  {baseline:.0}  {:.2}  {}  {}  {}",
        arrived.len(),
        rate / baseline,
        pick(0.5),
        pick(0.99),
        lags.last().copied().unwrap_or(0)
    );
    Ok(())
}

/// The baseline: the same number of signed-size bodies POSTed to the same
/// receiver by reqwest, `CONCURRENCY` at a time.
async fn raw_post_rate(url: &str, count: usize) -> Result<f64, Box<dyn std::error::Error>> {
    let client = reqwest::Client::new();
    let body = json!({"id": "msg_0", "type": "contract.end", "data": {"contract": {"id": "k_0", "customer_id": "c_0"}}}).to_string();
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (client, url, body, next) =
                (client.clone(), url.to_string(), body.clone(), next.clone());
            tokio::spawn(async move {
                while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < count {
                    let sent = client
                        .post(&url)
                        .header("webhook-id", "msg_0")
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
