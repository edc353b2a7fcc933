//! The functions' CloudWatch metrics on moto: real deliveries through the
//! api, schedule and deliver handlers (each invocation ended as the
//! binaries end it, `Runtime::invocation`) to two receivers on loopback, one
//! that takes every webhook and one that answers 500 to each attempt; then
//! the embedded-metric-format lines the functions wrote are read as JSON,
//! checked against the specification's rules, and their figures compared
//! with what the receivers saw, and with `GET /v1/stats` (from the
//! per-minute items each invocation's flush added to the table).

use axum::http::StatusCode;
use axum::routing::post;
use lifecycle_aws_storm::receiver::Receiver;
use lifecycle_aws_storm::stack::{Options, Stack};
use lifecycle_core::ports::Store;
use lifecycle_core::time::Clock;
use lifecycle_functions::emf::{self, check_document};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A receiver that answers 500 to everything: (url, requests seen).
async fn failing_receiver() -> (String, Arc<AtomicUsize>) {
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                // A fresh connection for each attempt: a pooled one the
                // server closed would fail before reaching it, unseen here.
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    [(axum::http::header::CONNECTION, "close")],
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

fn iso(t: lifecycle_core::time::Time) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The figures of the metrics lines, added up: (metric, dimension value or
/// "" for the lag) -> the sum of its values (the lag: of its counts).
fn totals(documents: &[Value]) -> BTreeMap<(String, String), u64> {
    let mut totals = BTreeMap::new();
    for document in documents {
        let directive = &document["_aws"]["CloudWatchMetrics"][0];
        let name = directive["Metrics"][0]["Name"]
            .as_str()
            .unwrap()
            .to_string();
        let set = directive["Dimensions"][0].as_array().unwrap();
        let label = match set.first() {
            Some(key) => document[key.as_str().unwrap()]
                .as_str()
                .unwrap()
                .to_string(),
            None => String::new(),
        };
        let value = match &document[&name] {
            Value::Object(distribution) => distribution["Count"].as_u64().unwrap(),
            number => number.as_u64().unwrap(),
        };
        *totals.entry((name, label)).or_default() += value;
    }
    totals
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_are_counted_in_emf_lines_and_in_the_stats() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_test_writer()
        .try_init();
    let mut stack = Stack::new(Options {
        environments: 2,
        // Three attempts a second or so apart: a failing webhook is done within the test.
        retry_delays: Some("1s,1s".into()),
        ..Options::default()
    })
    .await;
    let receiver = Receiver::start(stack.clock.clone()).await;
    let (failing_url, failing_seen) = failing_receiver().await;
    let started = stack.clock.now();
    for url in [&receiver.url, &failing_url] {
        let body = json!({"url": url, "event_types": ["contract.create"]});
        let (status, endpoint) = stack.api("POST", "/v1/webhook-endpoints", Some(body)).await;
        assert_eq!(status, 201, "{endpoint}");
        if *url == receiver.url {
            receiver.expect_secret(endpoint["secret"].as_str().unwrap());
        }
    }
    let contracts = 3;
    for i in 0..contracts {
        let now = stack.clock.now();
        let event = json!({"id": format!("wr_{i}"), "type": "contract.create", "occurred_at": iso(now),
            "data": {"id": format!("k_{i}"), "customer_id": format!("c_{i}"),
                     "starting_at": iso(now - chrono::Duration::days(1)),
                     "ending_before": iso(now + chrono::Duration::days(30))}});
        let (status, results) = stack.api("POST", "/v1/events", Some(event)).await;
        assert_eq!(status, 200, "{results}");
    }
    // Until the receivers saw every attempt (three each for the failing
    // one), each `deliver` invocation ended as the binary ends it. The
    // leases' own timers, due later, would find nothing to send: not awaited.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while (receiver.arrivals().len() < contracts
        || failing_seen.load(Ordering::SeqCst) < 3 * contracts)
        && std::time::Instant::now() < until
    {
        stack.drain().await;
        stack.pump(4).await;
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    stack.drain().await;

    let delivered = receiver.arrivals().len();
    let failed = failing_seen.load(Ordering::SeqCst);
    let webhooks: HashSet<String> = receiver.by_id().into_keys().collect();
    assert_eq!(receiver.rejected(), 0);
    assert_eq!(delivered, contracts, "each contract.create delivered once");
    if failed != 3 * contracts {
        let (_, log) = stack.api("GET", "/v1/deliveries?limit=100", None).await;
        let mut attempts = Vec::new();
        for delivery in log["data"].as_array().unwrap() {
            let id = delivery["id"].as_str().unwrap();
            let (_, one) = stack
                .api("GET", &format!("/v1/deliveries/{id}"), None)
                .await;
            attempts.push(one);
        }
        panic!("each failed three times, but the receiver saw {failed}: {attempts:#?}");
    }

    // Every line is an EMF document by the specification's rules, in the
    // settings' namespace, with the names and dimensions the code writes.
    let lines = stack.metrics.lines();
    assert!(!lines.is_empty(), "the invocations wrote metrics");
    let documents: Vec<Value> = lines
        .iter()
        .map(|line| check_document(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let written: BTreeMap<&str, (&str, Option<&str>)> = emf::written()
        .into_iter()
        .map(|(name, unit, dimension)| (name, (unit, dimension)))
        .collect();
    for document in &documents {
        let directives = document["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(directives.len(), 1, "{document}");
        let directive = &directives[0];
        assert_eq!(
            directive["Namespace"],
            json!(stack.rt.settings.metrics_namespace)
        );
        assert_eq!(directive["Namespace"], json!(emf::DEFAULT_NAMESPACE));
        let name = directive["Metrics"][0]["Name"].as_str().unwrap();
        let (unit, dimension) = written
            .get(name)
            .unwrap_or_else(|| panic!("a metric the code does not name: {name}"));
        assert_eq!(directive["Metrics"][0]["Unit"], json!(unit), "{document}");
        let sets = match dimension {
            Some(key) => json!([[key], []]),
            None => json!([[]]),
        };
        assert_eq!(directive["Dimensions"], sets, "{document}");
    }

    // The figures are what the receivers saw.
    let totals = totals(&documents);
    let total = |name: &str, label: &str| {
        totals
            .get(&(name.to_string(), label.to_string()))
            .copied()
            .unwrap_or(0) as usize
    };
    assert_eq!(
        total("delivery_attempts", "success"),
        delivered,
        "{totals:?}"
    );
    assert_eq!(total("delivery_attempts", "failure"), failed, "{totals:?}");
    assert_eq!(total("delivery_attempts", "timeout"), 0, "{totals:?}");
    assert_eq!(total("delivery_lag_seconds", ""), delivered, "{totals:?}");
    assert_eq!(
        total("webhooks_fired", "contract.create"),
        webhooks.len(),
        "one per webhook id, whatever its endpoints: {totals:?}"
    );
    assert_eq!(
        total("events_ingested", "contract.create"),
        contracts,
        "{totals:?}"
    );
    for document in &documents {
        if let Some(lag) = document.get("delivery_lag_seconds") {
            let values = lag["Values"].as_array().unwrap();
            assert!(values.iter().all(|v| v.as_f64().unwrap() < 120.0), "{lag}");
        }
    }

    // The same figures per minute, from the table, through the api function.
    let until = stack.clock.now() + chrono::Duration::minutes(1);
    let since = started - chrono::Duration::minutes(1);
    let path = format!("/v1/stats?since={}&until={}", iso(since), iso(until));
    let (status, stats) = stack.api("GET", &path, None).await;
    assert_eq!(status, 200, "{stats}");
    let sum = |field: &str| {
        (stats["data"].as_array().unwrap().iter())
            .map(|m| m[field].as_u64().unwrap())
            .sum::<u64>() as usize
    };
    assert_eq!(
        (sum("fired"), sum("delivered"), sum("failed")),
        (webhooks.len(), delivered, failed),
        "{stats}"
    );
    let lagged = stats["data"].as_array().unwrap().iter();
    assert!(
        lagged
            .filter(|m| m["delivered"] != json!(0))
            .all(|m| m["lag_p99_s"].is_number()),
        "{stats}"
    );
    let stored = stack.rt.store.stats(since, until).await.unwrap();
    let stored_delivered: u64 = stored.iter().map(|m| m.delivered).sum();
    assert_eq!(stored_delivered as usize, delivered, "flushed to DynamoDB");
    let stored_lags: u64 = stored.iter().map(|m| m.lag.count()).sum();
    assert_eq!(stored_lags as usize, delivered);

    // GET /metrics is the local runtime's: here the metrics are in CloudWatch.
    let (status, body) = stack.api("GET", "/metrics", None).await;
    assert_eq!(status, 404, "{body}");
}
