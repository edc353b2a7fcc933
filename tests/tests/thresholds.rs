//! Threshold notifications from the outside: usage signals in, `alerts.*`
//! webhooks out, through the same endpoints, signing and log.

use lifecycle_e2e::{now, Lifecycle, Options, Receiver};
use serde_json::{json, Value};
use std::time::Duration;

fn balance(id: &str, value: f64) -> Value {
    json!({"id": id, "type": "balance.update", "occurred_at": now(), "data": {"customer_id": "c_1", "credit_balance": value}})
}

fn usage(id: usize, customer: &str, quantity: f64) -> Value {
    json!({"id": format!("u_{id}"), "type": "usage.record", "occurred_at": now(),
           "data": {"customer_id": customer, "metric": "api_calls", "quantity": quantity, "timestamp": now()}})
}

async fn threshold(app: &Lifecycle, body: Value) -> String {
    let (status, created) = app.post("/v1/notifications", &body).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_low_balance_fires_once_per_dip_with_a_new_id_each_time() {
    let app = Lifecycle::start(Options::default()).await;
    let receiver = Receiver::start().await;
    let (_, secret) = app
        .endpoint(&receiver.url(), &["alerts.low_credit_balance_reached"])
        .await;
    let id = threshold(&app, json!({"name": "Low balance", "event_type": "alerts.low_credit_balance_reached", "threshold": 100})).await;

    app.events(
        &json!({"events": [balance("b_1", 500.0), balance("b_2", 90.0), balance("b_3", 40.0)]}),
    )
    .await;
    let got = receiver.wait_for(1, Duration::from_secs(2)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        receiver.requests().len(),
        1,
        "exactly one webhook for one dip"
    );
    let first = &got[0];
    assert!(first.verify(&secret));
    assert_eq!(
        first.body["type"],
        json!("alerts.low_credit_balance_reached")
    );
    let data = &first.body["data"];
    assert_eq!(
        (&data["threshold"], &data["value"], &data["customer_id"]),
        (&json!(100.0), &json!(90.0), &json!("c_1"))
    );
    assert_eq!(
        (&data["signal"]["id"], &data["notification_id"]),
        (&json!("b_2"), &json!(id))
    );
    assert!(data["signal"]["occurred_at"].is_string());

    let (_, alerts) = app.get("/v1/customers/c_1/alerts").await;
    assert_eq!(
        (&alerts["data"][0]["state"], &alerts["data"][0]["value"]),
        (&json!("in_alarm"), &json!(40.0))
    );

    app.events(&json!({"events": [balance("b_4", 1000.0), balance("b_5", 10.0)]}))
        .await;
    let got = receiver.wait_for(2, Duration::from_secs(2)).await;
    assert_eq!(got.len(), 2, "a top-up re-arms, the next dip fires again");
    assert_ne!(
        got[1].header("webhook-id"),
        got[0].header("webhook-id"),
        "a new crossing, a new id"
    );
    assert_eq!(app.events(&balance("b_5", 10.0)).await, ["duplicate"]);
}

#[tokio::test]
async fn ten_thousand_usage_records_cross_three_thresholds_three_times() {
    let app = Lifecycle::start(Options::default()).await;
    let receiver = Receiver::start().await;
    app.endpoint(&receiver.url(), &["alerts.usage_threshold_reached"])
        .await;
    for limit in [1_000, 5_000, 9_000] {
        threshold(&app, json!({"event_type": "alerts.usage_threshold_reached", "metric": "api_calls", "threshold": limit})).await;
    }
    for batch in 0..20 {
        let events: Vec<_> = (0..500)
            .map(|i| usage(batch * 500 + i, "c_1", 1.0))
            .collect();
        app.events(&json!({ "events": events })).await;
    }
    receiver.wait_for(3, Duration::from_secs(3)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = receiver.requests();
    let mut values: Vec<f64> = got
        .iter()
        .map(|w| w.body["data"]["value"].as_f64().unwrap())
        .collect();
    values.sort_by(f64::total_cmp);
    assert_eq!(
        values,
        [1_000.0, 5_000.0, 9_000.0],
        "exactly three webhooks, each at its crossing"
    );
}

#[tokio::test]
async fn a_jump_over_several_thresholds_fires_each_and_resolves_pair_up() {
    let app = Lifecycle::start(Options::default()).await;
    let receiver = Receiver::start().await;
    app.endpoint(
        &receiver.url(),
        &[
            "alerts.spend_threshold_reached",
            "alerts.spend_threshold_resolved",
        ],
    )
    .await;
    for limit in [1_000, 5_000, 10_000] {
        threshold(&app, json!({"event_type": "alerts.spend_threshold_reached", "threshold": limit, "notify_on_resolve": true})).await;
    }
    let spend = |id: &str, period: &str, value: f64| json!({"id": id, "type": "spend.update", "occurred_at": now(), "data": {"customer_id": "c_1", "period_start": period, "spend": value}});
    app.events(&json!({"events": [spend("s_1", "2026-11-01T00:00:00Z", 7_000.0)]}))
        .await;
    receiver.wait_for(2, Duration::from_secs(2)).await;
    // A new period in the same batch as a dip back over: resolves then reaches, in pairs.
    app.events(&json!({"events": [spend("s_2", "2026-12-01T00:00:00Z", 10.0), spend("s_3", "2026-12-01T00:00:00Z", 1_500.0)]})).await;
    receiver.wait_for(5, Duration::from_secs(2)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let types: Vec<String> = receiver
        .requests()
        .iter()
        .map(|w| w.body["type"].as_str().unwrap().to_string())
        .collect();
    let count = |t: &str| types.iter().filter(|x| x.as_str() == t).count();
    assert_eq!(
        count("alerts.spend_threshold_reached"),
        3,
        "{types:?}: 1,000 and 5,000 in November, 1,000 in December"
    );
    assert_eq!(
        count("alerts.spend_threshold_resolved"),
        2,
        "{types:?}: both November alarms end with the period"
    );
    let stale = spend("s_0", "2026-11-01T00:00:00Z", 99_999.0);
    assert_eq!(
        app.events(&stale).await,
        ["stale"],
        "an older period's snapshot is stale"
    );
}

#[tokio::test]
async fn creating_a_threshold_evaluates_customers_already_past_it() {
    let app = Lifecycle::start(Options::default()).await;
    let receiver = Receiver::start().await;
    app.endpoint(&receiver.url(), &["alerts.usage_threshold_reached"])
        .await;
    let events: Vec<_> = (0..3)
        .map(|i| usage(i, "c_1", 40.0))
        .chain([usage(9, "c_2", 5.0)])
        .collect();
    app.events(&json!({ "events": events })).await;
    threshold(&app, json!({"event_type": "alerts.usage_threshold_reached", "metric": "api_calls", "threshold": 100})).await;
    let quiet = json!({"event_type": "alerts.usage_threshold_reached", "metric": "api_calls", "threshold": 50, "evaluate_on_create": false});
    threshold(&app, quiet).await;
    receiver.wait_for(2, Duration::from_secs(2)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = receiver.requests();
    assert_eq!(
        got.len(),
        1,
        "only c_1 is past 100, and the second notification did not evaluate"
    );
    assert_eq!(
        (
            &got[0].body["data"]["customer_id"],
            &got[0].body["data"]["value"]
        ),
        (&json!("c_1"), &json!(120.0))
    );
    assert!(got[0].body["data"]["signal"].is_null());
}

#[tokio::test]
async fn bad_signals_are_refused_and_change_no_aggregate() {
    let app = Lifecycle::start(Options::default()).await;
    threshold(&app, json!({"event_type": "alerts.usage_threshold_reached", "metric": "api_calls", "threshold": 10})).await;
    app.events(&json!({"events": [usage(1, "c_1", 4.0)]})).await;
    let bad = [
        (
            json!({"id": "x1", "type": "usage.record", "occurred_at": now(), "data": {"customer_id": "c_1", "metric": "api_calls", "quantity": -3, "timestamp": now()}}),
            "data.quantity",
        ),
        (
            json!({"id": "x2", "type": "usage.record", "occurred_at": now(), "data": {"customer_id": "c_1", "metric": {"name": "api_calls"}, "quantity": 3, "timestamp": now()}}),
            "data.metric",
        ),
        (
            json!({"id": "x3", "type": "usage.record", "occurred_at": now(), "data": {"metric": "api_calls", "quantity": 3, "timestamp": now()}}),
            "data.customer_id",
        ),
        (
            json!({"id": "x4", "type": "balance.update", "occurred_at": now(), "data": {"customer_id": "c_1", "credit_balance": "lots"}}),
            "data.credit_balance",
        ),
    ];
    for (event, field) in bad {
        let batch = json!({"events": [usage(2, "c_1", 100.0), event]});
        let (status, body) = app.post("/v1/events", &batch).await;
        assert_eq!(
            (status, &body["error"]["field"]),
            (422, &json!(format!("events[1].{field}"))),
            "{body}"
        );
    }
    let (status, _) = app.post_raw("/v1/events", r#"{"id":"x5","type":"usage.record","occurred_at":"2026-11-25T00:00:00Z","data":{"customer_id":"c_1","metric":"m","quantity":1e999,"timestamp":"2026-11-25T00:00:00Z"}}"#, Some(&app.key)).await;
    assert_eq!(status, 400, "a number JSON cannot hold is malformed");
    let (_, alerts) = app.get("/v1/customers/c_1/alerts").await;
    assert_eq!(
        (&alerts["data"][0]["value"], &alerts["data"][0]["state"]),
        (&json!(4.0), &json!("ok")),
        "no aggregate changed"
    );
    assert_eq!(
        app.events(&json!({"events": [usage(2, "c_1", 1.0)]})).await,
        ["accepted"],
        "the refused batch left no trace"
    );
}
