//! `GET /metrics`, `GET /v1/stats` and the JSON logs, from outside: the real
//! process delivers to three loopback receivers (one answers 200, one 500,
//! one holds every request past the send timeout), and what
//! the receivers saw is what the metrics, parsed by the official Prometheus
//! client's OpenMetrics parser, the per-minute figures (across a kill -9)
//! and the log lines say.

use axum::http::StatusCode;
use lifecycle_e2e::{now, Lifecycle, Options, Receiver};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The official Python client's parser, pinned in the venv `scripts/tools` makes.
fn python() -> std::path::PathBuf {
    let home = std::env::var_os("HOME").expect("HOME is set");
    std::path::PathBuf::from(home).join(".cache/lifecycle-venv/bin/python")
}

const PARSE: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    out[family.name] = {"type": family.type, "samples": [[s.name, s.labels, s.value] for s in family.samples]}
print(json.dumps(out))
"#;

/// Families by name: {type, samples: [[name, labels, value]]}.
fn parse(text: &str) -> Value {
    let mut child = Command::new(python())
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the venv's python runs (scripts/tools makes it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the OpenMetrics parser refused the text:\n{}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The value of the sample `name` with exactly these labels (0 if absent).
fn sample(families: &Value, family: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let want: HashMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let samples = families[family]["samples"]
        .as_array()
        .unwrap_or_else(|| panic!("no family {family} in {families}"));
    samples
        .iter()
        .filter(|s| s[0] == json!(name))
        .find(|s| serde_json::from_value::<HashMap<String, String>>(s[1].clone()).unwrap() == want)
        .map(|s| s[2].as_f64().unwrap())
        .unwrap_or(0.0)
}

async fn scrape(app: &Lifecycle, key: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new().get(format!("{}/metrics", app.base));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Holds every request past the 15 s send timeout; counts them.
async fn slow_receiver() -> (String, Arc<Mutex<usize>>) {
    let seen: Arc<Mutex<usize>> = Arc::default();
    let count = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let count = count.clone();
            async move {
                *count.lock().unwrap() += 1;
                tokio::time::sleep(Duration::from_secs(30)).await;
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

/// Polls the deliveries to the endpoints until `ok`'s are delivered,
/// `failing`'s failed and `slow`'s attempted once (its retry waits a minute
/// after a timeout).
async fn settled(app: &Lifecycle, endpoints: [&str; 3], within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let (status, list) = app.get("/v1/deliveries?limit=100").await;
        assert_eq!(status, 200, "{list}");
        let list: Vec<Value> = (list["data"].as_array().unwrap().iter())
            .filter(|d| d["endpoint_id"].is_string())
            .cloned()
            .collect();
        let count = |endpoint: &str, done: &dyn Fn(&Value) -> bool| {
            (list.iter())
                .filter(|d| d["endpoint_id"] == json!(endpoint) && done(d))
                .count()
        };
        let [ok, failing, slow] = endpoints;
        let done = (
            count(ok, &|d| d["status"] == json!("delivered")),
            count(failing, &|d| d["status"] == json!("failed")),
            count(slow, &|d| d["attempt_count"] == json!(1)),
        );
        if done == (3, 3, 3) {
            return list;
        }
        assert!(Instant::now() < deadline, "not settled {done:?}: {list:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn totals(stats: &Value) -> (u64, u64, u64) {
    let minutes = stats["data"].as_array().unwrap();
    let sum = |field: &str| minutes.iter().map(|m| m[field].as_u64().unwrap()).sum();
    (sum("fired"), sum("delivered"), sum("failed"))
}

#[tokio::test]
async fn metrics_stats_and_logs_match_what_the_receivers_saw() {
    let options = Options {
        args: vec!["--log-format".into(), "json".into()],
        ..Options::default()
    }
    .retry_delays("1s");
    let mut app = Lifecycle::start(options).await;
    let (status, _) = scrape(&app, None).await;
    assert_eq!(status, 401, "/metrics without the key");
    let (status, _) = scrape(&app, Some("not-the-key")).await;
    assert_eq!(status, 401, "/metrics with a wrong key");

    let ok = Receiver::start().await;
    let failing = Receiver::start_with(&[], |_| StatusCode::INTERNAL_SERVER_ERROR).await;
    let (slow_url, slow) = slow_receiver().await;
    let types = ["contract.create"];
    let (ok_id, _) = app.endpoint(&ok.url(), &types).await;
    let (failing_id, _) = app.endpoint(&failing.url(), &types).await;
    let (slow_id, _) = app.endpoint(&slow_url, &types).await;
    let (off_id, _) = app.endpoint(&ok.url(), &["contract.end"]).await;
    let (status, _) = app
        .patch(
            &format!("/v1/webhook-endpoints/{off_id}"),
            &json!({"enabled": false}),
        )
        .await;
    assert_eq!(status, 200);

    let events: Vec<Value> = (1..=3)
        .map(|i| {
            json!({"id": format!("wr_{i}"), "type": "contract.create", "occurred_at": now(),
                   "data": {"id": format!("k_{i}"), "customer_id": "c_1", "starting_at": "2026-01-01T00:00:00Z"}})
        })
        .collect();
    assert_eq!(
        app.events(&json!({ "events": events })).await,
        ["accepted"; 3]
    );
    // Each webhook: once to `ok`; twice to `failing` (one retry); once to
    // `slow`, which times out.
    let ids = [ok_id.as_str(), failing_id.as_str(), slow_id.as_str()];
    let deliveries = settled(&app, ids, Duration::from_secs(45)).await;

    let ok_seen = ok.requests();
    let successes = ok_seen.len();
    let failures = failing.requests().len();
    let timeouts = *slow.lock().unwrap();
    assert_eq!(
        (successes, failures, timeouts),
        (3, 6, 3),
        "what the receivers saw"
    );

    let (status, text) = scrape(&app, Some(&app.key)).await;
    assert_eq!(status, 200, "{text}");
    let families = parse(&text);
    for (family, kind) in [
        ("lifecycle_events_ingested", "counter"),
        ("lifecycle_webhooks_fired", "counter"),
        ("lifecycle_delivery_attempts", "counter"),
        ("lifecycle_delivery_lag_seconds", "histogram"),
        ("lifecycle_schedules_pending", "gauge"),
        ("lifecycle_deliveries_pending", "gauge"),
        ("lifecycle_endpoints", "gauge"),
        ("lifecycle_http_requests", "counter"),
        ("lifecycle_sqlite_write_seconds", "histogram"),
        ("lifecycle_timer_wakeups", "counter"),
    ] {
        assert_eq!(families[family]["type"], json!(kind), "{family} in\n{text}");
    }
    let m =
        |family: &str, name: &str, labels: &[(&str, &str)]| sample(&families, family, name, labels);
    let ingested = "lifecycle_events_ingested_total";
    assert_eq!(
        m(
            "lifecycle_events_ingested",
            ingested,
            &[("type", "contract.create")]
        ),
        3.0
    );
    let fired = "lifecycle_webhooks_fired_total";
    assert_eq!(
        m(
            "lifecycle_webhooks_fired",
            fired,
            &[("event_type", "contract.create")]
        ),
        3.0
    );
    let attempts = |outcome| {
        m(
            "lifecycle_delivery_attempts",
            "lifecycle_delivery_attempts_total",
            &[("outcome", outcome)],
        )
    };
    assert_eq!(
        (
            attempts("success"),
            attempts("failure"),
            attempts("timeout")
        ),
        (successes as f64, failures as f64, timeouts as f64)
    );
    let lag_count = m(
        "lifecycle_delivery_lag_seconds",
        "lifecycle_delivery_lag_seconds_count",
        &[],
    );
    assert_eq!(lag_count, successes as f64, "one lag per delivered attempt");
    let lag_sum = m(
        "lifecycle_delivery_lag_seconds",
        "lifecycle_delivery_lag_seconds_sum",
        &[],
    );
    assert!(
        lag_sum > 0.0 && lag_sum < 15.0,
        "three prompt deliveries: {lag_sum}"
    );
    let endpoints = |state| {
        m(
            "lifecycle_endpoints",
            "lifecycle_endpoints",
            &[("state", state)],
        )
    };
    assert_eq!(
        (
            endpoints("healthy"),
            endpoints("failing"),
            endpoints("disabled")
        ),
        (1.0, 2.0, 1.0),
        "ok healthy; failing and slow failing; one disabled"
    );
    assert_eq!(
        m(
            "lifecycle_deliveries_pending",
            "lifecycle_deliveries_pending",
            &[]
        ),
        3.0,
        "the slow endpoint's retries"
    );
    assert_eq!(
        m(
            "lifecycle_schedules_pending",
            "lifecycle_schedules_pending",
            &[]
        ),
        0.0
    );
    let posted = [
        ("method", "POST"),
        ("route", "/v1/events"),
        ("status", "200"),
    ];
    assert_eq!(
        m(
            "lifecycle_http_requests",
            "lifecycle_http_requests_total",
            &posted
        ),
        1.0
    );

    // The per-minute figures: every webhook and attempt, by the minute it happened.
    let since = lifecycle_e2e::in_ms(-10 * 60_000);
    let stats_path = format!("/v1/stats?since={since}");
    let (status, stats) = app.get(&stats_path).await;
    assert_eq!(status, 200, "{stats}");
    let expected = (3, successes as u64, (failures + timeouts) as u64);
    assert_eq!(totals(&stats), expected, "{stats}");
    assert_eq!(stats["backlog"]["deliveries_pending"], json!(3));
    let lagged = stats["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["lag_p99_s"].is_number());
    assert!(lagged.count() >= 1, "{stats}");
    let minutes = stats["data"].as_array().unwrap();
    // Ten minutes ago to now: the minute of `since`, nine more, and this one.
    assert_eq!(
        minutes.len(),
        11,
        "every minute of the span, the quiet ones at zero"
    );

    // The flush is on a timer: wait until the store has them, then kill -9.
    let db = rusqlite::Connection::open(app.data_dir().join("lifecycle.db")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stored: (i64, i64) = db
            .query_row(
                "SELECT coalesce(sum(delivered), 0), coalesce(sum(failed), 0) FROM stats",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        if stored == (expected.1 as i64, expected.2 as i64) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the figures never reached the store: {stored:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(db);
    app.restart().await;
    let (status, after) = app.get(&stats_path).await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(
        totals(&after),
        totals(&stats),
        "the minutes before the kill -9:\n{after}"
    );

    // One JSON object a line; each attempt names its webhook, delivery and endpoint.
    let lines: Vec<Value> = app
        .log_text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: not JSON: {l}")))
        .collect();
    let logged: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == json!("delivery attempt"))
        .collect();
    assert_eq!(logged.len(), successes + failures + timeouts);
    let by_endpoint = |id: &str| {
        logged
            .iter()
            .filter(|l| l["endpoint_id"] == json!(id))
            .count()
    };
    assert_eq!(
        (
            by_endpoint(&ok_id),
            by_endpoint(&failing_id),
            by_endpoint(&slow_id)
        ),
        (3, 6, 3)
    );
    let webhook = ok_seen[0].header("webhook-id");
    let delivery = deliveries
        .iter()
        .find(|d| d["webhook_id"] == json!(webhook) && d["endpoint_id"] == json!(failing_id))
        .unwrap();
    let followed: Vec<&&Value> = logged
        .iter()
        .filter(|l| l["webhook_id"] == json!(webhook) && l["delivery_id"] == delivery["id"])
        .collect();
    let outcomes: HashSet<&str> = followed
        .iter()
        .map(|l| l["outcome"].as_str().unwrap())
        .collect();
    assert_eq!((followed.len(), outcomes), (2, HashSet::from(["failure"])));

    // A moment within the horizon is a pending schedule (its write's own
    // webhook is one too, until it fires a moment later).
    let soon = lifecycle_e2e::after(Duration::from_secs(3600));
    let later = json!({"id": "wr_later", "type": "contract.create", "occurred_at": now(),
                       "data": {"id": "k_later", "customer_id": "c_2", "starting_at": soon}});
    assert_eq!(app.events(&later).await, ["accepted"]);
    let (_, upcoming) = app.get("/v1/customers/c_2/upcoming").await;
    let within_day = upcoming["data"].as_array().unwrap().len();
    assert!(within_day >= 1, "{upcoming}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, text) = scrape(&app, Some(&app.key)).await;
        let families = parse(&text);
        let name = "lifecycle_schedules_pending";
        let pending = sample(&families, name, name, &[]);
        if pending == within_day as f64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} pending, upcoming {upcoming}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
