//! Replays are `duplicate`, out-of-order writes are `stale`; neither changes
//! the schedule nor sends a webhook.

use lifecycle_e2e::{in_ms, time_of, Lifecycle, Options, Receiver};
use serde_json::{json, Value};
use std::time::Duration;

fn contract(event_id: &str, action: &str, id: &str, end: &str, occurred_at: &str) -> Value {
    json!({"id": event_id, "type": format!("contract.{action}"), "occurred_at": occurred_at,
           "data": {"id": id, "customer_id": "c_1", "starting_at": "2026-01-01T00:00:00Z", "ending_before": end}})
}

/// contract id -> its pending contract.end event_time.
async fn ends(app: &Lifecycle) -> Vec<(String, chrono::DateTime<chrono::Utc>)> {
    let mut ends: Vec<_> = app
        .upcoming("c_1")
        .await
        .iter()
        .filter(|s| s["event_type"] == json!("contract.end"))
        .map(|s| {
            (
                s["contract_id"].as_str().unwrap_or_default().to_string(),
                time_of(&s["event_time"]),
            )
        })
        .collect();
    ends.sort();
    ends
}

fn at(text: &str) -> chrono::DateTime<chrono::Utc> {
    time_of(&json!(text))
}

async fn webhook_types(receiver: &Receiver, expected: usize) -> Vec<String> {
    receiver.wait_for(expected, Duration::from_secs(3)).await;
    // Give anything extra (a wrong webhook) time to show up.
    tokio::time::sleep(Duration::from_millis(700)).await;
    receiver
        .requests()
        .iter()
        .map(|w| {
            format!(
                "{} {}",
                w.body["type"].as_str().unwrap_or("?"),
                w.body["data"]["contract_id"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

#[tokio::test]
async fn a_replayed_id_is_duplicate_and_an_older_write_is_stale() {
    let app = Lifecycle::start(Options::default()).await;
    let receiver = Receiver::start().await;
    app.endpoint(
        &receiver.url(),
        &["contract.create", "contract.edit", "contract.archive"],
    )
    .await;
    let (t1, t2, t3) = (in_ms(-60_000), in_ms(-30_000), in_ms(-45_000));

    let create = contract("wr_1", "create", "k_1", "2027-06-01T00:00:00Z", &t1);
    assert_eq!(app.events(&create).await, ["accepted"]);
    assert_eq!(
        app.events(&create).await,
        ["duplicate"],
        "the same event again"
    );
    let changed = contract("wr_1", "create", "k_1", "2028-06-01T00:00:00Z", &t1);
    assert_eq!(
        app.events(&changed).await,
        ["duplicate"],
        "the same id with other data is still a replay"
    );
    assert_eq!(
        ends(&app).await,
        [("k_1".to_string(), at("2027-06-01T00:00:00Z"))]
    );

    let edit = contract("wr_2", "edit", "k_1", "2027-02-01T00:00:00Z", &t2);
    assert_eq!(app.events(&edit).await, ["accepted"]);
    let older = contract("wr_3", "edit", "k_1", "2027-03-01T00:00:00Z", &t3);
    assert_eq!(
        app.events(&older).await,
        ["stale"],
        "occurred before the applied edit"
    );
    let older_archive = json!({"id": "wr_4", "type": "contract.archive", "occurred_at": t3, "data": {"id": "k_1", "customer_id": "c_1"}});
    assert_eq!(
        app.events(&older_archive).await,
        ["stale"],
        "an archive older than the applied edit"
    );
    assert_eq!(
        app.events(&older).await,
        ["duplicate"],
        "a stale write's id is remembered too"
    );
    assert_eq!(app.events(&edit).await, ["duplicate"]);
    assert_eq!(
        ends(&app).await,
        [("k_1".to_string(), at("2027-02-01T00:00:00Z"))],
        "only the accepted edit moved the end"
    );

    assert_eq!(
        webhook_types(&receiver, 2).await,
        ["contract.create k_1", "contract.edit k_1"],
        "no webhook for duplicates or stale writes"
    );
}

#[tokio::test]
async fn a_batch_with_a_repeated_event_id_applies_it_once() {
    let app = Lifecycle::start(Options::default()).await;
    let receiver = Receiver::start().await;
    app.endpoint(&receiver.url(), &["contract.create", "contract.edit"])
        .await;
    let t = in_ms(-60_000);

    let a = contract("wr_a", "create", "k_a", "2027-06-01T00:00:00Z", &t);
    let b = contract("wr_b", "create", "k_b", "2027-07-01T00:00:00Z", &t);
    let newer = contract(
        "wr_c",
        "edit",
        "k_a",
        "2027-08-01T00:00:00Z",
        &in_ms(-10_000),
    );
    let older = contract(
        "wr_d",
        "edit",
        "k_a",
        "2027-09-01T00:00:00Z",
        &in_ms(-20_000),
    );
    let statuses = app
        .events(&json!({"events": [a, b, a, newer, older]}))
        .await;
    assert_eq!(
        statuses,
        ["accepted", "accepted", "duplicate", "accepted", "stale"]
    );
    assert_eq!(
        ends(&app).await,
        [
            ("k_a".to_string(), at("2027-08-01T00:00:00Z")),
            ("k_b".to_string(), at("2027-07-01T00:00:00Z"))
        ]
    );
    let again = app.events(&json!({"events": [a, b]})).await;
    assert_eq!(again, ["duplicate", "duplicate"], "a replayed batch");

    let mut types = webhook_types(&receiver, 3).await;
    types.sort();
    assert_eq!(
        types,
        [
            "contract.create k_a",
            "contract.create k_b",
            "contract.edit k_a"
        ]
    );
}
