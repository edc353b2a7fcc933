//! The product from the outside: the real process, a real receiver, real time.

use lifecycle_e2e::{in_ms, now, Lifecycle, Receiver};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn contract(event_id: &str, action: &str, id: &str, end: Option<&str>, occurred_at: &str) -> Value {
    json!({"id": event_id, "type": format!("contract.{action}"), "occurred_at": occurred_at,
           "data": {"id": id, "customer_id": "c_1", "starting_at": "2026-01-01T00:00:00Z", "ending_before": end,
                    "custom_fields": {"tier": "gold"}}})
}

fn millis_since(start: Instant, at: Instant) -> u128 {
    at.duration_since(start).as_millis()
}

#[tokio::test]
async fn contract_end_fires_at_its_offset_signed() {
    let app = Lifecycle::start(&[]).await;
    let receiver = Receiver::start(&[]).await;
    let (_, secret) = app.endpoint(&receiver.url, &["contract.end"]).await;
    app.post(
        "/v1/notifications",
        &json!({"event_type": "contract.end", "offset": "-PT1S", "name": "heads-up"}),
    )
    .await;
    app.patch(
        "/v1/notifications/ntf_system_contract_end",
        &json!({"enabled": false}),
    )
    .await;

    let ingested = Instant::now();
    let end = in_ms(3_000);
    assert_eq!(
        app.events(&contract("wr_1", "create", "k_1", Some(&end), &now()))
            .await,
        ["accepted"]
    );
    let got = receiver.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1);
    let after = millis_since(ingested, got[0].at);
    assert!(
        (2_000..=3_000).contains(&after),
        "arrived {after} ms after ingestion, not between 2 and 3 s"
    );
    let webhook = &got[0];
    assert!(
        webhook.verify(&secret),
        "the signature verifies with the endpoint's secret"
    );
    assert_eq!(
        webhook.header("webhook-id"),
        webhook.body["id"].as_str().unwrap()
    );
    assert_eq!(webhook.body["type"], json!("contract.end"));
    let data = &webhook.body["data"];
    assert_eq!(
        (&data["offset"], &data["late"], &data["contract"]["id"]),
        (&json!("-PT1S"), &json!(false), &json!("k_1"))
    );
    assert_eq!(data["custom_fields"], json!({"tier": "gold"}));
}

#[tokio::test]
async fn commit_and_credit_segments_fire_at_their_moments() {
    let app = Lifecycle::start(&[]).await;
    let receiver = Receiver::start(&[]).await;
    let types = [
        "commit.segment.start",
        "commit.segment.end",
        "credit.segment.start",
        "credit.segment.end",
    ];
    app.endpoint(&receiver.url, &types).await;
    let t0 = Instant::now();
    let (a, b, c) = (in_ms(1_500), in_ms(2_500), in_ms(3_500));
    let segments = json!([{"id": "s1", "starting_at": a, "ending_before": b, "amount": 100},
                          {"id": "s2", "starting_at": b, "ending_before": c, "amount": 50}]);
    let commit = json!({"id": "wr_m", "type": "commit.create", "occurred_at": now(),
        "data": {"id": "m_1", "customer_id": "c_1", "contract_id": "k_1", "type": "prepaid", "access_schedule": segments}});
    let credit = json!({"id": "wr_r", "type": "credit.create", "occurred_at": now(),
        "data": {"id": "r_1", "customer_id": "c_1", "access_schedule": [{"id": "g1", "starting_at": a, "ending_before": c, "amount": 5}]}});
    app.events(&json!({"events": [commit, credit]})).await;

    // commit: s1 start, s1 end, s2 start, s2 end; credit: g1 start, g1 end.
    let got = receiver.wait_for(6, Duration::from_secs(6)).await;
    assert_eq!(got.len(), 6);
    for webhook in &got {
        let data = &webhook.body["data"];
        let event_time: chrono::DateTime<chrono::Utc> =
            data["event_time"].as_str().unwrap().parse().unwrap();
        let due = (event_time - chrono::Utc::now()).num_milliseconds()
            + millis_since(t0, Instant::now()) as i64;
        let arrived = millis_since(t0, webhook.at) as i64;
        assert!(
            arrived >= due - 50 && arrived <= due + 1_000,
            "{} due at {due} ms arrived at {arrived} ms",
            webhook.body["type"]
        );
        let kind = if webhook.body["type"].as_str().unwrap().starts_with("commit") {
            "commit"
        } else {
            "credit"
        };
        assert_eq!(data["segment"]["id"], data["segment_id"]);
        assert_eq!(
            data[kind]["access_schedule"].as_array().unwrap().len() as u64,
            data["segment_count"].as_u64().unwrap()
        );
    }
    let s2_start = got
        .iter()
        .find(|w| {
            w.body["type"] == json!("commit.segment.start")
                && w.body["data"]["segment_id"] == json!("s2")
        })
        .unwrap();
    assert_eq!(
        (
            &s2_start.body["data"]["segment_index"],
            &s2_start.body["data"]["commit_id"]
        ),
        (&json!(1), &json!("m_1"))
    );
    assert_eq!(s2_start.body["data"]["contract_id"], json!("k_1"));
}

#[tokio::test]
async fn write_events_arrive_right_after_the_write() {
    let app = Lifecycle::start(&[]).await;
    let receiver = Receiver::start(&[]).await;
    app.endpoint(
        &receiver.url,
        &[
            "contract.create",
            "contract.edit",
            "contract.archive",
            "credit.create",
        ],
    )
    .await;
    let steps = [
        contract("wr_1", "create", "k_1", None, "2026-11-25T10:00:00Z"),
        contract(
            "wr_2",
            "edit",
            "k_1",
            Some("2027-01-01T00:00:00Z"),
            "2026-11-25T10:01:00Z",
        ),
        json!({"id": "wr_3", "type": "contract.archive", "occurred_at": "2026-11-25T10:02:00Z", "data": {"id": "k_1", "customer_id": "c_1"}}),
        json!({"id": "wr_4", "type": "credit.create", "occurred_at": "2026-11-25T10:03:00Z",
               "data": {"id": "r_1", "customer_id": "c_1", "access_schedule": []}}),
    ];
    for (i, step) in steps.iter().enumerate() {
        let sent = Instant::now();
        app.events(step).await;
        let got = receiver.wait_for(i + 1, Duration::from_secs(2)).await;
        assert_eq!(got.len(), i + 1, "the webhook of {} arrived", step["type"]);
        let webhook = &got[i];
        assert!(
            millis_since(sent, webhook.at) < 1_000,
            "{} took over a second",
            step["type"]
        );
        assert_eq!(webhook.body["type"], step["type"]);
        assert_eq!(webhook.body["data"]["occurred_at"], step["occurred_at"]);
        assert_eq!(
            webhook.body["data"]["version"],
            json!(if i < 3 { i + 1 } else { 1 })
        );
    }
    assert_eq!(
        receiver.received()[1].body["data"]["contract"]["ending_before"],
        json!("2027-01-01T00:00:00Z")
    );
}

#[tokio::test]
async fn an_edit_moves_the_webhook_and_an_archive_cancels_it() {
    let app = Lifecycle::start(&[]).await;
    let receiver = Receiver::start(&[]).await;
    app.endpoint(&receiver.url, &["contract.end"]).await;
    let t0 = Instant::now();
    let (first, moved) = (in_ms(1_500), in_ms(3_000));
    app.events(&contract(
        "wr_1",
        "create",
        "k_1",
        Some(&first),
        &in_ms(-1_000),
    ))
    .await;
    app.events(&contract("wr_2", "edit", "k_1", Some(&moved), &now()))
        .await;
    app.events(&contract("wr_3", "create", "k_2", Some(&first), &now()))
        .await;
    let archive = json!({"id": "wr_4", "type": "contract.archive", "occurred_at": now(), "data": {"id": "k_2", "customer_id": "c_1"}});
    app.events(&archive).await;

    let got = receiver.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(
        got.len(),
        1,
        "one contract.end: the moved one; none for the archived contract"
    );
    assert!(
        millis_since(t0, got[0].at) >= 3_000,
        "it fired at the new end, not the old one"
    );
    assert_eq!(
        (
            &got[0].body["data"]["contract_id"],
            &got[0].body["data"]["event_time"]
        ),
        (&json!("k_1"), &json!(moved))
    );
    let (_, upcoming) = app.get("/v1/customers/c_1/upcoming").await;
    assert_eq!(upcoming["data"], json!([]));
}

#[tokio::test]
async fn a_failing_receiver_gets_the_same_webhook_until_it_succeeds() {
    let app = Lifecycle::start(&["--retry-delays", "1s,1s"]).await;
    let receiver = Receiver::start(&[500, 500]).await;
    app.endpoint(&receiver.url, &["contract.create"]).await;
    app.events(&contract("wr_1", "create", "k_1", None, &now()))
        .await;
    let got = receiver.wait_for(3, Duration::from_secs(6)).await;
    assert_eq!(got.len(), 3);
    assert!(got
        .iter()
        .all(|w| w.header("webhook-id") == got[0].header("webhook-id") && w.raw == got[0].raw));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, list) = app
        .get("/v1/deliveries?customer_id=c_1&event_type=contract.create")
        .await;
    let delivery = &list["data"][0];
    assert_eq!(delivery["status"], json!("delivered"));
    assert_eq!(delivery["webhook_id"], json!(got[0].header("webhook-id")));
    let codes: Vec<_> = delivery["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].clone())
        .collect();
    assert_eq!(codes, [json!(500), json!(500), json!(200)]);
}

#[tokio::test]
async fn a_process_killed_after_registering_still_delivers_once() {
    let mut app = Lifecycle::start(&[]).await;
    let receiver = Receiver::start(&[]).await;
    app.endpoint(&receiver.url, &["contract.end"]).await;
    app.events(&contract(
        "wr_1",
        "create",
        "k_1",
        Some(&in_ms(2_500)),
        &now(),
    ))
    .await;
    app.kill9();
    app.restart();
    receiver.wait_for(1, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = receiver.received();
    assert_eq!(got.len(), 1, "exactly once after a kill -9 and a restart");
    assert_eq!(got[0].body["data"]["late"], json!(false));
}

#[tokio::test]
async fn a_moment_that_passed_while_down_fires_late_on_start() {
    let mut app = Lifecycle::start(&[]).await;
    let receiver = Receiver::start(&[]).await;
    app.endpoint(&receiver.url, &["contract.end"]).await;
    app.events(&contract(
        "wr_1",
        "create",
        "k_1",
        Some(&in_ms(500)),
        &now(),
    ))
    .await;
    app.kill9();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    app.restart();
    let got = receiver.wait_for(1, Duration::from_secs(3)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body["data"]["contract_id"], json!("k_1"));
}

#[tokio::test]
async fn duplicate_and_stale_events_are_reported_and_change_nothing() {
    let app = Lifecycle::start(&[]).await;
    let receiver = Receiver::start(&[]).await;
    app.endpoint(&receiver.url, &["contract.create", "contract.edit"])
        .await;
    let create = contract(
        "wr_1",
        "create",
        "k_1",
        Some("2027-01-01T00:00:00Z"),
        "2026-11-25T10:00:00Z",
    );
    assert_eq!(app.events(&create).await, ["accepted"]);
    assert_eq!(app.events(&create).await, ["duplicate"]);
    let edit = contract(
        "wr_2",
        "edit",
        "k_1",
        Some("2027-02-01T00:00:00Z"),
        "2026-11-25T11:00:00Z",
    );
    let older = contract(
        "wr_3",
        "edit",
        "k_1",
        Some("2027-03-01T00:00:00Z"),
        "2026-11-25T10:30:00Z",
    );
    assert_eq!(
        app.events(&json!({"events": [edit, older.clone(), edit]}))
            .await,
        ["accepted", "stale", "duplicate"]
    );
    assert_eq!(app.events(&older).await, ["duplicate"]);
    receiver.wait_for(3, Duration::from_secs(2)).await;
    let types: Vec<_> = receiver
        .received()
        .iter()
        .map(|w| w.body["type"].clone())
        .collect();
    assert_eq!(
        types,
        [json!("contract.create"), json!("contract.edit")],
        "no webhook for duplicates or stale writes"
    );
    let (_, upcoming) = app
        .get("/v1/customers/c_1/upcoming?until=2030-01-01T00:00:00Z")
        .await;
    let ends: Vec<_> = upcoming["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["event_type"] == json!("contract.end"))
        .collect();
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0]["event_time"], json!("2027-02-01T00:00:00Z"));
}
