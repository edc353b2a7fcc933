//! Webhook endpoints through the API: secret rotation, disable on 410 and
//! recovery after re-enabling, resend.

use lifecycle_e2e::{now, Lifecycle, Options, Receiver};
use serde_json::json;
use std::time::Duration;

fn create(event_id: &str, id: &str) -> serde_json::Value {
    json!({"id": event_id, "type": "contract.create", "occurred_at": now(),
           "data": {"id": id, "customer_id": "c_1", "starting_at": "2026-01-01T00:00:00Z"}})
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_new_one() {
    let app = Lifecycle::start(Options::default()).await;
    let receiver = Receiver::start().await;
    let (id, old) = app.endpoint(&receiver.url(), &["contract.create"]).await;
    let (status, rotated) = app
        .post(
            &format!("/v1/webhook-endpoints/{id}/rotate-secret"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let new = rotated["secret"].as_str().unwrap();
    assert_ne!(new, old);
    app.events(&create("wr_1", "k_1")).await;
    let got = receiver.wait_for(1, Duration::from_secs(3)).await;
    assert_eq!(got[0].header("webhook-signature").split(' ').count(), 2);
    assert!(
        got[0].verify(&old) && got[0].verify(new),
        "both secrets verify during the grace period"
    );
    let (_, listed) = app.get("/v1/webhook-endpoints").await;
    assert!(
        listed["data"][0].get("secret").is_none(),
        "secrets are shown once"
    );
}

#[tokio::test]
async fn gone_disables_and_re_enabling_offers_recovery() {
    let app = Lifecycle::start(Options::default()).await;
    let receiver = Receiver::answering(&[410]).await;
    let (id, _) = app.endpoint(&receiver.url(), &["contract.create"]).await;
    app.events(&create("wr_1", "k_1")).await;
    receiver.wait_for(1, Duration::from_secs(3)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, endpoint) = app.get(&format!("/v1/webhook-endpoints/{id}")).await;
    assert_eq!(endpoint["enabled"], json!(false));
    assert!(endpoint["disabled_reason"]
        .as_str()
        .unwrap()
        .contains("410"));

    let (status, enabled) = app
        .patch(
            &format!("/v1/webhook-endpoints/{id}"),
            &json!({"enabled": true}),
        )
        .await;
    assert_eq!((status, &enabled["enabled"]), (200, &json!(true)));
    let since = enabled["recovery"]["since"]
        .as_str()
        .expect("re-enabling offers recovery")
        .to_string();
    let (status, recovered) = app
        .post(
            &format!("/v1/webhook-endpoints/{id}/recover"),
            &json!({"since": since}),
        )
        .await;
    assert_eq!((status, &recovered["resent"]), (202, &json!(1)));
    let got = receiver.wait_for(2, Duration::from_secs(3)).await;
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[1].header("webhook-id"),
        got[0].header("webhook-id"),
        "recovered with the same id"
    );
    let (status, bad) = app
        .post(
            &format!("/v1/webhook-endpoints/{id}/recover"),
            &json!({"since": "yesterday"}),
        )
        .await;
    assert_eq!((status, &bad["error"]["field"]), (422, &json!("since")));
}

#[tokio::test]
async fn resend_sends_the_same_webhook_once_more() {
    let app = Lifecycle::start(Options::default()).await;
    let receiver = Receiver::start().await;
    app.endpoint(&receiver.url(), &["contract.create"]).await;
    app.events(&create("wr_1", "k_1")).await;
    receiver.wait_for(1, Duration::from_secs(3)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, list) = app
        .get("/v1/deliveries?customer_id=c_1&status=delivered")
        .await;
    let delivery = list["data"][0]["id"].as_str().unwrap().to_string();
    let (status, answer) = app
        .post(&format!("/v1/deliveries/{delivery}/resend"), &json!({}))
        .await;
    assert_eq!((status, &answer["status"]), (202, &json!("pending")));
    let got = receiver.wait_for(2, Duration::from_secs(3)).await;
    assert_eq!(got.len(), 2);
    assert_eq!(
        (got[1].header("webhook-id"), &got[1].raw),
        (got[0].header("webhook-id"), &got[0].raw)
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, one) = app.get(&format!("/v1/deliveries/{delivery}")).await;
    assert_eq!(
        (&one["status"], one["attempts"].as_array().unwrap().len()),
        (&json!("delivered"), 2)
    );
    let (status, _) = app.post("/v1/deliveries/dlv_nope/resend", &json!({})).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_test_event_goes_to_that_endpoint_alone_and_is_logged() {
    let app = Lifecycle::start(Options::default()).await;
    let receiver = Receiver::start().await;
    let other = Receiver::start().await;
    // Filtered to another type: a test event goes through anyway.
    let (id, secret) = app.endpoint(&receiver.url(), &["contract.end"]).await;
    app.endpoint(&other.url(), &[]).await;
    let (status, delivery) = app
        .post(&format!("/v1/webhook-endpoints/{id}/test"), &json!({}))
        .await;
    assert_eq!(status, 202, "{delivery}");
    assert_eq!(delivery["event_type"], json!("webhook_endpoint.test"));
    assert_eq!(delivery["endpoint_id"], json!(id));

    let got = receiver
        .expect(1, Duration::from_secs(3), "the test event")
        .await;
    assert!(got[0].verify(&secret));
    let body = &got[0].body;
    assert_eq!(body["type"], json!("webhook_endpoint.test"));
    assert_eq!(body["data"]["endpoint_id"], json!(id));
    assert_eq!(got[0].header("webhook-id"), delivery["webhook_id"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(other.requests().is_empty(), "only the endpoint under test");
    let logged = app
        .deliveries(&format!(
            "endpoint_id={id}&event_type=webhook_endpoint.test"
        ))
        .await;
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0]["status"], json!("delivered"));

    app.patch(
        &format!("/v1/webhook-endpoints/{id}"),
        &json!({"enabled": false}),
    )
    .await;
    let (status, refused) = app
        .post(&format!("/v1/webhook-endpoints/{id}/test"), &json!({}))
        .await;
    assert_eq!(status, 409, "{refused}");
    let (status, _) = app
        .post("/v1/webhook-endpoints/we_nope/test", &json!({}))
        .await;
    assert_eq!(status, 404);
}
