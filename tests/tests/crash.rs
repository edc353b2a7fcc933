//! SIGKILL right after a write is acknowledged loses nothing and duplicates
//! nothing; a moment that passes while the process is down fires late on start.

use chrono::DateTime;
use lifecycle_e2e::{
    ms_between, now_utc, rfc3339, time_of, Lifecycle, Options, Receiver, SLACK_MS,
};
use serde_json::{json, Value};
use std::time::Duration;

fn contract_ending(end: DateTime<chrono::Utc>) -> Value {
    json!({"id": "wr_1", "type": "contract.create", "occurred_at": rfc3339(now_utc()),
           "data": {"id": "k_1", "customer_id": "c_1", "starting_at": "2026-01-01T00:00:00Z", "ending_before": rfc3339(end)}})
}

#[tokio::test]
async fn killed_right_after_the_write_then_restarted_fires_exactly_once() {
    let mut app = Lifecycle::start(Options::default()).await;
    let receiver = Receiver::start().await;
    let (_, secret) = app.endpoint(&receiver.url(), &["contract.end"]).await;
    let end = now_utc() + chrono::Duration::milliseconds(4_000);
    assert_eq!(app.events(&contract_ending(end)).await, ["accepted"]);
    app.kill9();
    app.restart().await;

    let got = receiver
        .expect(
            1,
            Duration::from_secs(7),
            "contract.end after kill -9 and restart",
        )
        .await;
    let late = ms_between(end, got[0].wall);
    assert!(
        (0..=SLACK_MS).contains(&late),
        "arrived {late} ms after the end"
    );
    assert!(got[0].verify(&secret));
    assert_eq!(
        (
            &got[0].body["data"]["contract_id"],
            &got[0].body["data"]["late"]
        ),
        (&json!("k_1"), &json!(false)),
        "{}",
        got[0].body
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        receiver.requests().len(),
        1,
        "exactly once after a kill -9 and a restart"
    );
}

#[tokio::test]
async fn a_moment_passed_while_down_fires_late_once_on_start() {
    let mut app = Lifecycle::start(Options::default()).await;
    let receiver = Receiver::start().await;
    app.endpoint(&receiver.url(), &["contract.end"]).await;
    let end = now_utc() + chrono::Duration::milliseconds(1_000);
    assert_eq!(app.events(&contract_ending(end)).await, ["accepted"]);
    app.kill9();

    let down_until = (end - now_utc()).num_milliseconds().max(0) as u64 + 1_500;
    tokio::time::sleep(Duration::from_millis(down_until)).await;
    assert!(
        receiver.requests().is_empty(),
        "nothing fires while the process is down"
    );
    app.restart().await;

    let got = receiver
        .expect(
            1,
            Duration::from_secs(5),
            "the missed contract.end after restart",
        )
        .await;
    let data = &got[0].body["data"];
    assert_eq!(
        (&data["contract_id"], &data["late"]),
        (&json!("k_1"), &json!(true)),
        "{data}"
    );
    assert_eq!(time_of(&data["event_time"]), end, "{data}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.requests().len(), 1, "it never fires twice");
    let deliveries = app
        .deliveries("customer_id=c_1&event_type=contract.end")
        .await;
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert_eq!(
        deliveries[0]["status"],
        json!("delivered"),
        "{}",
        deliveries[0]
    );
}

#[tokio::test]
async fn a_retry_pending_at_the_kill_is_sent_after_restart_with_the_same_id() {
    let mut app = Lifecycle::start(Options::default().retry_delays("2s")).await;
    let receiver = Receiver::answering(&[500]).await;
    app.endpoint(&receiver.url(), &["contract.create"]).await;
    let write = json!({"id": "wr_1", "type": "contract.create", "occurred_at": rfc3339(now_utc()),
        "data": {"id": "k_1", "customer_id": "c_1", "starting_at": "2026-01-01T00:00:00Z"}});
    app.events(&write).await;
    let first = receiver
        .expect(1, Duration::from_secs(3), "the first attempt")
        .await;
    // Let the process record the failed attempt, then kill it during the backoff.
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.kill9();
    app.restart().await;

    let got = receiver
        .expect(2, Duration::from_secs(6), "the retry after the restart")
        .await;
    assert_eq!(
        got[1].header("webhook-id"),
        first[0].header("webhook-id"),
        "same webhook id"
    );
    assert_eq!(got[1].raw, first[0].raw, "same body");
    assert_eq!(got[1].status, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let deliveries = app
        .deliveries("customer_id=c_1&event_type=contract.create")
        .await;
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    let codes: Vec<_> = deliveries[0]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].clone())
        .collect();
    assert_eq!(
        (&deliveries[0]["status"], codes),
        (&json!("delivered"), vec![json!(500), json!(200)]),
        "{}",
        deliveries[0]
    );
    assert_eq!(receiver.requests().len(), 2, "no further attempts");
}
