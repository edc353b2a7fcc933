//! The delivery rules, each against a real receiver on loopback, with a
//! pinned clock: throttling, Retry-After, 410, timeouts, redirects, resend,
//! recovery, the failure window, stale-schedule skips and destination safety.

mod common;

use chrono::Duration;
use common::{harness, harness_with, receiver, receiver_with, t, Answer, Harness};
use lifecycle_core::destination::{DestinationPolicy, Network};
use lifecycle_core::entity::{Entity, EntityKind, EntityRecord};
use lifecycle_core::ports::{DeliveryFilter, Store, WriteCommit};
use lifecycle_core::retry::RetryPolicy;
use lifecycle_core::schedule::Delivery;
use lifecycle_core::service::Config;
use lifecycle_core::time::Clock;
use lifecycle_local::sender::HttpSender;
use serde_json::json;

const NOW: &str = "2026-11-25T00:00:00Z";

/// Creates contract `k_{n}`, whose contract.create webhook is due at once,
/// runs what is due, and returns that delivery.
async fn create_and_send(h: &Harness, n: u32) -> Delivery {
    h.contract(&format!("wr_{n}"), "create", &format!("k_{n}"), None, NOW)
        .await;
    h.run_due().await;
    let all = h
        .service
        .deliveries(&DeliveryFilter::default(), None, 500)
        .await
        .unwrap()
        .data;
    let contract = json!(format!("k_{n}"));
    all.into_iter()
        .map(|(d, _)| d)
        .find(|d| {
            d.entity.as_ref().map(|e| json!(e.id)) == Some(contract.clone())
                && d.endpoint_id.is_some()
        })
        .unwrap()
}

async fn reload(h: &Harness, delivery: &Delivery) -> Delivery {
    h.service.delivery(&delivery.id).await.unwrap().0
}

fn wait_of(h: &Harness, delivery: &Delivery) -> Duration {
    delivery.next_attempt_at.expect("a retry is due") - h.clock.now()
}

#[tokio::test]
async fn throttled_receivers_wait_a_minute_and_retry_after_is_clamped() {
    let h = harness(NOW).await;
    let retry_after = |secs: &str| Answer {
        status: 503,
        headers: vec![("retry-after", secs.into())],
        delay_ms: 0,
        body: String::new(),
    };
    let (url, received) = receiver_with(vec![
        429.into(),
        retry_after("450"),
        retry_after("99999"),
        200.into(),
    ])
    .await;
    h.endpoint(&url, &["contract.create"]).await;
    let delivery = create_and_send(&h, 1).await;
    assert_eq!(
        wait_of(&h, &delivery),
        Duration::seconds(60),
        "429 without Retry-After: at least 60 s"
    );

    h.clock.advance(wait_of(&h, &delivery));
    h.run_due().await;
    let delivery = reload(&h, &delivery).await;
    assert_eq!(
        wait_of(&h, &delivery),
        Duration::seconds(450),
        "Retry-After within [300 s, 600 s] is honoured"
    );

    h.clock.advance(wait_of(&h, &delivery));
    h.run_due().await;
    let delivery = reload(&h, &delivery).await;
    assert_eq!(
        wait_of(&h, &delivery),
        Duration::seconds(3600),
        "Retry-After is capped at twice the 1800 s delay"
    );

    h.clock.advance(wait_of(&h, &delivery));
    h.run_due().await;
    let (delivery, attempts) = h.service.delivery(&delivery.id).await.unwrap();
    assert_eq!(delivery.status.as_str(), "delivered");
    let codes: Vec<_> = attempts.iter().map(|a| a.status_code).collect();
    assert_eq!(codes, vec![Some(429), Some(503), Some(503), Some(200)]);
    assert_eq!(received.bodies().len(), 4);
}

#[tokio::test]
async fn gone_disables_the_endpoint_until_it_is_enabled_again() {
    let h = harness(NOW).await;
    let (url, received) = receiver(&[410]).await;
    let (ops_url, ops_received) = receiver(&[]).await;
    h.endpoint(&url, &["contract.create"]).await;
    h.endpoint(&ops_url, &["webhook_endpoint.disabled"]).await;
    let delivery = create_and_send(&h, 1).await;
    assert_eq!(delivery.status.as_str(), "failed", "410 is not retried");
    assert!(delivery.reason.as_deref().unwrap().contains("410"));
    let endpoint_id = delivery.endpoint_id.clone().unwrap();
    let endpoint = h.service.endpoint(&endpoint_id).await.unwrap();
    assert!(!endpoint.enabled);
    assert!(endpoint.disabled_reason.as_deref().unwrap().contains("410"));
    h.run_due().await;
    let notices = ops_received.bodies();
    assert_eq!(notices.len(), 1, "the other endpoint hears of it");
    assert_eq!(notices[0]["type"], json!("webhook_endpoint.disabled"));
    assert_eq!(notices[0]["data"]["endpoint_id"], json!(endpoint_id));

    let next = h.contract("wr_2", "create", "k_2", None, NOW).await;
    assert_eq!(next, json!("accepted"));
    h.run_due().await;
    assert_eq!(
        received.bodies().len(),
        1,
        "a disabled endpoint gets nothing"
    );

    let enabled = h
        .service
        .update_endpoint(&endpoint_id, &json!({"enabled": true}))
        .await
        .unwrap();
    assert!(
        enabled.enabled && enabled.disabled_reason.is_none() && enabled.failing_since.is_none()
    );
}

#[tokio::test]
async fn timeouts_are_failures_that_wait_a_minute() {
    let sender = HttpSender::with(
        DestinationPolicy::default(),
        std::time::Duration::from_millis(200),
    );
    let h = harness_with(NOW, Config::default(), sender).await;
    let (url, _) = receiver_with(vec![Answer {
        status: 200,
        headers: vec![],
        delay_ms: 1_000,
        body: String::new(),
    }])
    .await;
    h.endpoint(&url, &["contract.create"]).await;
    let delivery = create_and_send(&h, 1).await;
    let (delivery, attempts) = h.service.delivery(&delivery.id).await.unwrap();
    assert_eq!(delivery.status.as_str(), "pending");
    assert_eq!(attempts[0].status_code, None);
    assert!(
        attempts[0].error.as_deref().unwrap().contains("no answer"),
        "{:?}",
        attempts[0].error
    );
    assert!(wait_of(&h, &delivery) >= Duration::seconds(60));
}

#[tokio::test]
async fn redirects_are_failures_and_are_not_followed() {
    let h = harness(NOW).await;
    let (elsewhere, elsewhere_received) = receiver(&[]).await;
    let (url, _) = receiver_with(vec![Answer {
        status: 302,
        headers: vec![("location", elsewhere)],
        delay_ms: 0,
        body: String::new(),
    }])
    .await;
    h.endpoint(&url, &["contract.create"]).await;
    let delivery = create_and_send(&h, 1).await;
    let (delivery, attempts) = h.service.delivery(&delivery.id).await.unwrap();
    assert_eq!(
        (delivery.status.as_str(), attempts[0].status_code),
        ("pending", Some(302))
    );
    assert!(elsewhere_received.bodies().is_empty());
}

#[tokio::test]
async fn recover_resends_each_failed_delivery_since_a_time_once() {
    let config = Config {
        retry: RetryPolicy {
            delays: vec![],
            jitter: 0.0,
        },
        ..Config::default()
    };
    let h = harness_with(NOW, config, HttpSender::new()).await;
    let (url, received) = receiver(&[500, 500, 500]).await;
    h.endpoint(&url, &["contract.create"]).await;
    let old = create_and_send(&h, 1).await;
    h.clock.advance(Duration::hours(1));
    let newer = [create_and_send(&h, 2).await, create_and_send(&h, 3).await];
    assert!(newer
        .iter()
        .chain([&old])
        .all(|d| d.status.as_str() == "failed"));

    let endpoint_id = old.endpoint_id.clone().unwrap();
    let resent = h
        .service
        .recover_endpoint(&endpoint_id, h.clock.now() - Duration::minutes(30))
        .await
        .unwrap();
    assert_eq!(resent, 2);
    h.run_due().await;
    for delivery in &newer {
        let (delivery, attempts) = h.service.delivery(&delivery.id).await.unwrap();
        assert_eq!((delivery.status.as_str(), attempts.len()), ("delivered", 2));
    }
    assert_eq!(
        reload(&h, &old).await.status.as_str(),
        "failed",
        "before `since`: left alone"
    );
    let ids: Vec<_> = received
        .bodies()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 5);
    assert_eq!(
        ids[3..]
            .iter()
            .filter(|id| **id == newer[0].webhook_id)
            .count(),
        1,
        "same webhook id when resent"
    );
}

#[tokio::test]
async fn an_endpoint_failing_for_the_whole_window_is_disabled() {
    let config = Config {
        disable_after: Duration::hours(1),
        retry: RetryPolicy {
            delays: vec![],
            jitter: 0.0,
        },
        ..Config::default()
    };
    let h = harness_with(NOW, config, HttpSender::new()).await;
    let (url, _) = receiver(&[500, 500, 200, 500, 500, 500]).await;
    let endpoint_id = {
        h.endpoint(&url, &["contract.create"]).await;
        h.service.list_endpoints().await.unwrap()[0].id.clone()
    };
    create_and_send(&h, 1).await;
    h.clock.advance(Duration::minutes(50));
    create_and_send(&h, 2).await;
    assert_eq!(
        h.service
            .endpoint(&endpoint_id)
            .await
            .unwrap()
            .failing_since,
        Some(t(NOW))
    );
    h.clock.advance(Duration::minutes(20));
    create_and_send(&h, 3).await;
    assert_eq!(
        h.service
            .endpoint(&endpoint_id)
            .await
            .unwrap()
            .failing_since,
        None,
        "a success closes the failure window"
    );

    create_and_send(&h, 4).await;
    h.clock.advance(Duration::minutes(59));
    create_and_send(&h, 5).await;
    assert!(
        h.service.endpoint(&endpoint_id).await.unwrap().enabled,
        "59 minutes of failures is inside the window"
    );
    h.clock.advance(Duration::minutes(1));
    create_and_send(&h, 6).await;
    let endpoint = h.service.endpoint(&endpoint_id).await.unwrap();
    assert!(!endpoint.enabled);
    assert!(endpoint
        .disabled_reason
        .unwrap()
        .contains("every attempt failed since"));
}

/// A contract.end schedule of a -P1D notification, then `race` changes the
/// store behind the planner's back (as a concurrent writer could), then the
/// schedule comes due: it must be skipped with `reason`.
async fn skipped_when(race: impl AsyncFnOnce(&Harness, &str), reason: &str) {
    let h = harness(NOW).await;
    let (url, received) = receiver(&[]).await;
    h.endpoint(&url, &["contract.end"]).await;
    let n = h
        .service
        .create_notification(&json!({"event_type": "contract.end", "offset": "-P1D"}))
        .await
        .unwrap();
    h.contract("wr_1", "create", "k_1", Some("2026-12-10T00:00:00Z"), NOW)
        .await;
    let schedule = h.of_notification("c_1", &n.id).await.remove(0);
    race(&h, &n.id).await;
    h.clock.set(schedule.fire_at);
    h.service.run_timer(&schedule.id).await.unwrap();
    let skipped = h
        .service
        .store
        .schedule(&schedule.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (skipped.state.as_str(), skipped.reason.as_deref()),
        ("skipped", Some(reason))
    );
    let filter = DeliveryFilter {
        status: lifecycle_core::schedule::DeliveryStatus::parse("skipped"),
        ..Default::default()
    };
    let deliveries = h.service.deliveries(&filter, None, 50).await.unwrap().data;
    assert!(deliveries
        .iter()
        .any(|(d, _)| d.schedule_id == schedule.id && d.reason.as_deref() == Some(reason)));
    assert!(received
        .bodies()
        .iter()
        .all(|b| b["data"]["notification_id"] != json!(n.id)));
}

async fn write_behind_the_planner(h: &Harness, edit: impl FnOnce(&mut EntityRecord)) {
    let key = lifecycle_core::entity::EntityKey {
        kind: EntityKind::Contract,
        id: "k_1".into(),
    };
    let mut record = h.store.entity(&key).await.unwrap().unwrap();
    let version = record.version;
    edit(&mut record);
    record.version += 1;
    let commit = WriteCommit {
        records: vec![(record, Some(version))],
        ..WriteCommit::default()
    };
    h.store.commit_writes(&commit).await.unwrap();
}

#[tokio::test]
async fn stale_schedules_are_skipped_with_their_reason() {
    skipped_when(
        async |h: &Harness, id: &str| {
            let mut n = h.store.notification(id).await.unwrap().unwrap();
            n.enabled = false;
            h.store.put_notification(&n).await.unwrap();
        },
        "notification disabled",
    )
    .await;
    skipped_when(
        async |h: &Harness, id: &str| h.store.delete_notification(id).await.unwrap(),
        "notification deleted",
    )
    .await;
    skipped_when(
        async |h: &Harness, _: &str| {
            write_behind_the_planner(h, |r| r.archived_at = Some(t(NOW))).await
        },
        "entity archived",
    )
    .await;
    skipped_when(
        async |h: &Harness, _: &str| {
            write_behind_the_planner(h, |r| {
                if let Entity::Contract(c) = &mut r.entity {
                    c.ending_before = Some(t("2026-12-20T00:00:00Z"));
                }
            })
            .await
        },
        "moment moved or removed",
    )
    .await;
}

#[tokio::test]
async fn internal_destinations_are_refused_unless_allow_listed() {
    let blocking = DestinationPolicy {
        block_internal: true,
        allow: vec![],
    };
    let h = harness_with(
        NOW,
        Config::default(),
        HttpSender::with(blocking, std::time::Duration::from_secs(5)),
    )
    .await;
    let (url, received) = receiver(&[]).await;
    h.endpoint(&url, &["contract.create"]).await;
    h.endpoint(&url.replace("127.0.0.1", "localhost"), &["contract.create"])
        .await;
    h.contract("wr_1", "create", "k_1", None, NOW).await;
    h.run_due().await;
    let all = h
        .service
        .deliveries(&DeliveryFilter::default(), None, 50)
        .await
        .unwrap()
        .data;
    let attempts: Vec<_> = all.iter().flat_map(|(_, a)| a.clone()).collect();
    assert_eq!(attempts.len(), 2);
    assert!(
        attempts.iter().all(|a| a
            .error
            .as_deref()
            .unwrap_or("")
            .contains("internal address")),
        "{attempts:?}"
    );
    assert!(received.bodies().is_empty());

    let allowing = DestinationPolicy {
        block_internal: true,
        allow: vec![Network::parse("127.0.0.0/8").unwrap()],
    };
    let h = harness_with(
        NOW,
        Config::default(),
        HttpSender::with(allowing, std::time::Duration::from_secs(5)),
    )
    .await;
    h.endpoint(&url, &["contract.create"]).await;
    let delivery = create_and_send(&h, 1).await;
    assert_eq!(delivery.status.as_str(), "delivered");
}

#[tokio::test]
async fn the_attempt_log_keeps_4_kib_of_the_answer_and_filters_by_endpoint_and_time() {
    let h = harness(NOW).await;
    let long = Answer {
        status: 500,
        body: "x".repeat(10_000),
        ..Answer::default()
    };
    let (url, _) = receiver_with(vec![long]).await;
    let (other_url, _) = receiver(&[]).await;
    h.endpoint(&url, &["contract.create"]).await;
    h.endpoint(&other_url, &["contract.create"]).await;
    let delivery = create_and_send(&h, 1).await;
    assert!(delivery.endpoint_id.is_some());
    let endpoints = h.service.list_endpoints().await.unwrap();
    let failing = endpoints.iter().find(|e| e.url == url).unwrap().id.clone();

    let of = |endpoint: &str, since: Option<&str>, until: Option<&str>| DeliveryFilter {
        endpoint_id: Some(endpoint.to_string()),
        since: since.map(t),
        until: until.map(t),
        ..Default::default()
    };
    let page = h
        .service
        .deliveries(&of(&failing, None, None), None, 50)
        .await
        .unwrap()
        .data;
    assert_eq!(page.len(), 1);
    assert_eq!(
        page[0].1[0].response.as_ref().unwrap().len(),
        4096,
        "the first 4 KiB of a 10 kB answer"
    );
    assert_eq!(page[0].1[0].status_code, Some(500));
    assert!(page[0].1[0].latency_ms < 5_000);
    let later = h
        .service
        .deliveries(&of(&failing, Some("2026-11-25T00:00:01Z"), None), None, 50)
        .await
        .unwrap();
    assert!(later.data.is_empty(), "nothing since a second later");
    let earlier = h
        .service
        .deliveries(&of(&failing, None, Some("2026-11-24T23:59:59Z")), None, 50)
        .await
        .unwrap();
    assert!(earlier.data.is_empty(), "nothing until a second before");
}

#[tokio::test]
async fn deleting_an_endpoint_fails_what_was_pending_for_it() {
    let h = harness(NOW).await;
    let (url, _) = receiver(&[500]).await;
    h.endpoint(&url, &["contract.create"]).await;
    let delivery = create_and_send(&h, 1).await;
    assert_eq!(delivery.status.as_str(), "pending", "a retry is waiting");
    h.service
        .delete_endpoint(delivery.endpoint_id.as_deref().unwrap())
        .await
        .unwrap();
    let delivery = reload(&h, &delivery).await;
    assert_eq!(
        (delivery.status.as_str(), delivery.reason.as_deref()),
        ("failed", Some("endpoint deleted"))
    );
    assert_eq!(delivery.next_attempt_at, None);
}
