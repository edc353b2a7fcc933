//! Time-based webhooks arrive at their moment (offset applied), never early,
//! at most `SLACK_MS` late, signed, with the contract's body.

use chrono::{DateTime, Utc};
use lifecycle_e2e::{
    ms_between, now_utc, rfc3339, time_of, Lifecycle, Options, Receiver, SLACK_MS,
};
use serde_json::json;
use std::time::{Duration, Instant};

fn secs(s: f64) -> chrono::Duration {
    chrono::Duration::milliseconds((s * 1000.0) as i64)
}

/// Arrived at or after `due`, and at most `SLACK_MS` later (wall clock).
fn assert_on_time(what: &str, arrived: DateTime<Utc>, due: DateTime<Utc>) {
    let late = ms_between(due, arrived);
    assert!(
        (0..=SLACK_MS).contains(&late),
        "{what}: due {due}, arrived {arrived} ({late} ms; allowed 0..={SLACK_MS})"
    );
}

#[tokio::test]
async fn contract_end_fires_one_second_before_the_end_signed() {
    let app = Lifecycle::start(Options::default()).await;
    let receiver = Receiver::start().await;
    let (_, secret) = app.endpoint(&receiver.url(), &["contract.end"]).await;
    // Only the -PT1S notification below; the system PT0S one would also fire.
    app.disable_system("contract.end").await;
    let notification = app
        .notification(&json!({"name": "heads-up", "event_type": "contract.end", "offset": "-PT1S"}))
        .await;
    assert!(
        notification["id"]
            .as_str()
            .unwrap_or_default()
            .starts_with("ntf_"),
        "{notification}"
    );
    assert_eq!(
        (
            &notification["offset"],
            &notification["catch_up"],
            &notification["enabled"],
            &notification["system"]
        ),
        (
            &json!("-PT1S"),
            &json!("PT24H"),
            &json!(true),
            &json!(false)
        ),
        "defaults of a new notification: {notification}"
    );

    let before_post = Instant::now();
    let end = now_utc() + secs(3.0);
    let fire_at = end - secs(1.0);
    let write = json!({"id": "wr_1", "type": "contract.create", "occurred_at": rfc3339(now_utc()),
        "data": {"id": "k_1", "customer_id": "c_1", "starting_at": "2026-01-01T00:00:00Z",
                 "ending_before": rfc3339(end), "custom_fields": {"tier": "gold"}}});
    assert_eq!(app.events(&write).await, ["accepted"]);
    let returned = Instant::now();

    let got = receiver
        .expect(1, Duration::from_secs(5), "contract.end -PT1S")
        .await;
    let webhook = &got[0];
    // Between 2 s and 3 s after ingestion (upper bound + SLACK_MS; the lower
    // bound is measured from before the end was computed, so it is exact).
    let since_post = webhook.at.duration_since(returned).as_millis() as i64;
    let since_start = webhook.at.duration_since(before_post).as_millis() as i64;
    assert!(
        since_start >= 2_000,
        "arrived {since_start} ms after ingestion began: too early"
    );
    assert!(
        since_post <= 3_000 + SLACK_MS,
        "arrived {since_post} ms after the POST returned"
    );
    assert_on_time("contract.end -PT1S", webhook.wall, fire_at);

    assert!(
        webhook.verify(&secret),
        "signature {:?} does not verify",
        webhook.header("webhook-signature")
    );
    let ts: i64 = webhook
        .header("webhook-timestamp")
        .parse()
        .expect("webhook-timestamp is unix seconds");
    assert!(
        (ts - Utc::now().timestamp()).abs() <= 60,
        "webhook-timestamp {ts} is not now"
    );
    assert!(webhook
        .header("content-type")
        .starts_with("application/json"));
    let body = &webhook.body;
    assert_eq!(
        webhook.header("webhook-id"),
        body["id"].as_str().unwrap_or_default(),
        "{body}"
    );
    assert!(
        body["id"].as_str().unwrap_or_default().starts_with("msg_"),
        "{body}"
    );
    assert_eq!(body["type"], json!("contract.end"));
    time_of(&body["timestamp"]);
    let data = &body["data"];
    assert_eq!(
        (
            &data["offset"],
            &data["late"],
            &data["notification_id"],
            &data["customer_id"]
        ),
        (
            &json!("-PT1S"),
            &json!(false),
            &notification["id"],
            &json!("c_1")
        ),
        "{data}"
    );
    assert_eq!(
        (&data["contract_id"], &data["contract"]["id"]),
        (&json!("k_1"), &json!("k_1")),
        "{data}"
    );
    assert_eq!(time_of(&data["event_time"]), end, "{data}");
    assert_eq!(time_of(&data["scheduled_for"]), fire_at, "{data}");
    assert_eq!(data["custom_fields"], json!({"tier": "gold"}), "{data}");

    // Past the end itself: still exactly one (the disabled system one stays quiet).
    tokio::time::sleep(Duration::from_millis(1_000 + SLACK_MS as u64)).await;
    assert_eq!(
        receiver.requests().len(),
        1,
        "only the -PT1S webhook: {:?}",
        receiver
            .requests()
            .iter()
            .map(|w| w.describe())
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn commit_and_credit_segments_start_and_end_on_time() {
    let app = Lifecycle::start(Options::default()).await;
    let receiver = Receiver::start().await;
    let types = [
        "commit.segment.start",
        "commit.segment.end",
        "credit.segment.start",
        "credit.segment.end",
    ];
    let (_, secret) = app.endpoint(&receiver.url(), &types).await;

    let t = now_utc();
    let (a, b, c) = (t + secs(1.5), t + secs(3.0), t + secs(4.5));
    let (g_start, g_end) = (t + secs(2.0), t + secs(4.0));
    let commit = json!({"id": "wr_m", "type": "commit.create", "occurred_at": rfc3339(t),
        "data": {"id": "m_1", "customer_id": "c_1", "contract_id": "k_1", "type": "prepaid",
                 "access_schedule": [
                     {"id": "s1", "starting_at": rfc3339(a), "ending_before": rfc3339(b), "amount": 100},
                     {"id": "s2", "starting_at": rfc3339(b), "ending_before": rfc3339(c), "amount": 50}]}});
    let credit = json!({"id": "wr_r", "type": "credit.create", "occurred_at": rfc3339(t),
        "data": {"id": "r_1", "customer_id": "c_1",
                 "access_schedule": [{"id": "g1", "starting_at": rfc3339(g_start), "ending_before": rfc3339(g_end), "amount": 5}]}});
    assert_eq!(
        app.events(&json!({"events": [commit, credit]})).await,
        ["accepted", "accepted"]
    );

    // (type, entity key, entity id, segment id, index, count, moment)
    let expected = [
        ("commit.segment.start", "commit", "m_1", "s1", 0, 2, a),
        ("credit.segment.start", "credit", "r_1", "g1", 0, 1, g_start),
        ("commit.segment.end", "commit", "m_1", "s1", 0, 2, b),
        ("commit.segment.start", "commit", "m_1", "s2", 1, 2, b),
        ("credit.segment.end", "credit", "r_1", "g1", 0, 1, g_end),
        ("commit.segment.end", "commit", "m_1", "s2", 1, 2, c),
    ];
    receiver
        .expect(6, Duration::from_secs(8), "six segment webhooks")
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = receiver.requests();
    assert_eq!(
        got.len(),
        6,
        "{:#?}",
        got.iter().map(|w| w.describe()).collect::<Vec<_>>()
    );

    for (kind, entity, id, segment, index, count, moment) in expected {
        let what = format!("{kind} {segment}");
        let matching: Vec<_> = got
            .iter()
            .filter(|w| {
                w.body["type"] == json!(kind) && w.body["data"]["segment_id"] == json!(segment)
            })
            .collect();
        assert_eq!(matching.len(), 1, "{what}: exactly one webhook");
        let webhook = matching[0];
        assert!(webhook.verify(&secret), "{what}: signature");
        assert_eq!(
            webhook.header("webhook-id"),
            webhook.body["id"].as_str().unwrap_or_default()
        );
        assert_on_time(&what, webhook.wall, moment);
        let data = &webhook.body["data"];
        assert_eq!(time_of(&data["event_time"]), moment, "{what}: {data}");
        assert_eq!(time_of(&data["scheduled_for"]), moment, "{what}: {data}");
        assert_eq!(
            (&data["offset"], &data["late"]),
            (&json!("PT0S"), &json!(false)),
            "{what}: {data}"
        );
        assert_eq!(
            (
                &data["segment_index"],
                &data["segment_count"],
                &data["segment"]["id"]
            ),
            (&json!(index), &json!(count), &json!(segment)),
            "{what}: {data}"
        );
        assert_eq!(
            (&data[format!("{entity}_id")], &data[entity]["id"]),
            (&json!(id), &json!(id)),
            "{what}: {data}"
        );
        assert_eq!(data["customer_id"], json!("c_1"), "{what}: {data}");
    }
    let ids: std::collections::HashSet<_> = got.iter().map(|w| w.header("webhook-id")).collect();
    assert_eq!(ids.len(), 6, "each moment has its own webhook id");
    let s2 = got
        .iter()
        .find(|w| w.body["data"]["segment_id"] == json!("s2"))
        .unwrap();
    assert_eq!(
        s2.body["data"]["contract_id"],
        json!("k_1"),
        "the commit's contract_id is carried"
    );
}

#[tokio::test]
async fn a_notification_created_later_schedules_existing_contracts() {
    let app = Lifecycle::start(Options::default()).await;
    let receiver = Receiver::start().await;
    app.endpoint(&receiver.url(), &["contract.end"]).await;
    app.disable_system("contract.end").await;
    let end = now_utc() + secs(3.0);
    let write = json!({"id": "wr_1", "type": "contract.create", "occurred_at": rfc3339(now_utc()),
        "data": {"id": "k_1", "customer_id": "c_1", "starting_at": "2026-01-01T00:00:00Z", "ending_before": rfc3339(end)}});
    app.events(&write).await;
    let notification = app
        .notification(&json!({"name": "later", "event_type": "contract.end", "offset": "-PT1S"}))
        .await;

    let got = receiver
        .expect(
            1,
            Duration::from_secs(5),
            "contract.end of the later notification",
        )
        .await;
    assert_on_time("contract.end -PT1S", got[0].wall, end - secs(1.0));
    assert_eq!(got[0].body["data"]["notification_id"], notification["id"]);
    tokio::time::sleep(Duration::from_millis(1_000 + SLACK_MS as u64)).await;
    assert_eq!(
        receiver.requests().len(),
        1,
        "one webhook, from the new notification only"
    );
}

#[tokio::test]
async fn a_moment_already_past_fires_at_once_late_or_is_skipped_past_catch_up() {
    let app = Lifecycle::start(Options::default()).await;
    let receiver = Receiver::start().await;
    app.endpoint(&receiver.url(), &["contract.end", "contract.start"])
        .await;
    // contract.start: the system notification (catch_up PT24H) fires late.
    // contract.end: only a catch_up PT0S notification, which never fires late.
    app.disable_system("contract.end").await;
    let strict = app
        .notification(&json!({"name": "strict", "event_type": "contract.end", "offset": "PT0S", "catch_up": "PT0S"}))
        .await;
    assert_eq!(strict["catch_up"], json!("PT0S"), "{strict}");

    let (start, end) = (now_utc() - secs(10.0), now_utc() - secs(5.0));
    let write = json!({"id": "wr_1", "type": "contract.create", "occurred_at": rfc3339(now_utc()),
        "data": {"id": "k_1", "customer_id": "c_1", "starting_at": rfc3339(start), "ending_before": rfc3339(end)}});
    let sent = Instant::now();
    app.events(&write).await;

    let got = receiver
        .expect(1, Duration::from_secs(3), "the late contract.start")
        .await;
    let took = got[0].at.duration_since(sent).as_millis();
    assert!(
        took < 1_000,
        "a late moment fires at once, not {took} ms later"
    );
    let data = &got[0].body["data"];
    assert_eq!(
        (&got[0].body["type"], &data["late"]),
        (&json!("contract.start"), &json!(true)),
        "{data}"
    );
    assert_eq!(time_of(&data["event_time"]), start, "{data}");
    assert_eq!(time_of(&data["scheduled_for"]), start, "{data}");

    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        receiver.requests().len(),
        1,
        "no contract.end: catch_up PT0S never fires late"
    );
    let skipped = app
        .deliveries("customer_id=c_1&event_type=contract.end&status=skipped")
        .await;
    assert_eq!(
        skipped.len(),
        1,
        "the skipped moment is recorded: {skipped:?}"
    );
    assert_eq!(
        skipped[0]["notification_id"], strict["id"],
        "{}",
        skipped[0]
    );
    assert!(
        skipped[0]["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "a skipped delivery has a reason: {}",
        skipped[0]
    );
}

#[tokio::test]
async fn editing_disabling_and_deleting_notifications_reschedule() {
    let app = Lifecycle::start(Options::default()).await;
    let receiver = Receiver::start().await;
    app.endpoint(&receiver.url(), &["contract.end"]).await;
    app.disable_system("contract.end").await;
    let moved = app
        .notification(&json!({"name": "moved", "event_type": "contract.end", "offset": "-PT3S"}))
        .await;
    let deleted = app
        .notification(&json!({"name": "deleted", "event_type": "contract.end", "offset": "-PT2S"}))
        .await;
    let disabled = app
        .notification(&json!({"name": "disabled", "event_type": "contract.end", "offset": "-PT1S"}))
        .await;
    let end = now_utc() + secs(4.0);
    let write = json!({"id": "wr_1", "type": "contract.create", "occurred_at": rfc3339(now_utc()),
        "data": {"id": "k_1", "customer_id": "c_1", "starting_at": "2026-01-01T00:00:00Z", "ending_before": rfc3339(end)}});
    app.events(&write).await;
    let pending = |list: Vec<serde_json::Value>| {
        let mut ids: Vec<String> = list
            .iter()
            .map(|s| {
                s["notification_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        ids.sort();
        ids
    };
    let ends = |list: Vec<serde_json::Value>| -> Vec<serde_json::Value> {
        list.into_iter()
            .filter(|s| s["event_type"] == json!("contract.end"))
            .collect()
    };
    assert_eq!(
        ends(app.upcoming("c_1").await).len(),
        3,
        "three contract.end moments planned"
    );

    let path = |n: &serde_json::Value| format!("/v1/notifications/{}", n["id"].as_str().unwrap());
    let (status, answer) = app.patch(&path(&moved), &json!({"offset": "PT0S"})).await;
    assert_eq!(
        (status, &answer["offset"]),
        (200, &json!("PT0S")),
        "{answer}"
    );
    let (status, answer) = app.delete(&path(&deleted)).await;
    assert!(
        (200..300).contains(&status),
        "DELETE a notification: {status} {answer}"
    );
    let (status, answer) = app
        .patch(&path(&disabled), &json!({"enabled": false}))
        .await;
    assert_eq!(
        (status, &answer["enabled"]),
        (200, &json!(false)),
        "{answer}"
    );
    let upcoming = ends(app.upcoming("c_1").await);
    assert_eq!(
        pending(upcoming.clone()),
        [moved["id"].as_str().unwrap().to_string()],
        "{upcoming:?}"
    );
    assert_eq!(
        time_of(&upcoming[0]["fire_at"]),
        end,
        "the edited offset moved the fire time: {upcoming:?}"
    );

    let got = receiver
        .expect(
            1,
            Duration::from_secs(6),
            "the edited notification's contract.end",
        )
        .await;
    assert_eq!(
        got[0].body["data"]["notification_id"], moved["id"],
        "{}",
        got[0].body
    );
    assert_eq!(
        got[0].body["data"]["offset"],
        json!("PT0S"),
        "{}",
        got[0].body
    );
    assert_on_time("contract.end at the edited offset", got[0].wall, end);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.requests().len(),
        1,
        "nothing from the deleted or disabled notifications, nothing at -PT3S"
    );
}

/// With a 2 s horizon, a moment 6 s out is not a schedule row when it is
/// written: it is listed as upcoming all the same, and the timer loop
/// plans it as it comes within the horizon, so it fires on time.
#[tokio::test]
async fn a_moment_beyond_the_horizon_is_listed_and_fires_on_time() {
    let options = Options {
        args: vec!["--horizon".into(), "2s".into()],
        ..Options::default()
    };
    let app = Lifecycle::start(options).await;
    let receiver = Receiver::start().await;
    app.endpoint(&receiver.url(), &["contract.end"]).await;
    let end = time_of(&json!(rfc3339(now_utc() + secs(6.0))));
    let write = json!({"id": "wr_h", "type": "contract.create", "occurred_at": rfc3339(now_utc()),
        "data": {"id": "k_h", "customer_id": "c_h", "starting_at": "2026-01-01T00:00:00Z",
                 "ending_before": rfc3339(end)}});
    assert_eq!(app.events(&write).await, ["accepted"]);
    let upcoming = app.upcoming("c_h").await;
    let ends: Vec<_> = upcoming
        .iter()
        .filter(|s| s["event_type"] == "contract.end")
        .collect();
    assert_eq!(ends.len(), 1, "the deferred end is upcoming: {upcoming:?}");
    assert_eq!(time_of(&ends[0]["fire_at"]), end);

    let got = receiver
        .expect(1, Duration::from_secs(9), "contract.end beyond the horizon")
        .await;
    assert_eq!(got[0].body["type"], json!("contract.end"));
    assert_on_time("contract.end", got[0].wall, end);
}
