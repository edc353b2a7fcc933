//! Write-based webhooks arrive right after the write; edits move time-based
//! ones and archives cancel them.

use lifecycle_e2e::{
    in_ms, ms_between, now_utc, rfc3339, time_of, Lifecycle, Options, Receiver, SLACK_MS,
};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn contract(
    event_id: &str,
    action: &str,
    id: &str,
    end: Option<String>,
    occurred_at: String,
) -> Value {
    json!({"id": event_id, "type": format!("contract.{action}"), "occurred_at": occurred_at,
           "data": {"id": id, "customer_id": "c_1", "starting_at": "2026-01-01T00:00:00Z", "ending_before": end}})
}

fn archive(event_id: &str, id: &str, occurred_at: String) -> Value {
    json!({"id": event_id, "type": "contract.archive", "occurred_at": occurred_at, "data": {"id": id, "customer_id": "c_1"}})
}

async fn contract_ends(app: &Lifecycle) -> Vec<Value> {
    app.upcoming("c_1")
        .await
        .into_iter()
        .filter(|s| s["event_type"] == json!("contract.end"))
        .collect()
}

#[tokio::test]
async fn write_events_arrive_within_a_second_with_occurred_at() {
    let app = Lifecycle::start(Options::default()).await;
    let receiver = Receiver::start().await;
    let types = [
        "contract.create",
        "contract.edit",
        "contract.archive",
        "commit.create",
        "credit.create",
    ];
    let (_, secret) = app.endpoint(&receiver.url(), &types).await;

    let segment = json!([{"id": "s1", "starting_at": "2027-01-01T00:00:00Z", "ending_before": "2028-01-01T00:00:00Z", "amount": 10}]);
    let steps = [
        (
            contract("wr_1", "create", "k_1", None, in_ms(-3_000)),
            "contract",
            "k_1",
        ),
        (
            contract(
                "wr_2",
                "edit",
                "k_1",
                Some("2027-01-01T00:00:00Z".into()),
                in_ms(-2_000),
            ),
            "contract",
            "k_1",
        ),
        (archive("wr_3", "k_1", in_ms(-1_000)), "contract", "k_1"),
        (
            json!({"id": "wr_4", "type": "commit.create", "occurred_at": in_ms(-500),
                "data": {"id": "m_1", "customer_id": "c_1", "type": "postpaid", "access_schedule": segment}}),
            "commit",
            "m_1",
        ),
        (
            json!({"id": "wr_5", "type": "credit.create", "occurred_at": in_ms(-400),
                "data": {"id": "r_1", "customer_id": "c_1", "access_schedule": segment}}),
            "credit",
            "r_1",
        ),
    ];
    for (i, (step, entity, id)) in steps.iter().enumerate() {
        let kind = step["type"].as_str().unwrap();
        let sent = Instant::now();
        assert_eq!(app.events(step).await, ["accepted"], "{kind}");
        let got = receiver.expect(i + 1, Duration::from_secs(3), kind).await;
        let webhook = &got[i];
        let took = webhook.at.duration_since(sent).as_millis();
        assert!(took < 1_000, "{kind} arrived {took} ms after the write");
        assert!(webhook.verify(&secret), "{kind}: signature");
        assert_eq!(
            webhook.header("webhook-id"),
            webhook.body["id"].as_str().unwrap_or_default()
        );
        assert_eq!(webhook.body["type"], json!(kind));
        let data = &webhook.body["data"];
        assert_eq!(
            time_of(&data["occurred_at"]),
            time_of(&step["occurred_at"]),
            "{kind}: {data}"
        );
        assert_eq!(
            (&data["customer_id"], &data[*entity]["id"]),
            (&json!("c_1"), &json!(id)),
            "{kind}: {data}"
        );
    }
    let got = receiver.requests();
    assert_eq!(
        time_of(&got[1].body["data"]["contract"]["ending_before"]),
        time_of(&json!("2027-01-01T00:00:00Z")),
        "the edit carries the entity after the write"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        receiver.requests().len(),
        steps.len(),
        "one webhook per write"
    );
}

#[tokio::test]
async fn an_edit_that_moves_the_end_moves_the_webhook() {
    let app = Lifecycle::start(Options::default()).await;
    let receiver = Receiver::start().await;
    app.endpoint(&receiver.url(), &["contract.end"]).await;

    let old_end = now_utc() + chrono::Duration::milliseconds(2_000);
    let new_end = old_end + chrono::Duration::milliseconds(2_000);
    app.events(&contract(
        "wr_1",
        "create",
        "k_1",
        Some(rfc3339(old_end)),
        in_ms(-1_000),
    ))
    .await;
    let ends = contract_ends(&app).await;
    assert_eq!(ends.len(), 1, "{ends:?}");
    assert_eq!(time_of(&ends[0]["fire_at"]), old_end, "{ends:?}");
    let old_id = ends[0]["webhook_id"].clone();

    app.events(&contract(
        "wr_2",
        "edit",
        "k_1",
        Some(rfc3339(new_end)),
        rfc3339(now_utc()),
    ))
    .await;
    let ends = contract_ends(&app).await;
    assert_eq!(ends.len(), 1, "the old moment is gone: {ends:?}");
    assert_eq!(
        (
            time_of(&ends[0]["fire_at"]),
            time_of(&ends[0]["event_time"]),
            &ends[0]["contract_id"]
        ),
        (new_end, new_end, &json!("k_1")),
        "{ends:?}"
    );
    let new_id = ends[0]["webhook_id"].clone();

    let got = receiver
        .expect(1, Duration::from_secs(6), "the moved contract.end")
        .await;
    let id = json!(got[0].header("webhook-id"));
    assert_ne!(id, old_id, "a moved moment is a new webhook id");
    if !new_id.is_null() {
        assert_eq!(id, new_id, "the id the upcoming view announced");
    }
    let late = ms_between(new_end, got[0].wall);
    assert!(
        (0..=SLACK_MS).contains(&late),
        "arrived {late} ms after the new end (never at the old one)"
    );
    assert_eq!(time_of(&got[0].body["data"]["event_time"]), new_end);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.requests().len(), 1, "exactly one contract.end");
    assert!(
        contract_ends(&app).await.is_empty(),
        "nothing pending after it fired"
    );
}

#[tokio::test]
async fn an_archive_before_the_end_cancels_the_webhook() {
    let app = Lifecycle::start(Options::default()).await;
    let receiver = Receiver::start().await;
    app.endpoint(&receiver.url(), &["contract.end"]).await;

    let end = now_utc() + chrono::Duration::milliseconds(1_500);
    app.events(&contract(
        "wr_1",
        "create",
        "k_2",
        Some(rfc3339(end)),
        in_ms(-1_000),
    ))
    .await;
    assert_eq!(contract_ends(&app).await.len(), 1, "the end is scheduled");
    assert_eq!(
        app.events(&archive("wr_2", "k_2", rfc3339(now_utc())))
            .await,
        ["accepted"]
    );
    assert!(
        contract_ends(&app).await.is_empty(),
        "the archive cancels it at once"
    );

    let wait = (end - now_utc()).num_milliseconds().max(0) as u64 + 1_000;
    tokio::time::sleep(Duration::from_millis(wait)).await;
    assert!(
        receiver.requests().is_empty(),
        "no contract.end for an archived contract: {:?}",
        receiver
            .requests()
            .iter()
            .map(|w| w.describe())
            .collect::<Vec<_>>()
    );
    let pending: Vec<_> = app
        .upcoming("c_1")
        .await
        .into_iter()
        .filter(|s| s["status"] != json!("skipped"))
        .collect();
    assert!(pending.is_empty(), "nothing pending for c_1: {pending:?}");
}

#[tokio::test]
async fn times_with_any_offset_come_back_in_utc() {
    let app = Lifecycle::start(Options::default()).await;
    let receiver = Receiver::start().await;
    app.endpoint(&receiver.url(), &["contract.create"]).await;
    let write = json!({"id": "wr_1", "type": "contract.create", "occurred_at": "2026-11-20T12:00:00+02:00",
        "data": {"id": "k_1", "customer_id": "c_1", "starting_at": "2027-01-01T01:00:00+01:00", "ending_before": "2027-05-31T19:00:00-05:00"}});
    app.events(&write).await;

    let upcoming = app.upcoming("c_1").await;
    for (kind, utc) in [
        ("contract.start", "2027-01-01T00:00:00Z"),
        ("contract.end", "2027-06-01T00:00:00Z"),
    ] {
        let schedule = upcoming
            .iter()
            .find(|s| s["event_type"] == json!(kind))
            .unwrap_or_else(|| panic!("no {kind} in {upcoming:?}"));
        for field in ["event_time", "fire_at"] {
            let text = schedule[field].as_str().unwrap_or_default();
            assert!(
                text.ends_with('Z'),
                "{kind} {field} {text:?} is not UTC with Z"
            );
            assert_eq!(
                time_of(&schedule[field]),
                time_of(&json!(utc)),
                "{kind} {field}"
            );
        }
    }
    let kinds: Vec<_> = upcoming
        .iter()
        .map(|s| s["event_type"].clone())
        .filter(|t| t != "contract.create")
        .collect();
    assert_eq!(
        kinds,
        [json!("contract.start"), json!("contract.end")],
        "soonest first"
    );
    let (status, until) = app
        .get("/v1/customers/c_1/upcoming?until=2027-03-01T00:00:00Z")
        .await;
    let kinds: Vec<_> = until["data"]
        .as_array()
        .unwrap_or(&vec![])
        .iter()
        .map(|s| s["event_type"].clone())
        .filter(|t| t != "contract.create")
        .collect();
    assert_eq!(
        (status, kinds),
        (200, vec![json!("contract.start")]),
        "until cuts off later moments: {until}"
    );
    let (status, page) = app
        .get("/v1/customers/c_1/upcoming?until=2100-01-01T00:00:00Z&limit=1")
        .await;
    assert_eq!(
        (status, page["data"].as_array().map(Vec::len)),
        (200, Some(1)),
        "{page}"
    );
    let cursor = page["next_cursor"]
        .as_str()
        .unwrap_or_else(|| panic!("a next_cursor after a full page: {page}"));
    let (status, rest) = app
        .get(&format!(
            "/v1/customers/c_1/upcoming?until=2100-01-01T00:00:00Z&limit=500&cursor={cursor}"
        ))
        .await;
    let mut all: Vec<_> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["data"].as_array().unwrap_or(&vec![]))
        .cloned()
        .collect();
    all.retain(|s| s["event_type"] != "contract.create");
    assert_eq!(
        (status, all.len(), &rest["next_cursor"]),
        (200, 2, &json!(null)),
        "the cursor continues the list: {rest}"
    );

    let got = receiver
        .expect(1, Duration::from_secs(3), "contract.create")
        .await;
    let data = &got[0].body["data"];
    for (value, utc) in [
        (&data["occurred_at"], "2026-11-20T10:00:00Z"),
        (&data["contract"]["starting_at"], "2027-01-01T00:00:00Z"),
        (&data["contract"]["ending_before"], "2027-06-01T00:00:00Z"),
    ] {
        assert!(
            value.as_str().is_some_and(|t| t.ends_with('Z')),
            "{value} is not UTC with Z: {data}"
        );
        assert_eq!(time_of(value), time_of(&json!(utc)), "{data}");
    }
}
