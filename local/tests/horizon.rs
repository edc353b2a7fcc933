//! The horizon: with it the store keeps only the moments due within a day
//! as schedules, and everything a user sees (the upcoming view, page by
//! page, and the webhooks) is what a store keeping every moment shows.

mod common;

use common::*;
use lifecycle_core::ports::Store;
use lifecycle_core::schedule::ScheduleState;
use lifecycle_core::service::Config;
use lifecycle_local::sender::HttpSender;
use serde_json::{json, Value};

/// The same steps on two harnesses: one keeping every moment, one with a
/// 1-day horizon.
struct Twins {
    full: Harness,
    horizon: Harness,
}

impl Twins {
    async fn new(now: &str) -> Self {
        let with_horizon = Config {
            horizon: Some(chrono::Duration::days(1)),
            ..Config::default()
        };
        Twins {
            full: harness(now).await,
            horizon: harness_with(now, with_horizon, HttpSender::new()).await,
        }
    }

    async fn ingest(&self, body: Value) {
        for h in [&self.full, &self.horizon] {
            h.service.ingest(&body).await.unwrap();
        }
    }

    async fn set_clock(&self, now: &str) {
        for h in [&self.full, &self.horizon] {
            h.clock.set(t(now));
            while h.service.materialise(2).await.unwrap() > 0 {}
        }
    }

    /// Both upcoming views, read 3 at a time, must be the same (but for
    /// the ids of the notifications each created). Returns the horizon's.
    async fn same_view(&self, step: &str) -> Vec<(String, String)> {
        let full = paged(&self.full).await;
        let horizon = paged(&self.horizon).await;
        let moment = |(_, s): &(String, String)| s.clone();
        assert_eq!(
            full.iter().map(moment).collect::<Vec<_>>(),
            horizon.iter().map(moment).collect::<Vec<_>>(),
            "after {step}"
        );
        horizon
    }
}

/// Each row of the upcoming view, 3 to a page: its schedule id, and what
/// it is (fire time, event type, entity, segment, offset).
async fn paged(h: &Harness) -> Vec<(String, String)> {
    let (mut all, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let page = h
            .service
            .upcoming("c_1", ScheduleState::Pending, None, cursor.as_deref(), 3)
            .await
            .unwrap();
        assert!(page.data.len() <= 3);
        all.extend(page.data.iter().map(|s| {
            let segment = s.segment.as_ref().map_or("", |g| g.id.as_str());
            let what = format!(
                "{} {} {} {segment} {}",
                s.fire_at.to_rfc3339(),
                s.event_type.as_str(),
                s.entity.id,
                s.offset
            );
            (s.id.clone(), what)
        }));
        cursor = page.next_cursor;
        if cursor.is_none() {
            return all;
        }
    }
}

fn contract(event: &str, end: &str, occurred_at: &str) -> Value {
    json!({"id": event, "type": if event == "wr_1" { "contract.create" } else { "contract.edit" },
           "occurred_at": occurred_at,
           "data": {"id": "k_1", "customer_id": "c_1", "starting_at": "2026-11-25T12:00:00Z", "ending_before": end}})
}

fn commit() -> Value {
    let segments: Vec<Value> = (0..12)
        .map(|m| {
            let month = |k: u32| format!("{}-{:02}-01T00:00:00Z", 2026 + (10 + k) / 12, (10 + k) % 12 + 1);
            json!({"id": format!("s{m}"), "starting_at": month(m + 1), "ending_before": month(m + 2), "amount": 10})
        })
        .collect();
    json!({"id": "wm_1", "type": "commit.create", "occurred_at": "2026-11-25T00:00:00Z",
           "data": {"id": "m_1", "customer_id": "c_1", "type": "prepaid", "access_schedule": segments}})
}

#[tokio::test]
async fn the_upcoming_view_and_the_webhooks_are_those_of_a_store_keeping_every_moment() {
    let twins = Twins::new("2026-11-25T00:00:00Z").await;
    let (url, received) = receiver(&[]).await;
    twins
        .horizon
        .endpoint(&url, &["commit.segment.start"])
        .await;
    twins
        .ingest(contract(
            "wr_1",
            "2027-06-01T00:00:00Z",
            "2026-11-25T00:00:00Z",
        ))
        .await;
    twins.ingest(commit()).await;
    let view = twins.same_view("creating a contract and a commit").await;
    assert_eq!(view.len(), 2 + 24, "start, end, 12 segment starts and ends");
    let first_segment = &view
        .iter()
        .find(|(_, at)| at.starts_with("2026-12-01"))
        .unwrap()
        .0;
    let stored = twins.horizon.store.schedule(first_segment).await.unwrap();
    assert!(stored.is_none(), "a moment 6 days out is not stored");
    assert!(
        twins
            .full
            .store
            .schedule(first_segment)
            .await
            .unwrap()
            .is_some(),
        "the full store keeps it"
    );

    for h in [&twins.full, &twins.horizon] {
        h.service
            .create_notification(&json!({"event_type": "contract.end", "offset": "-P30D"}))
            .await
            .unwrap();
    }
    twins.same_view("a new notification's fan-out").await;
    twins
        .ingest(contract(
            "wr_2",
            "2027-03-01T00:00:00Z",
            "2026-11-25T01:00:00Z",
        ))
        .await;
    twins.same_view("moving the contract's end").await;
    for h in [&twins.full, &twins.horizon] {
        h.service
            .update_notification("ntf_system_commit_segment_end", &json!({"enabled": false}))
            .await
            .unwrap();
    }
    let view = twins.same_view("disabling segment ends").await;
    assert_eq!(view.len(), 2 + 12 + 1);

    twins.set_clock("2026-11-30T06:00:00Z").await;
    twins
        .same_view("the first segment coming within the horizon")
        .await;
    let stored = twins.horizon.store.schedule(first_segment).await.unwrap();
    assert_eq!(
        stored.map(|s| s.state),
        Some(ScheduleState::Pending),
        "a moment within the horizon is a schedule"
    );
    twins.set_clock("2026-12-01T00:00:00Z").await;
    twins.horizon.run_due().await;
    let bodies = received.bodies();
    assert_eq!(bodies.len(), 1, "the segment start fired once: {bodies:?}");
    assert_eq!(bodies[0]["type"], json!("commit.segment.start"));
    assert_eq!(
        bodies[0]["id"],
        json!(lifecycle_core::ids::with_prefix(first_segment, "msg"))
    );
}

#[tokio::test]
async fn an_archive_clears_the_deferred_moments() {
    let twins = Twins::new("2026-11-25T00:00:00Z").await;
    twins.ingest(commit()).await;
    twins.same_view("a commit").await;
    twins
        .ingest(
            json!({"id": "wm_2", "type": "commit.archive", "occurred_at": "2026-11-25T01:00:00Z",
                       "data": {"id": "m_1", "customer_id": "c_1"}}),
        )
        .await;
    assert!(twins.same_view("archiving it").await.is_empty());
    twins.set_clock("2027-06-01T00:00:00Z").await;
    let deferred = twins
        .horizon
        .store
        .deferred_entities(t("2030-01-01T00:00:00Z"), 10)
        .await
        .unwrap();
    assert!(deferred.is_empty(), "nothing is left to plan: {deferred:?}");
}

/// A data folder from before the horizon (entities clustered by key, no
/// `deferred_at`) opens with its entities, which then take deferrals.
#[tokio::test]
async fn an_older_database_is_brought_up_to_date() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let key = lifecycle_core::entity::EntityKey {
        kind: lifecycle_core::entity::EntityKind::Contract,
        id: "k_1".into(),
    };
    let made = harness("2026-11-25T00:00:00Z").await;
    made.service
        .ingest(&contract(
            "wr_1",
            "2027-06-01T00:00:00Z",
            "2026-11-25T00:00:00Z",
        ))
        .await
        .unwrap();
    let record = serde_json::to_value(made.store.entity(&key).await.unwrap().unwrap()).unwrap();
    {
        let old = rusqlite::Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE entities (
                kind TEXT NOT NULL, id TEXT NOT NULL, customer_id TEXT NOT NULL, version INTEGER NOT NULL,
                record TEXT NOT NULL, PRIMARY KEY (kind, id)) WITHOUT ROWID;",
        )
        .unwrap();
        old.execute(
            "INSERT INTO entities VALUES ('contract', 'k_1', 'c_1', 1, ?1)",
            [record.to_string()],
        )
        .unwrap();
    }
    let store = lifecycle_local::sqlite::SqliteStore::open(&path).unwrap();
    let found = store
        .entity(&key)
        .await
        .unwrap()
        .expect("the entity survives");
    assert_eq!(serde_json::to_value(&found).unwrap(), record);
    let plan = lifecycle_core::planner::Plan {
        deferred: vec![lifecycle_core::horizon::Deferral {
            entity: key.clone(),
            earliest: Some(t("2027-06-01T00:00:00Z")),
            whole: true,
        }],
        ..Default::default()
    };
    store.apply_plan(&plan).await.unwrap();
    assert_eq!(
        store
            .deferred_entities(t("2027-06-01T00:00:00Z"), 10)
            .await
            .unwrap(),
        vec![key]
    );
    drop(store);
    let sql: String = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'entities'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!sql.contains("WITHOUT ROWID"), "{sql}");
}
