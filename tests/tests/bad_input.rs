//! Bad input gets the contract's status and error body, changes nothing,
//! and the next valid request still works.

use lifecycle_e2e::{Lifecycle, Receiver};
use serde_json::{json, Value};

fn contract(event_id: &str, id: &str) -> Value {
    json!({"id": event_id, "type": "contract.create", "occurred_at": "2026-11-25T10:00:00Z",
           "data": {"id": id, "customer_id": "c_1", "starting_at": "2026-12-01T00:00:00Z", "ending_before": "2027-12-01T00:00:00Z"}})
}

fn with(mut value: Value, pointer: &str, replacement: Option<Value>) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let object = value.pointer_mut(parent).unwrap().as_object_mut().unwrap();
    match replacement {
        Some(v) => object.insert(key.to_string(), v),
        None => object.remove(key),
    };
    value
}

async fn upcoming_count(app: &Lifecycle) -> usize {
    app.get("/v1/customers/c_1/upcoming?until=2030-01-01T00:00:00Z")
        .await
        .1["data"]
        .as_array()
        .unwrap()
        .len()
}

/// The refusal, then proof that nothing changed and the process still serves.
async fn refused(
    app: &Lifecycle,
    (status, body): (u16, Value),
    expected: u16,
    field: Option<&str>,
) {
    assert_eq!(status, expected, "{body}");
    assert!(
        body["error"]["code"].is_string() && body["error"]["message"].is_string(),
        "{body}"
    );
    if let Some(field) = field {
        assert_eq!(body["error"]["field"], json!(field), "{body}");
    }
    assert_eq!(
        upcoming_count(app).await,
        0,
        "a refused request changes nothing"
    );
    let (status, _) = app.get("/v1/notifications").await;
    assert_eq!(status, 200, "the process still serves");
}

#[tokio::test]
async fn every_kind_of_bad_input_is_refused_clearly() {
    let app = Lifecycle::start(&[]).await;
    let good = contract("wr_ok", "k_ok");

    refused(
        &app,
        app.post_raw("/v1/events", "{\"id\": ", Some(&app.key))
            .await,
        400,
        None,
    )
    .await;
    refused(
        &app,
        app.post_raw("/v1/events", "[1, 2]", Some(&app.key)).await,
        400,
        None,
    )
    .await;
    let unknown = with(good.clone(), "/type", Some(json!("contract.delete")));
    refused(
        &app,
        app.post("/v1/events", &unknown).await,
        422,
        Some("type"),
    )
    .await;
    let missing = with(good.clone(), "/data/customer_id", None);
    refused(
        &app,
        app.post("/v1/events", &missing).await,
        422,
        Some("data.customer_id"),
    )
    .await;
    let wrong_type = with(good.clone(), "/data/starting_at", Some(json!(20261201)));
    refused(
        &app,
        app.post("/v1/events", &wrong_type).await,
        422,
        Some("data.starting_at"),
    )
    .await;
    let backwards = with(
        good.clone(),
        "/data/ending_before",
        Some(json!("2026-11-01T00:00:00Z")),
    );
    refused(
        &app,
        app.post("/v1/events", &backwards).await,
        422,
        Some("data.ending_before"),
    )
    .await;
    let equal = with(
        good.clone(),
        "/data/ending_before",
        Some(json!("2026-12-01T00:00:00Z")),
    );
    refused(
        &app,
        app.post("/v1/events", &equal).await,
        422,
        Some("data.ending_before"),
    )
    .await;

    for offset in ["-P30X", "P11Y", "30D", "-PT1.5H"] {
        let body = json!({"event_type": "contract.end", "offset": offset});
        refused(
            &app,
            app.post("/v1/notifications", &body).await,
            422,
            Some("offset"),
        )
        .await;
    }
    let huge = json!({"id": "wr_big", "type": "contract.create", "occurred_at": "2026-11-25T10:00:00Z",
                      "data": {"id": "k_big", "customer_id": "c_1", "starting_at": "2026-12-01T00:00:00Z", "name": "x".repeat(300 * 1024)}});
    refused(&app, app.post("/v1/events", &huge).await, 413, None).await;
    refused(
        &app,
        app.post_raw("/v1/events", good.to_string(), Some("wrong-key"))
            .await,
        401,
        None,
    )
    .await;
    refused(
        &app,
        app.post_raw("/v1/events", good.to_string(), None).await,
        401,
        None,
    )
    .await;

    let mut batch: Vec<Value> = (0..4)
        .map(|i| contract(&format!("wr_{i}"), &format!("k_{i}")))
        .collect();
    batch[2] = with(batch[2].clone(), "/data/starting_at", Some(json!("soon")));
    refused(
        &app,
        app.post("/v1/events", &json!({"events": batch})).await,
        422,
        Some("events[2].data.starting_at"),
    )
    .await;

    assert_eq!(app.events(&good).await, ["accepted"]);
    let again = with(contract("wr_other", "k_ok"), "/id", Some(json!("wr_other")));
    let (status, body) = app.post("/v1/events", &again).await;
    assert_eq!(
        (status, &body["error"]["field"]),
        (409, &json!("data.id")),
        "{body}"
    );
    let first_of_refused_batch = contract("wr_0", "k_0");
    assert_eq!(
        app.events(&first_of_refused_batch).await,
        ["accepted"],
        "the refused batch applied nothing"
    );
}

#[tokio::test]
async fn endpoints_and_notifications_refuse_bad_fields() {
    let app = Lifecycle::start(&[]).await;
    let receiver = Receiver::start(&[]).await;
    let cases = [
        (
            "/v1/webhook-endpoints",
            json!({"url": "ftp://example.com"}),
            "url",
        ),
        (
            "/v1/webhook-endpoints",
            json!({"url": receiver.url, "event_types": ["contract.finish"]}),
            "event_types[0]",
        ),
        (
            "/v1/notifications",
            json!({"event_type": "contract.created"}),
            "event_type",
        ),
        (
            "/v1/notifications",
            json!({"event_type": "contract.create", "offset": "-P1D"}),
            "offset",
        ),
        (
            "/v1/notifications",
            json!({"event_type": "contract.end", "catch_up": "soon"}),
            "catch_up",
        ),
        (
            "/v1/notifications",
            json!({"event_type": "contract.end", "filter": {"customer_ids": "c_1"}}),
            "filter.customer_ids",
        ),
    ];
    for (path, body, field) in cases {
        let (status, answer) = app.post(path, &body).await;
        assert_eq!(
            (status, &answer["error"]["field"]),
            (422, &json!(field)),
            "{body}: {answer}"
        );
    }
    let (status, list) = app.get("/v1/notifications?limit=500").await;
    assert_eq!(
        (status, list["data"].as_array().unwrap().len()),
        (200, 15),
        "only the system notifications exist"
    );
    let (status, answer) = app.get("/v1/notifications?limit=0").await;
    assert_eq!((status, &answer["error"]["field"]), (422, &json!("limit")));
    let (status, _) = app.get("/v1/notifications/ntf_nope").await;
    assert_eq!(status, 404);
    let (status, _) = app
        .send(
            reqwest::Method::DELETE,
            "/v1/notifications/ntf_system_contract_end",
            None,
        )
        .await;
    assert_eq!(status, 409, "system notifications cannot be deleted");
    let (status, body) = app
        .patch(
            "/v1/notifications/ntf_system_contract_end",
            &json!({"offset": "-P1D"}),
        )
        .await;
    assert_eq!((status, &body["error"]["field"]), (409, &json!("offset")));
}
