//! At-least-once under fire: 1,000 webhooks in flight to a receiver that
//! fails 30 % of requests, the process killed with SIGKILL again and again.
//! Every webhook id must arrive with a 2xx; duplicates are counted and reported.

use axum::http::StatusCode;
use lifecycle_e2e::{now, Lifecycle, Options, Receiver};
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WEBHOOKS: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_nine_repeatedly_loses_nothing() {
    let mut app = Lifecycle::start(
        Options::default()
            .retry_delays("300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms"),
    )
    .await;
    // A deterministic 30 % of failures (a small linear congruential generator).
    let state = Arc::new(AtomicU64::new(42));
    let flaky = move |_: &serde_json::Value| {
        let next = state
            .fetch_add(1, Ordering::SeqCst)
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        if (next >> 33) % 100 < 30 {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::OK
        }
    };
    let receiver = Receiver::start_with(&[], flaky).await;
    app.endpoint(&receiver.url(), &["contract.create"]).await;
    for chunk in 0..WEBHOOKS / 500 {
        let events: Vec<_> = (0..500)
            .map(|i| {
                let n = chunk * 500 + i;
                json!({"id": format!("wr_{n}"), "type": "contract.create", "occurred_at": now(),
                       "data": {"id": format!("k_{n}"), "customer_id": "c_1", "starting_at": "2026-01-01T00:00:00Z"}})
            })
            .collect();
        app.events(&json!({ "events": events })).await;
    }
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        app.restart().await;
    }

    let deadline = Instant::now() + Duration::from_secs(90);
    let delivered = |receiver: &Receiver| {
        let ok: std::collections::HashSet<String> = receiver
            .requests()
            .iter()
            .filter(|w| w.status == 200)
            .map(|w| w.header("webhook-id"))
            .collect();
        ok.len()
    };
    while delivered(&receiver) < WEBHOOKS && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Let retries settle, then count successes per id from the log.
    let (_, list) = app.get("/v1/deliveries?status=pending&limit=1").await;
    let mut waited = 0;
    let mut pending = list["data"].as_array().unwrap().len();
    while pending > 0 && waited < 300 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        waited += 1;
        pending = app.get("/v1/deliveries?status=pending&limit=1").await.1["data"]
            .as_array()
            .unwrap()
            .len();
    }
    let received = receiver.requests();
    let mut successes: HashMap<String, usize> = HashMap::new();
    for webhook in received.iter().filter(|w| (200..300).contains(&w.status)) {
        *successes.entry(webhook.header("webhook-id")).or_default() += 1;
    }
    let duplicates: usize = successes.values().map(|n| n - 1).sum();
    println!(
        "crash storm: {WEBHOOKS} webhooks, {} requests, {} ids delivered, {duplicates} duplicate successes, {pending} still pending",
        received.len(),
        successes.len()
    );
    let (_, failed) = app.get("/v1/deliveries?status=failed&limit=500").await;
    assert_eq!(
        failed["data"].as_array().unwrap().len(),
        0,
        "no delivery gave up"
    );
    assert_eq!(
        successes.len(),
        WEBHOOKS,
        "every webhook id was delivered with a 2xx at least once"
    );
}
