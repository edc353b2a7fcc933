//! A failing receiver gets the same webhook again on the retry timetable
//! (`--retry-delays` shortens it), and the delivery log shows every attempt.

use lifecycle_e2e::{now, Lifecycle, Options, Receiver};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn create(event_id: &str, id: &str) -> Value {
    json!({"id": event_id, "type": "contract.create", "occurred_at": now(),
           "data": {"id": id, "customer_id": "c_1", "starting_at": "2026-01-01T00:00:00Z"}})
}

/// Polls the delivery of `contract.create` for c_1 until it reaches `status`.
async fn delivery_reaching(app: &Lifecycle, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let list = app
            .deliveries("customer_id=c_1&event_type=contract.create")
            .await;
        assert!(
            list.len() <= 1,
            "one delivery for one write and one endpoint: {list:?}"
        );
        if list.first().is_some_and(|d| d["status"] == json!(status)) || Instant::now() > deadline {
            assert_eq!(list.len(), 1, "the delivery is listed");
            assert_eq!(list[0]["status"], json!(status), "{}", list[0]);
            return list[0].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn status_codes(delivery: &Value) -> Vec<Value> {
    delivery["attempts"]
        .as_array()
        .unwrap_or_else(|| panic!("no attempts in {delivery}"))
        .iter()
        .map(|a| a["status_code"].clone())
        .collect()
}

#[tokio::test]
async fn two_failures_then_success_same_webhook_three_times() {
    let app = Lifecycle::start(Options::default().retry_delays("1s,1s")).await;
    let receiver = Receiver::answering(&[500, 500]).await;
    let (endpoint, secret) = app.endpoint(&receiver.url(), &["contract.create"]).await;
    assert_eq!(app.events(&create("wr_1", "k_1")).await, ["accepted"]);

    let got = receiver
        .expect(3, Duration::from_secs(6), "two retries")
        .await;
    let id = got[0].header("webhook-id");
    for (n, webhook) in got.iter().enumerate() {
        assert_eq!(
            webhook.header("webhook-id"),
            id,
            "attempt {} has the same id",
            n + 1
        );
        assert_eq!(
            webhook.raw,
            got[0].raw,
            "attempt {} has the same body",
            n + 1
        );
        assert!(webhook.verify(&secret), "attempt {} is signed", n + 1);
    }
    for pair in got.windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at).as_millis();
        assert!(
            (900..=2_500).contains(&gap),
            "retry {gap} ms after the previous attempt, expected about 1 s"
        );
    }
    let answered: Vec<u16> = got.iter().map(|w| w.status).collect();
    assert_eq!(answered, [500, 500, 200]);

    let delivery = delivery_reaching(&app, "delivered").await;
    assert_eq!(delivery["webhook_id"], json!(id), "{delivery}");
    assert_eq!(delivery["attempt_count"], json!(3), "{delivery}");
    assert_eq!(
        status_codes(&delivery),
        [json!(500), json!(500), json!(200)],
        "{delivery}"
    );
    for (n, attempt) in delivery["attempts"].as_array().unwrap().iter().enumerate() {
        assert_eq!(
            (&attempt["number"], &attempt["endpoint_id"]),
            (&json!(n + 1), &json!(endpoint)),
            "{attempt}"
        );
    }
    let path = format!("/v1/deliveries/{}", delivery["id"].as_str().unwrap());
    let (status, one) = app.get(&path).await;
    assert_eq!(
        (status, &one["status"], status_codes(&one)),
        (200, &json!("delivered"), status_codes(&delivery)),
        "{one}"
    );

    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(receiver.requests().len(), 3, "no attempt after the success");
}

#[tokio::test]
async fn a_receiver_that_always_fails_gets_n_plus_one_attempts_then_failed() {
    let app = Lifecycle::start(Options::default().retry_delays("500ms,500ms")).await;
    let receiver = Receiver::answering(&[500, 503, 500, 500, 500]).await;
    app.endpoint(&receiver.url(), &["contract.create"]).await;
    app.events(&create("wr_1", "k_1")).await;

    receiver
        .expect(3, Duration::from_secs(5), "three attempts")
        .await;
    let delivery = delivery_reaching(&app, "failed").await;
    assert_eq!(
        status_codes(&delivery),
        [json!(500), json!(503), json!(500)],
        "{delivery}"
    );
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(
        receiver.requests().len(),
        3,
        "two delays mean three attempts, no more"
    );
}
