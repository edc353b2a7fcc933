//! A dead endpoint never delays a healthy one: the real timer loop, the
//! system clock, one receiver that answers after the send timeout and one
//! that answers at once, 200 notifications due at the same second.

mod common;

use chrono::{DateTime, Utc};
use common::{receiver_with, Answer};
use lifecycle_core::destination::DestinationPolicy;
use lifecycle_core::service::Config;
use lifecycle_core::time::{format_time, Clock, SystemClock};
use lifecycle_local::runtime::Runtime;
use lifecycle_local::sender::HttpSender;
use lifecycle_local::sqlite::SqliteStore;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

const CONTRACTS: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timing_out_endpoint_does_not_delay_a_healthy_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("db")).unwrap();
    let sender = HttpSender::with(DestinationPolicy::default(), Duration::from_secs(2));
    let runtime = Runtime::start(store, sender, Arc::new(SystemClock), Config::default())
        .await
        .unwrap();
    let service = runtime.service.clone();
    runtime.run_timers();

    let slow = vec![
        Answer {
            status: 200,
            delay_ms: 4_000,
            ..Answer::default()
        };
        CONTRACTS
    ];
    let (slow_url, slow_received) = receiver_with(slow).await;
    let (healthy_url, healthy_received) = receiver_with(vec![]).await;
    for url in [&slow_url, &healthy_url] {
        service
            .create_endpoint(&json!({"url": url, "event_types": ["contract.end"]}))
            .await
            .unwrap();
    }

    let end = SystemClock.now() + chrono::Duration::seconds(2);
    let events: Vec<_> = (0..CONTRACTS)
        .map(|i| {
            json!({"id": format!("wr_{i}"), "type": "contract.create", "occurred_at": format_time(SystemClock.now()),
                   "data": {"id": format!("k_{i}"), "customer_id": "c_1", "starting_at": "2026-01-01T00:00:00Z",
                            "ending_before": format_time(end)}})
        })
        .collect();
    service.ingest(&json!({ "events": events })).await.unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while healthy_received.requests.lock().unwrap().len() < CONTRACTS
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let arrivals = healthy_received.arrivals();
    assert_eq!(arrivals.len(), CONTRACTS, "every healthy delivery arrived");
    let lags = sorted_lags(&arrivals);
    let p99 = lags[lags.len() * 99 / 100 - 1];
    println!(
        "healthy endpoint lag: p50 {} ms, p99 {p99} ms, max {} ms",
        lags[lags.len() / 2],
        lags[lags.len() - 1]
    );
    assert!(p99 < 1_000, "healthy p99 {p99} ms is over 1 s");
    assert!(
        slow_received.requests.lock().unwrap().len() < CONTRACTS,
        "the slow endpoint is still being worked through"
    );
}

/// Moments a few milliseconds apart: each one that falls due while the loop
/// is busy with the one before is fired at once, not at the next wake-up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moments_milliseconds_apart_each_fire_on_time() {
    const SPREAD: usize = 500;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("db")).unwrap();
    let runtime = Runtime::start(
        store,
        HttpSender::new(),
        Arc::new(SystemClock),
        Config::default(),
    )
    .await
    .unwrap();
    let service = runtime.service.clone();
    let (url, received) = receiver_with(vec![]).await;
    service
        .create_endpoint(&json!({"url": url, "event_types": ["contract.end"]}))
        .await
        .unwrap();
    let first = SystemClock.now() + chrono::Duration::seconds(2);
    let events: Vec<_> = (0..SPREAD)
        .map(|i| {
            let end = first + chrono::Duration::milliseconds(i as i64);
            json!({"id": format!("wr_{i}"), "type": "contract.create", "occurred_at": format_time(SystemClock.now()),
                   "data": {"id": format!("k_{i}"), "customer_id": "c_1", "starting_at": "2026-01-01T00:00:00Z",
                            "ending_before": format_time(end)}})
        })
        .collect();
    service.ingest(&json!({ "events": events })).await.unwrap();
    runtime.run_timers();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while received.requests.lock().unwrap().len() < SPREAD && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let arrivals = received.arrivals();
    assert_eq!(arrivals.len(), SPREAD, "every moment fired within 10 s");
    let worst = *sorted_lags(&arrivals).last().unwrap();
    assert!(
        worst < 1_000,
        "the latest arrived {worst} ms after its time"
    );
}

/// Each arrival's lag after its `scheduled_for`, in milliseconds, sorted.
fn sorted_lags(arrivals: &[(DateTime<Utc>, serde_json::Value)]) -> Vec<i64> {
    let mut lags: Vec<i64> = arrivals
        .iter()
        .map(|(at, body)| {
            let scheduled: DateTime<Utc> = body["data"]["scheduled_for"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            (*at - scheduled).num_milliseconds()
        })
        .collect();
    lags.sort();
    lags
}
