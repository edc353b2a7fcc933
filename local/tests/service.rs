//! The service over the real SQLite store, with a pinned clock and a real
//! HTTP receiver on loopback: firing, attempts, leases and fan-out, without
//! sleeping for the moments themselves.

mod common;

use chrono::Duration;
use common::{harness, receiver, t};
use lifecycle_core::ports::Store;
use lifecycle_core::signing::verify;
use lifecycle_core::time::Clock;
use serde_json::{json, Value};

#[tokio::test]
async fn a_due_schedule_fires_once_however_often_it_is_run() {
    let h = harness("2026-11-25T00:00:00Z").await;
    let (url, received) = receiver(&[]).await;
    let secret = h.endpoint(&url, &["contract.end"]).await;
    h.contract(
        "wr_1",
        "create",
        "k_1",
        Some("2026-12-01T00:00:00Z"),
        "2026-11-25T00:00:00Z",
    )
    .await;
    let schedule = h
        .pending()
        .await
        .into_iter()
        .find(|s| s.event_type.as_str() == "contract.end")
        .unwrap();

    h.clock.set(t("2026-11-30T23:59:59Z"));
    h.run_due().await;
    assert!(
        received.bodies().is_empty(),
        "nothing is due a second early"
    );

    h.clock.set(t("2026-12-01T00:00:00Z"));
    h.service.run_timer(&schedule.id).await.unwrap();
    h.service.run_timer(&schedule.id).await.unwrap();
    h.run_due().await;
    let requests = received.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1, "one webhook for one moment");
    let (headers, body) = &requests[0];
    let header = |name: &str| headers[name].to_str().unwrap().to_string();
    verify(
        &secret,
        &header("webhook-id"),
        &header("webhook-timestamp"),
        &header("webhook-signature"),
        body.as_bytes(),
    )
    .unwrap();
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["id"], json!(schedule.webhook_id()));
    assert_eq!(body["data"]["late"], json!(false));
    assert_eq!(body["data"]["contract"]["id"], json!("k_1"));
    assert_eq!(body["data"]["version"], json!(1));
}

#[tokio::test]
async fn an_attempt_in_flight_holds_its_delivery_until_the_lease_ends() {
    let h = harness("2026-11-25T00:00:00Z").await;
    let (url, received) = receiver(&[]).await;
    h.endpoint(&url, &["contract.create"]).await;
    h.contract("wr_1", "create", "k_1", None, "2026-11-25T00:00:00Z")
        .await;
    // The write made its webhook's delivery, due at once.
    let deliveries = h.due_deliveries().await;
    assert_eq!(deliveries.len(), 1);

    // A process claims the attempt and dies before recording it.
    h.claim_for_an_attempt(&deliveries[0]).await;
    h.run_due().await;
    assert!(
        received.bodies().is_empty(),
        "a held delivery is not attempted twice at once"
    );

    h.clock.advance(Duration::seconds(46));
    h.run_due().await;
    assert_eq!(
        received.bodies().len(),
        1,
        "after the lease the delivery is attempted again"
    );
    let (delivery, attempts) = h.service.delivery(&deliveries[0]).await.unwrap();
    assert_eq!(delivery.status.as_str(), "delivered");
    assert_eq!(attempts.len(), 1);
}

#[tokio::test]
async fn failures_retry_on_the_timetable_then_give_up() {
    let h = harness("2026-11-25T00:00:00Z").await;
    let (url, received) = receiver(&[500; 20]).await;
    h.endpoint(&url, &["contract.create"]).await;
    h.contract("wr_1", "create", "k_1", None, "2026-11-25T00:00:00Z")
        .await;
    h.run_due().await;
    let bases = [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000];
    let id = h
        .service
        .deliveries(&Default::default(), None, 10)
        .await
        .unwrap()
        .data[0]
        .0
        .id
        .clone();
    for (i, base) in bases.iter().enumerate() {
        let (delivery, _) = h.service.delivery(&id).await.unwrap();
        assert_eq!(delivery.status.as_str(), "pending");
        let wait = delivery.next_attempt_at.unwrap() - h.clock.now();
        let ms = wait.num_milliseconds() as f64;
        assert!(
            ms >= *base as f64 * 800.0 && ms <= *base as f64 * 1200.0,
            "retry {} after {ms} ms",
            i + 1
        );
        h.clock.advance(wait);
        h.run_due().await;
    }
    let (delivery, attempts) = h.service.delivery(&id).await.unwrap();
    assert_eq!(delivery.status.as_str(), "failed");
    assert_eq!(attempts.len(), 8);
    assert!(attempts.iter().all(|a| a.status_code == Some(500)));
    let ids: std::collections::HashSet<_> =
        received.bodies().iter().map(|b| b["id"].clone()).collect();
    assert_eq!(
        (received.bodies().len(), ids.len()),
        (8, 1),
        "eight attempts, one webhook id"
    );

    // A resend is one attempt, not a new chain.
    h.service.resend(&id).await.unwrap();
    h.run_due().await;
    let (delivery, attempts) = h.service.delivery(&id).await.unwrap();
    assert_eq!((delivery.status.as_str(), attempts.len()), ("failed", 9));
    assert!(attempts[8].manual);
}

#[tokio::test]
async fn a_moment_missed_while_down_fires_late_within_catch_up_and_is_skipped_after() {
    let h = harness("2026-11-25T00:00:00Z").await;
    let (url, received) = receiver(&[]).await;
    h.endpoint(&url, &["contract.end"]).await;
    h.contract(
        "wr_1",
        "create",
        "k_1",
        Some("2026-11-26T00:00:00Z"),
        "2026-11-25T00:00:00Z",
    )
    .await;
    h.contract(
        "wr_2",
        "create",
        "k_2",
        Some("2026-11-27T00:00:00Z"),
        "2026-11-25T00:00:00Z",
    )
    .await;

    // "Down" from before the first end until 25 h after it: the first is past
    // its 24 h catch-up, the second (1 h after its end) is not.
    h.clock.set(t("2026-11-27T01:00:00Z"));
    h.run_due().await;
    let bodies = received.bodies();
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["data"]["contract_id"], json!("k_2"));
    assert_eq!(bodies[0]["data"]["late"], json!(true));
    let ends = lifecycle_core::ports::DeliveryFilter {
        event_type: lifecycle_core::event_type::EventType::parse("contract.end"),
        ..Default::default()
    };
    let skipped = h.service.deliveries(&ends, None, 50).await.unwrap().data;
    let skipped: Vec<_> = skipped
        .iter()
        .filter(|(d, _)| d.status.as_str() == "skipped")
        .collect();
    assert_eq!(skipped.len(), 1);
    assert!(
        skipped[0].0.reason.as_deref().unwrap().contains("catch-up"),
        "{:?}",
        skipped[0].0.reason
    );
}

#[tokio::test]
async fn edits_move_and_archives_cancel_and_replays_change_nothing() {
    let h = harness("2026-11-25T00:00:00Z").await;
    assert_eq!(
        h.contract(
            "wr_1",
            "create",
            "k_1",
            Some("2026-12-01T00:00:00Z"),
            "2026-11-25T00:00:00Z"
        )
        .await,
        json!("accepted")
    );
    assert_eq!(
        h.contract(
            "wr_1",
            "create",
            "k_1",
            Some("2026-12-01T00:00:00Z"),
            "2026-11-25T00:00:00Z"
        )
        .await,
        json!("duplicate")
    );
    let ends = |s: Vec<lifecycle_core::schedule::Schedule>| {
        s.into_iter()
            .filter(|s| s.event_type.as_str() == "contract.end")
            .map(|s| s.fire_at)
            .collect::<Vec<_>>()
    };
    assert_eq!(ends(h.pending().await), vec![t("2026-12-01T00:00:00Z")]);

    h.contract(
        "wr_2",
        "edit",
        "k_1",
        Some("2026-12-05T00:00:00Z"),
        "2026-11-25T01:00:00Z",
    )
    .await;
    assert_eq!(ends(h.pending().await), vec![t("2026-12-05T00:00:00Z")]);
    let stale = h
        .contract(
            "wr_3",
            "edit",
            "k_1",
            Some("2026-12-09T00:00:00Z"),
            "2026-11-25T00:30:00Z",
        )
        .await;
    assert_eq!(stale, json!("stale"));
    assert_eq!(
        ends(h.pending().await),
        vec![t("2026-12-05T00:00:00Z")],
        "a stale edit changes nothing"
    );

    h.service
        .ingest(
            &json!({"id": "wr_4", "type": "contract.archive", "occurred_at": "2026-11-25T02:00:00Z",
                        "data": {"id": "k_1", "customer_id": "c_1"}}),
        )
        .await
        .unwrap();
    assert!(
        h.pending().await.is_empty(),
        "nothing is upcoming after an archive (write events fire at once and are not listed)"
    );
    let refused = h.service
        .ingest(&json!({"id": "wr_5", "type": "contract.edit", "occurred_at": "2026-11-25T03:00:00Z",
                        "data": {"id": "k_1", "customer_id": "c_1", "starting_at": "2026-01-01T00:00:00Z"}}))
        .await
        .unwrap_err();
    assert_eq!(
        (refused.status, refused.field.as_deref()),
        (409, Some("data.id"))
    );
}

#[tokio::test]
async fn a_batch_with_a_conflict_writes_nothing() {
    let h = harness("2026-11-25T00:00:00Z").await;
    h.contract("wr_0", "create", "k_0", None, "2026-11-25T00:00:00Z")
        .await;
    let event = |id: &str, contract: &str| {
        json!({"id": id, "type": "contract.create", "occurred_at": "2026-11-25T00:00:00Z",
               "data": {"id": contract, "customer_id": "c_1", "starting_at": "2026-12-01T00:00:00Z"}})
    };
    let batch = json!({"events": [event("wr_1", "k_1"), event("wr_2", "k_0")]});
    let error = h.service.ingest(&batch).await.unwrap_err();
    assert_eq!(
        (error.status, error.field.as_deref()),
        (409, Some("events[1].data.id"))
    );
    let retried = h
        .service
        .ingest(&json!({"events": [event("wr_1", "k_1")]}))
        .await
        .unwrap();
    assert_eq!(
        retried[0].status, "accepted",
        "the refused batch left no trace of wr_1"
    );
}

#[tokio::test]
async fn notifications_fan_out_over_existing_entities_and_deletes_cancel() {
    let h = harness("2026-11-25T00:00:00Z").await;
    for i in 0..1_200 {
        h.service
            .ingest(&json!({"id": format!("wr_{i}"), "type": "contract.create", "occurred_at": "2026-11-25T00:00:00Z",
                "data": {"id": format!("k_{i:04}"), "customer_id": format!("c_{}", i % 2), "starting_at": "2026-01-01T00:00:00Z",
                         "ending_before": "2027-01-01T00:00:00Z", "custom_fields": {"tier": if i % 3 == 0 { "gold" } else { "free" }}}}))
            .await
            .unwrap();
    }
    let n = h.service
        .create_notification(&json!({"event_type": "contract.end", "offset": "-P30D", "filter": {"custom_fields": {"tier": "gold"}}}))
        .await
        .unwrap();
    let gold_0 = h.of_notification("c_0", &n.id).await;
    let gold_1 = h.of_notification("c_1", &n.id).await;
    assert_eq!(
        gold_0.len() + gold_1.len(),
        400,
        "one schedule per gold contract, across fan-out pages"
    );
    assert!(gold_0
        .iter()
        .all(|s| s.fire_at == t("2026-12-02T00:00:00Z")));

    h.service.delete_notification(&n.id).await.unwrap();
    assert!(h.of_notification("c_0", &n.id).await.is_empty());
    assert!(h.of_notification("c_1", &n.id).await.is_empty());
    let system = h
        .service
        .delete_notification("ntf_system_contract_end")
        .await
        .unwrap_err();
    assert_eq!(system.status, 409);
}

/// A deployment's default `catch_up` (the AWS template's DefaultCatchUp)
/// applies to the system notifications and to those that give none, and
/// decides whether a moment already past fires late or is skipped.
#[tokio::test]
async fn a_default_catch_up_applies_to_notifications_that_give_none() {
    let config = lifecycle_core::service::Config {
        default_catch_up: lifecycle_core::offset::Offset::parse("PT1H").unwrap(),
        ..Default::default()
    };
    let h = common::harness_with(
        "2026-11-25T12:00:00Z",
        config,
        lifecycle_local::sender::HttpSender::new(),
    )
    .await;
    let system = h
        .service
        .notification("ntf_system_contract_end")
        .await
        .unwrap();
    assert_eq!(system.catch_up.as_str(), "PT1H");
    let plain = h
        .service
        .create_notification(&json!({"event_type": "contract.end", "offset": "PT30M"}))
        .await
        .unwrap();
    assert_eq!(plain.catch_up.as_str(), "PT1H");
    let explicit = h
        .service
        .create_notification(
            &json!({"event_type": "contract.end", "offset": "PT1H", "catch_up": "PT6H"}),
        )
        .await
        .unwrap();
    assert_eq!(explicit.catch_up.as_str(), "PT6H");

    // The contract ended two hours ago: the system moment (PT0S, two hours
    // late) and PT30M (90 minutes late) are beyond one hour and skipped; PT1H
    // (an hour late) is within its six hours and pending, late.
    h.contract(
        "wr_1",
        "create",
        "k_1",
        Some("2026-11-25T10:00:00Z"),
        "2026-11-25T11:59:00Z",
    )
    .await;
    let skipped: Vec<String> = h
        .store
        .customer_schedules(
            "c_1",
            lifecycle_core::schedule::ScheduleState::Skipped,
            None,
            None,
            10,
        )
        .await
        .unwrap()
        .data
        .into_iter()
        .map(|s| s.notification_id)
        .collect();
    assert!(skipped.contains(&system.id), "{skipped:?}");
    assert!(skipped.contains(&plain.id), "{skipped:?}");
    assert!(!skipped.contains(&explicit.id), "{skipped:?}");
    let pending: Vec<String> = h
        .pending()
        .await
        .into_iter()
        .map(|s| s.notification_id)
        .collect();
    assert!(pending.contains(&explicit.id), "{pending:?}");
}

/// An endpoint disabled while its batch is being sent (here by a 410) gets
/// nothing more of that batch: what was claimed for it fails at once.
#[tokio::test]
async fn a_batch_stops_sending_to_an_endpoint_disabled_during_it() {
    let h = harness("2026-11-25T00:00:00Z").await;
    let slow = |status| common::Answer {
        status,
        delay_ms: 50,
        ..Default::default()
    };
    let (url, received) = common::receiver_with(vec![slow(410), slow(200), slow(200)]).await;
    h.endpoint(&url, &["contract.create"]).await;
    for n in 0..20 {
        let (event, id) = (format!("wr_{n}"), format!("k_{n}"));
        h.contract(&event, "create", &id, None, "2026-11-25T00:00:00Z")
            .await;
    }
    let deliveries = h.due_deliveries().await;
    assert_eq!(deliveries.len(), 20);
    h.service.attempt_many(&deliveries, 1).await.unwrap();

    let sent = received.bodies().len();
    assert!(
        sent <= 3,
        "{sent} sent; the 410 disabled the endpoint after the first"
    );
    let mut failed_unsent = 0;
    for id in &deliveries {
        let (delivery, attempts) = h.service.delivery(id).await.unwrap();
        if attempts.is_empty() {
            assert_eq!(delivery.status.as_str(), "failed", "{id}");
            assert_eq!(delivery.reason.as_deref(), Some("endpoint disabled"));
            failed_unsent += 1;
        } else {
            let expected = match attempts[0].status_code {
                Some(410) => "failed",
                _ => "delivered",
            };
            assert_eq!(delivery.status.as_str(), expected, "{id}");
        }
    }
    assert_eq!(failed_unsent, 20 - sent);
}
