//! Bad input gets the contract's status and error body, changes nothing, and
//! the next valid request still works.

use lifecycle_e2e::{Lifecycle, Options, Receiver};
use serde_json::{json, Value};

/// A valid contract.create for customer c_1, starting in the future (so an
/// applied one would show up in c_1's upcoming view).
fn contract(event_id: &str, id: &str) -> Value {
    json!({"id": event_id, "type": "contract.create", "occurred_at": "2026-11-20T10:00:00Z",
           "data": {"id": id, "customer_id": "c_1", "starting_at": "2027-12-01T00:00:00Z", "ending_before": "2028-12-01T00:00:00Z"}})
}

/// `value` with the member at `pointer` replaced (or removed with `None`).
fn with(mut value: Value, pointer: &str, replacement: Option<Value>) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let object = value.pointer_mut(parent).unwrap().as_object_mut().unwrap();
    match replacement {
        Some(v) => object.insert(key.to_string(), v),
        None => object.remove(key),
    };
    value
}

struct Checker<'a> {
    app: &'a Lifecycle,
    probes: usize,
}

impl Checker<'_> {
    /// The refusal, then proof that nothing changed and a valid write still works.
    async fn refused(
        &mut self,
        what: &str,
        (status, body): (u16, Value),
        expected: u16,
        field: Option<&str>,
    ) {
        assert_eq!(status, expected, "{what}: {body}");
        let error = &body["error"];
        assert!(
            error["code"].as_str().is_some_and(|c| !c.is_empty())
                && error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: the error body has code and message: {body}"
        );
        if let Some(field) = field {
            assert_eq!(error["field"], json!(field), "{what}: {body}");
        }
        let upcoming = self.app.upcoming("c_1").await;
        assert!(
            upcoming.is_empty(),
            "{what}: a refused request changes nothing, yet c_1 has {upcoming:?}"
        );
        self.probes += 1;
        let probe = json!({"id": format!("wr_probe_{}", self.probes), "type": "contract.create", "occurred_at": "2026-11-20T10:00:00Z",
                           "data": {"id": format!("k_probe_{}", self.probes), "customer_id": "c_ok", "starting_at": "2026-01-01T00:00:00Z"}});
        assert_eq!(
            self.app.events(&probe).await,
            ["accepted"],
            "after {what}, a valid write still succeeds"
        );
    }
}

#[tokio::test]
async fn every_kind_of_bad_input_is_refused_clearly() {
    let app = Lifecycle::start(Options::default()).await;
    let mut check = Checker {
        app: &app,
        probes: 0,
    };
    let good = contract("wr_good", "k_good");
    let key = Some(app.key.as_str());

    check
        .refused(
            "malformed JSON",
            app.post_raw("/v1/events", "{\"id\": ", key).await,
            400,
            None,
        )
        .await;
    check
        .refused(
            "JSON that is not an object",
            app.post_raw("/v1/events", "[1, 2]", key).await,
            400,
            None,
        )
        .await;

    let unknown = with(good.clone(), "/type", Some(json!("contract.delete")));
    check
        .refused(
            "unknown type",
            app.post("/v1/events", &unknown).await,
            422,
            Some("type"),
        )
        .await;
    let missing = with(good.clone(), "/data/customer_id", None);
    check
        .refused(
            "missing customer_id",
            app.post("/v1/events", &missing).await,
            422,
            Some("data.customer_id"),
        )
        .await;
    let missing = with(good.clone(), "/data/starting_at", None);
    check
        .refused(
            "missing starting_at",
            app.post("/v1/events", &missing).await,
            422,
            Some("data.starting_at"),
        )
        .await;
    let wrong = with(good.clone(), "/data/starting_at", Some(json!(20271201)));
    check
        .refused(
            "a number for a time",
            app.post("/v1/events", &wrong).await,
            422,
            Some("data.starting_at"),
        )
        .await;
    let wrong = with(good.clone(), "/data/customer_id", Some(json!(42)));
    check
        .refused(
            "a number for a string",
            app.post("/v1/events", &wrong).await,
            422,
            Some("data.customer_id"),
        )
        .await;
    for end in [
        "2027-11-01T00:00:00Z",
        "2027-12-01T00:00:00Z",
        "2027-12-01T01:00:00+01:00",
    ] {
        let backwards = with(good.clone(), "/data/ending_before", Some(json!(end)));
        let what = format!("ending_before {end} <= starting_at");
        check
            .refused(
                &what,
                app.post("/v1/events", &backwards).await,
                422,
                Some("data.ending_before"),
            )
            .await;
    }

    let commit = |schedule: Value| {
        json!({"id": "wr_commit", "type": "commit.create", "occurred_at": "2026-11-20T10:00:00Z",
        "data": {"id": "m_1", "customer_id": "c_1", "type": "prepaid", "access_schedule": schedule}})
    };
    let segment = |id: &str, start: &str, end: &str, amount: Value| json!({"id": id, "starting_at": start, "ending_before": end, "amount": amount});
    let (s, e) = ("2027-12-01T00:00:00Z", "2028-12-01T00:00:00Z");
    let bad_commits = [
        (
            "a negative amount",
            json!([segment("s1", s, e, json!(-1))]),
            "data.access_schedule[0].amount",
        ),
        (
            "a text amount",
            json!([segment("s1", s, e, json!("ten"))]),
            "data.access_schedule[0].amount",
        ),
        (
            "a backwards segment",
            json!([segment("s1", s, e, json!(1)), segment("s2", e, s, json!(1))]),
            "data.access_schedule[1].ending_before",
        ),
        (
            "repeated segment ids",
            json!([segment("s1", s, e, json!(1)), segment("s1", s, e, json!(1))]),
            "data.access_schedule[1].id",
        ),
    ];
    for (what, schedule, field) in bad_commits {
        let answer = app.post("/v1/events", &commit(schedule)).await;
        let field_named = answer.1["error"]["field"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            field_named.starts_with("data.access_schedule"),
            "{what}: expected a field like {field}: {}",
            answer.1
        );
        check.refused(what, answer, 422, None).await;
    }
    let bad_type = with(commit(json!([])), "/data/type", Some(json!("prepaid-ish")));
    check
        .refused(
            "a commit type outside prepaid|postpaid",
            app.post("/v1/events", &bad_type).await,
            422,
            Some("data.type"),
        )
        .await;

    for offset in ["-P30X", "P11Y", "-P11Y", "-P3660D"] {
        let body = json!({"name": "bad", "event_type": "contract.end", "offset": offset});
        let what = format!("offset {offset}");
        check
            .refused(
                &what,
                app.post("/v1/notifications", &body).await,
                422,
                Some("offset"),
            )
            .await;
    }
    let (status, body) = app
        .post(
            "/v1/notifications",
            &json!({"name": "edge", "event_type": "contract.end", "offset": "-P10Y"}),
        )
        .await;
    assert_eq!(status, 201, "10 years is within range: {body}");

    let huge = with(
        good.clone(),
        "/data/name",
        Some(json!("x".repeat(1100 * 1024))),
    );
    check
        .refused(
            "a body over 1 MiB",
            app.post_raw("/v1/events", huge.to_string(), key).await,
            413,
            None,
        )
        .await;

    let big = json!({"id": "wr_big", "type": "contract.create", "occurred_at": "2026-11-20T10:00:00Z",
        "data": {"id": "k_big", "customer_id": "c_ok", "starting_at": "2026-01-01T00:00:00Z", "name": "x".repeat(1000 * 1024)}});
    assert_eq!(
        app.events(&big).await,
        ["accepted"],
        "a 1000 KiB body is within the 1 MiB limit"
    );

    let keyed = contract("wr_keyed", "k_keyed");
    check
        .refused(
            "a wrong API key",
            app.post_raw("/v1/events", keyed.to_string(), Some("wrong-key"))
                .await,
            401,
            None,
        )
        .await;
    check
        .refused(
            "no API key",
            app.post_raw("/v1/events", keyed.to_string(), None).await,
            401,
            None,
        )
        .await;
    let existing = json!({"id": "wr_again", "type": "contract.create", "occurred_at": "2026-11-20T10:00:00Z",
                          "data": {"id": "k_probe_1", "customer_id": "c_ok", "starting_at": "2026-01-01T00:00:00Z"}});
    check
        .refused(
            "a create of an existing contract",
            app.post("/v1/events", &existing).await,
            409,
            None,
        )
        .await;
    let (status, _) = app
        .post_raw(
            "/v1/webhook-endpoints",
            r#"{"url":"http://127.0.0.1:9/hook"}"#,
            None,
        )
        .await;
    assert_eq!(status, 401, "every /v1 route needs the key");
    let (status, _) = app.get("/healthz").await;
    assert_eq!(status, 200, "/healthz is open");

    let mut batch: Vec<Value> = (0..4)
        .map(|i| contract(&format!("wr_{i}"), &format!("k_{i}")))
        .collect();
    batch[2] = with(batch[2].clone(), "/data/starting_at", Some(json!("soon")));
    let answer = app.post("/v1/events", &json!({"events": batch})).await;
    check
        .refused(
            "a batch with a bad event at index 2",
            answer,
            422,
            Some("events[2].data.starting_at"),
        )
        .await;

    let too_many: Vec<Value> = (0..501)
        .map(|i| contract(&format!("wr_many_{i}"), &format!("k_many_{i}")))
        .collect();
    let answer = app.post("/v1/events", &json!({"events": too_many})).await;
    check
        .refused("a batch of 501 events", answer, 422, None)
        .await;

    // Nothing of the refused requests was applied: their ids are all new.
    assert_eq!(app.events(&good).await, ["accepted"]);
    assert_eq!(
        app.events(&keyed).await,
        ["accepted"],
        "the write sent with a bad key was not applied"
    );
    assert_eq!(
        app.events(&contract("wr_0", "k_0")).await,
        ["accepted"],
        "the refused batch applied nothing"
    );
    let contracts: Vec<_> = app
        .upcoming("c_1")
        .await
        .iter()
        .map(|s| s["contract_id"].clone())
        .collect();
    assert!(
        contracts.contains(&json!("k_0")) && contracts.contains(&json!("k_good")),
        "{contracts:?}"
    );
}

/// c_1's upcoming time-based schedules (the write-based ones pass through it
/// briefly while their webhook is sent).
async fn timed_upcoming(app: &Lifecycle) -> Vec<Value> {
    let write = |s: &Value| {
        ["create", "edit", "archive"]
            .iter()
            .any(|w| s["event_type"].as_str().unwrap_or_default().ends_with(w))
    };
    app.upcoming("c_1")
        .await
        .into_iter()
        .filter(|s| !write(s))
        .collect()
}

#[tokio::test]
async fn conflicts_are_409_and_change_nothing() {
    let app = Lifecycle::start(Options::default()).await;
    assert_eq!(app.events(&contract("wr_1", "k_1")).await, ["accepted"]);
    let before = timed_upcoming(&app).await;

    let again = contract("wr_2", "k_1");
    let edit_unknown = with(
        with(
            contract("wr_3", "k_nope"),
            "/type",
            Some(json!("contract.edit")),
        ),
        "/occurred_at",
        Some(json!("2026-11-21T00:00:00Z")),
    );
    let archive_unknown = json!({"id": "wr_4", "type": "contract.archive", "occurred_at": "2026-11-21T00:00:00Z", "data": {"id": "k_nope", "customer_id": "c_1"}});
    for (what, body) in [
        ("create of an existing id", again),
        ("edit of an unknown id", edit_unknown),
        ("archive of an unknown id", archive_unknown),
    ] {
        let (status, answer) = app.post("/v1/events", &body).await;
        assert_eq!(status, 409, "{what}: {answer}");
        assert!(
            answer["error"]["code"].is_string() && answer["error"]["message"].is_string(),
            "{what}: {answer}"
        );
    }
    assert_eq!(
        timed_upcoming(&app).await,
        before,
        "conflicts change nothing"
    );

    let archive = json!({"id": "wr_5", "type": "contract.archive", "occurred_at": "2026-11-22T00:00:00Z", "data": {"id": "k_1", "customer_id": "c_1"}});
    assert_eq!(app.events(&archive).await, ["accepted"]);
    let edit_archived = with(
        with(
            contract("wr_6", "k_1"),
            "/type",
            Some(json!("contract.edit")),
        ),
        "/occurred_at",
        Some(json!("2026-11-23T00:00:00Z")),
    );
    let (status, answer) = app.post("/v1/events", &edit_archived).await;
    assert_eq!(status, 409, "an edit of an archived contract: {answer}");
    assert_eq!(
        app.events(&archive).await,
        ["duplicate"],
        "a replay of the archive is not a conflict"
    );
}

#[tokio::test]
async fn endpoints_and_notifications_refuse_bad_fields() {
    let app = Lifecycle::start(Options::default()).await;
    let receiver = Receiver::start().await;
    let cases = [
        (
            "/v1/webhook-endpoints",
            json!({"url": "ftp://example.com"}),
            "url",
        ),
        (
            "/v1/webhook-endpoints",
            json!({"url": receiver.url(), "event_types": ["contract.finish"]}),
            "event_types[0]",
        ),
        (
            "/v1/notifications",
            json!({"name": "n", "event_type": "contract.created"}),
            "event_type",
        ),
        (
            "/v1/notifications",
            json!({"name": "n", "event_type": "contract.create", "offset": "-P1D"}),
            "offset",
        ),
        (
            "/v1/notifications",
            json!({"name": "n", "event_type": "contract.end", "catch_up": "soon"}),
            "catch_up",
        ),
        (
            "/v1/notifications",
            json!({"name": "n", "event_type": "contract.end", "filter": {"customer_ids": "c_1"}}),
            "filter.customer_ids",
        ),
    ];
    for (path, body, field) in cases {
        let (status, answer) = app.post(path, &body).await;
        assert_eq!(
            (status, &answer["error"]["field"]),
            (422, &json!(field)),
            "POST {path} {body}: {answer}"
        );
        assert!(
            answer["error"]["code"].is_string() && answer["error"]["message"].is_string(),
            "{answer}"
        );
    }
    let (status, list) = app.get("/v1/notifications?limit=500").await;
    let list = list["data"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        (status, list.len()),
        (200, 15),
        "only the 15 system notifications exist: {list:?}"
    );
    assert!(
        list.iter().all(|n| n["system"] == json!(true)
            && n["enabled"] == json!(true)
            && (n["offset"] == json!("PT0S") || n["offset"].is_null())),
        "all system, enabled, PT0S: {list:?}"
    );
    for path in [
        "/v1/notifications/ntf_nope",
        "/v1/deliveries/dlv_nope",
        "/v1/webhook-endpoints/ep_nope",
    ] {
        let (status, answer) = app.get(path).await;
        assert_eq!(status, 404, "GET {path}: {answer}");
        assert!(
            answer["error"]["code"].is_string() && answer["error"]["message"].is_string(),
            "GET {path}: {answer}"
        );
    }

    let system = list
        .iter()
        .find(|n| n["event_type"] == json!("contract.end"))
        .expect("a system contract.end");
    let path = format!("/v1/notifications/{}", system["id"].as_str().unwrap());
    let (status, answer) = app.delete(&path).await;
    assert_eq!(
        status, 409,
        "system notifications cannot be deleted: {answer}"
    );
    let (status, answer) = app.patch(&path, &json!({"offset": "-P1D"})).await;
    assert_eq!(
        status, 409,
        "system notifications cannot be edited: {answer}"
    );
    let (status, answer) = app.patch(&path, &json!({"enabled": false})).await;
    assert_eq!(
        (status, &answer["enabled"]),
        (200, &json!(false)),
        "but they can be disabled: {answer}"
    );
}

/// A bad `serve` flag stops the process before it touches the data folder.
#[test]
fn a_bad_serve_flag_is_refused_and_writes_nothing() {
    for (flag, value) in [
        ("--horizon", "0s"),
        ("--retry-delays", "soon"),
        ("--disable-endpoint-after", "soon"),
    ] {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        let output = std::process::Command::new(lifecycle_e2e::binary())
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(&data)
            .args([flag, value])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{flag} {value} was accepted");
        assert!(stderr.contains(flag), "{flag} {value}: {stderr}");
        assert!(!data.exists(), "{flag} {value} left a data folder");
    }
}

/// A data folder has one process: a second `serve` on it would send every
/// webhook twice, so it stops with an error that says so, and the first
/// goes on serving.
#[tokio::test]
async fn a_second_process_on_a_data_folder_is_refused() {
    let first = Lifecycle::start(Options::default()).await;
    let output = std::process::Command::new(lifecycle_e2e::binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(first.data_dir())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a second process started");
    assert!(stderr.contains("in use by another process"), "{stderr}");
    let (status, _) = first.get("/v1/notifications").await;
    assert_eq!(status, 200, "the first process still serves");
}
