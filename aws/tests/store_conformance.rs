//! The Store port's behaviour, written once and run against both
//! implementations: the SQLite store of the local runtime (the reference)
//! and `DynamoStore` on a real moto server. Each test gets a fresh store.

mod common;

use lifecycle_core::endpoint::Endpoint;
use lifecycle_core::entity::{Entity, EntityKey, EntityKind, EntityRecord};
use lifecycle_core::event_type::EventType;
use lifecycle_core::horizon;
use lifecycle_core::notification::Notification;
use lifecycle_core::planner::{self, Plan};
use lifecycle_core::ports::{
    AttemptCommit, Balance, DeliveryFilter, FireCommit, Measure, Message, SignalChanges, Spend,
    Store, StoreError, WriteCommit,
};
use lifecycle_core::schedule::{
    Attempt, Delivery, DeliveryStatus, Schedule, ScheduleState, WriteInfo,
};
use lifecycle_core::threshold::AlertState;
use lifecycle_core::time::{parse_time, Time};
use serde_json::json;
use std::any::Any;
use std::sync::Arc;

type Guard = Box<dyn Any + Send>;

async fn sqlite() -> (Arc<dyn Store>, Guard) {
    let dir = tempfile::tempdir().unwrap();
    let store =
        lifecycle_local::sqlite::SqliteStore::open(&dir.path().join("lifecycle.db")).unwrap();
    (Arc::new(store), Box::new(dir))
}

async fn dynamo() -> (Arc<dyn Store>, Guard) {
    (Arc::new(common::dynamo_store().await), Box::new(()))
}

/// Each behaviour, once per implementation.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $name() {
                let (store, _guard) = super::sqlite().await;
                super::$name(store).await;
            })*
        }
        mod dynamodb {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() {
                let (store, _guard) = super::dynamo().await;
                super::$name(store).await;
            })*
        }
    };
}

conformance!(
    install_adds_missing_defaults_only,
    commit_writes_dedupes_events_and_checks_versions,
    entity_reads,
    notifications_and_endpoints_crud,
    plans_and_schedule_reads,
    deferrals_are_kept_found_and_listed,
    customer_schedules_page_by_fire_time,
    commit_fires_exactly_once,
    large_commits_beyond_one_transaction,
    claim_is_exclusive_under_a_lease,
    commit_attempt_records_attempts_in_order,
    a_slow_attempt_cannot_overwrite_the_next_claims_outcome,
    claims_and_attempts_in_batches,
    add_message_inserts_each_delivery_once,
    deliveries_filter_and_page_newest_first,
    signal_state_alerts_and_current_values,
    deliveries_of_a_write_commit_are_in_the_log,
    stats_add_up_by_minute,
);

fn t(text: &str) -> Time {
    parse_time(text).unwrap()
}

fn now() -> Time {
    t("2026-11-25T10:00:00Z")
}

fn contract(id: &str, customer: &str, start: &str, end: Option<&str>) -> EntityRecord {
    let entity = Entity::parse(
        EntityKind::Contract,
        &json!({"id": id, "customer_id": customer, "starting_at": start, "ending_before": end}),
    )
    .unwrap();
    EntityRecord {
        entity,
        version: 1,
        occurred_at: now(),
        archived_at: None,
    }
}

fn key(id: &str) -> EntityKey {
    EntityKey {
        kind: EntityKind::Contract,
        id: id.into(),
    }
}

fn notification(body: serde_json::Value) -> Notification {
    Notification::create(&body, now()).unwrap()
}

fn endpoint(url: &str) -> Endpoint {
    Endpoint::create(
        &json!({"url": url}),
        &lifecycle_core::endpoint::EndpointRules {
            allow_http: true,
            aws: None,
        },
        now(),
    )
    .unwrap()
}

/// The schedules the planner wants for a contract under these notifications.
fn plan_for(record: &EntityRecord, notifications: &[Notification], at: Time) -> Plan {
    planner::plan(record, notifications, &[], at)
}

fn delivery(n: usize, customer: &str, endpoint: &str, event_type: EventType) -> Delivery {
    let created = now() + chrono::Duration::seconds(n as i64);
    Delivery::direct(
        &format!("msg_{n:04}"),
        event_type,
        endpoint,
        customer,
        None,
        created,
    )
}

fn is_conflict<T: std::fmt::Debug>(result: Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::Conflict(_)))
}

async fn install_adds_missing_defaults_only(store: Arc<dyn Store>) {
    let defaults = Notification::system_defaults(now());
    assert_eq!(defaults.len(), 15);
    store.install(&defaults).await.unwrap();
    store.install(&defaults).await.unwrap();
    assert_eq!(store.notifications().await.unwrap().len(), 15);

    // A user's change to a default survives the next install.
    let mut disabled = defaults[0].clone();
    disabled.enabled = false;
    store.put_notification(&disabled).await.unwrap();
    store.install(&defaults).await.unwrap();
    let again = store.notification(&disabled.id).await.unwrap().unwrap();
    assert!(!again.enabled);
    assert_eq!(store.notifications().await.unwrap().len(), 15);
}

async fn commit_writes_dedupes_events_and_checks_versions(store: Arc<dyn Store>) {
    let k = contract(
        "k_1",
        "c_1",
        "2026-12-01T00:00:00Z",
        Some("2027-12-01T00:00:00Z"),
    );
    let create = WriteCommit {
        events: vec![("w_1".into(), "accepted")],
        records: vec![(k.clone(), None)],
        ..WriteCommit::default()
    };
    store.commit_writes(&create).await.unwrap();

    let state = store
        .write_state(&["w_1".into(), "w_2".into()], &[key("k_1"), key("k_9")])
        .await
        .unwrap();
    assert_eq!(state.seen_events.len(), 1);
    assert!(state.seen_events.contains("w_1"));
    assert_eq!(state.records.get(&key("k_1")), Some(&k));
    assert!(!state.records.contains_key(&key("k_9")));
    assert_eq!(state.schedules.get(&key("k_1")).map(Vec::len), Some(0));

    // The same event id again: refused, nothing written.
    assert!(is_conflict(store.commit_writes(&create).await));
    // A create of an entity that exists: refused.
    let recreate = WriteCommit {
        events: vec![("w_2".into(), "accepted")],
        records: vec![(k.clone(), None)],
        ..WriteCommit::default()
    };
    assert!(is_conflict(store.commit_writes(&recreate).await));
    let state = store.write_state(&["w_2".into()], &[]).await.unwrap();
    assert!(
        state.seen_events.is_empty(),
        "a refused batch leaves no trace"
    );

    // An edit of the expected version.
    let mut edited = k.clone();
    edited.version = 2;
    edited.occurred_at = t("2026-11-25T11:00:00Z");
    let edit = WriteCommit {
        events: vec![("w_3".into(), "accepted")],
        records: vec![(edited.clone(), Some(1))],
        ..WriteCommit::default()
    };
    store.commit_writes(&edit).await.unwrap();
    assert_eq!(
        store.entity(&key("k_1")).await.unwrap(),
        Some(edited.clone())
    );

    // A version that moved: refused, with the batch's other event not remembered.
    let mut late = k.clone();
    late.version = 2;
    let lost = WriteCommit {
        events: vec![("w_4".into(), "accepted")],
        records: vec![(late, Some(1))],
        ..WriteCommit::default()
    };
    assert!(is_conflict(store.commit_writes(&lost).await));
    let state = store.write_state(&["w_4".into()], &[]).await.unwrap();
    assert!(state.seen_events.is_empty());
    assert_eq!(store.entity(&key("k_1")).await.unwrap(), Some(edited));

    // A stale write is remembered without a record, and its replay is seen.
    let stale = WriteCommit {
        events: vec![("w_5".into(), "stale")],
        ..WriteCommit::default()
    };
    store.commit_writes(&stale).await.unwrap();
    let state = store
        .write_state(&["w_5".into(), "w_3".into()], &[])
        .await
        .unwrap();
    assert_eq!(state.seen_events.len(), 2);
    assert!(is_conflict(store.commit_writes(&stale).await));
}

async fn entity_reads(store: Arc<dyn Store>) {
    let records: Vec<EntityRecord> = (1..=5)
        .map(|i| contract(&format!("k_{i}"), "c_1", "2026-12-01T00:00:00Z", None))
        .collect();
    store
        .commit_writes(&WriteCommit {
            events: vec![("w_1".into(), "accepted")],
            records: records.iter().map(|r| (r.clone(), None)).collect(),
            ..WriteCommit::default()
        })
        .await
        .unwrap();
    assert_eq!(
        store.entity(&key("k_3")).await.unwrap(),
        Some(records[2].clone())
    );
    assert_eq!(store.entity(&key("k_9")).await.unwrap(), None);
    let commit_key = EntityKey {
        kind: EntityKind::Commit,
        id: "k_1".into(),
    };
    assert_eq!(
        store.entity(&commit_key).await.unwrap(),
        None,
        "keys are per kind"
    );

    let found = store
        .entities(&[key("k_4"), key("k_9"), key("k_2")])
        .await
        .unwrap();
    assert_eq!(found, vec![records[3].clone(), records[1].clone()]);

    let first = store
        .entities_after(EntityKind::Contract, None, 2)
        .await
        .unwrap();
    let ids: Vec<&str> = first.iter().map(|r| r.entity.id()).collect();
    assert_eq!(ids, ["k_1", "k_2"]);
    let next = store
        .entities_after(EntityKind::Contract, Some("k_2"), 10)
        .await
        .unwrap();
    let ids: Vec<&str> = next.iter().map(|r| r.entity.id()).collect();
    assert_eq!(ids, ["k_3", "k_4", "k_5"]);
    assert!(store
        .entities_after(EntityKind::Commit, None, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn notifications_and_endpoints_crud(store: Arc<dyn Store>) {
    let mut n =
        notification(json!({"event_type": "contract.end", "offset": "-P30D", "name": "Heads-up"}));
    store.put_notification(&n).await.unwrap();
    assert_eq!(store.notification(&n.id).await.unwrap(), Some(n.clone()));
    n.name = "Renamed".into();
    store.put_notification(&n).await.unwrap();
    assert_eq!(store.notifications().await.unwrap(), vec![n.clone()]);
    store.delete_notification(&n.id).await.unwrap();
    assert_eq!(store.notification(&n.id).await.unwrap(), None);
    assert!(store.notifications().await.unwrap().is_empty());
    store.delete_notification("ntf_missing").await.unwrap();

    let mut e = endpoint("http://127.0.0.1:9000/hook");
    store.put_endpoint(&e).await.unwrap();
    assert_eq!(store.endpoint(&e.id).await.unwrap(), Some(e.clone()));
    e.enabled = false;
    e.disabled_reason = Some("tested".into());
    store.put_endpoint(&e).await.unwrap();
    let other = endpoint("http://127.0.0.1:9001/hook");
    store.put_endpoint(&other).await.unwrap();
    let mut all = store.endpoints().await.unwrap();
    all.sort_by(|a, b| a.id.cmp(&b.id));
    let mut expected = vec![e.clone(), other.clone()];
    expected.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(all, expected);
    store.delete_endpoint(&e.id).await.unwrap();
    assert_eq!(store.endpoint(&e.id).await.unwrap(), None);
    assert_eq!(store.endpoints().await.unwrap(), vec![other]);
}

/// A contract with both moments under `contract.start`/`contract.end` notifications.
fn two_notifications() -> Vec<Notification> {
    vec![
        notification(json!({"event_type": "contract.start", "offset": "PT0S"})),
        notification(json!({"event_type": "contract.end", "offset": "-P1D"})),
    ]
}

async fn plans_and_schedule_reads(store: Arc<dyn Store>) {
    let notifications = two_notifications();
    let k1 = contract(
        "k_1",
        "c_1",
        "2026-12-01T00:00:00Z",
        Some("2027-01-01T00:00:00Z"),
    );
    let k2 = contract("k_2", "c_2", "2026-12-02T00:00:00Z", None);
    let mut plan = plan_for(&k1, &notifications, now());
    plan.extend(plan_for(&k2, &notifications, now()));
    assert_eq!(plan.schedules.len(), 3);
    // A write-based schedule of k_1, due now.
    let mut write = plan.schedules[0].clone();
    write.id = "sch_write".into();
    write.event_type = EventType::ContractCreate;
    write.write = Some(WriteInfo {
        event_id: "w_1".into(),
        occurred_at: now(),
        version: 1,
        snapshot: json!({}),
    });
    plan.schedules.push(write.clone());
    store
        .commit_writes(&WriteCommit {
            events: vec![("w_1".into(), "accepted")],
            records: vec![(k1.clone(), None), (k2.clone(), None)],
            plan: plan.clone(),
            ..WriteCommit::default()
        })
        .await
        .unwrap();

    // write_state: time-based schedules only, per entity.
    let state = store
        .write_state(&[], &[key("k_1"), key("k_2")])
        .await
        .unwrap();
    assert_eq!(state.schedules[&key("k_1")].len(), 2);
    assert_eq!(state.schedules[&key("k_2")].len(), 1);
    assert!(state
        .schedules
        .values()
        .flatten()
        .all(|s| s.write.is_none()));

    let start_id = &notifications[0].id;
    let of = store
        .schedules_of(start_id, &[key("k_1"), key("k_2"), key("k_9")])
        .await
        .unwrap();
    // Any state, write-based ones included.
    assert_eq!(of.len(), 3);
    assert!(of.iter().all(|s| s.notification_id == *start_id));
    assert_eq!(of.iter().filter(|s| s.entity == key("k_1")).count(), 2);

    let one = &plan.schedules[1];
    assert_eq!(store.schedule(&one.id).await.unwrap().as_ref(), Some(one));
    assert_eq!(
        store.schedule(&write.id).await.unwrap(),
        Some(write.clone())
    );
    assert_eq!(store.schedule("sch_missing").await.unwrap(), None);
    let ids: Vec<String> = plan
        .schedules
        .iter()
        .map(|s| s.id.clone())
        .chain(["sch_missing".into()])
        .collect();
    let mut many = store.schedules(&ids).await.unwrap();
    many.sort_by(|a, b| a.id.cmp(&b.id));
    let mut expected = plan.schedules.clone();
    expected.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(many, expected);

    // apply_plan moves one and cancels another: upserts by id.
    let mut moved = plan.schedules[0].clone();
    moved.fire_at = t("2026-12-01T06:00:00Z");
    let mut cancelled = plan.schedules[1].clone();
    cancelled.state = ScheduleState::Cancelled;
    cancelled.reason = Some("notification deleted".into());
    let skip = Delivery::skipped(&plan.schedules[2], "too late", now());
    store
        .apply_plan(&Plan {
            schedules: vec![moved.clone(), cancelled.clone()],
            timers: vec![],
            skipped: vec![skip.clone()],
            deferred: vec![],
        })
        .await
        .unwrap();
    assert_eq!(store.schedule(&moved.id).await.unwrap(), Some(moved));
    assert_eq!(
        store.schedule(&cancelled.id).await.unwrap(),
        Some(cancelled)
    );
    let (found, attempts) = store.delivery(&skip.id).await.unwrap().unwrap();
    assert_eq!(found, skip);
    assert!(attempts.is_empty());
    let state = store.write_state(&[], &[key("k_1")]).await.unwrap();
    assert_eq!(
        state.schedules[&key("k_1")].len(),
        2,
        "an upsert adds no schedule"
    );

    // One schedule twice in a plan: the last one stands; a skip twice: the first.
    let mut first = plan.schedules[2].clone();
    first.fire_at = t("2026-12-03T00:00:00Z");
    let mut last = first.clone();
    last.fire_at = t("2026-12-04T00:00:00Z");
    let mut skip_again = skip.clone();
    skip_again.reason = Some("second".into());
    store
        .apply_plan(&Plan {
            schedules: vec![first, last.clone()],
            timers: vec![],
            skipped: vec![skip_again],
            deferred: vec![],
        })
        .await
        .unwrap();
    assert_eq!(store.schedule(&last.id).await.unwrap(), Some(last));
    assert_eq!(store.delivery(&skip.id).await.unwrap().unwrap().0, skip);
}

/// Moments beyond the horizon (`lifecycle_core::horizon`): each entity's
/// earliest deferred one is kept with it, found by the sweep's query and
/// derived into the customer's upcoming view.
async fn deferrals_are_kept_found_and_listed(store: Arc<dyn Store>) {
    let notifications = two_notifications();
    for n in &notifications {
        store.put_notification(n).await.unwrap();
    }
    let records = [
        contract(
            "k_1",
            "c_1",
            "2026-12-01T00:00:00Z",
            Some("2027-01-01T00:00:00Z"),
        ),
        contract(
            "k_2",
            "c_1",
            "2026-12-02T00:00:00Z",
            Some("2027-06-01T00:00:00Z"),
        ),
        contract("k_3", "c_2", "2026-12-01T00:00:00Z", None),
    ];
    let edge = t("2026-12-02T10:00:00Z");
    let mut plan = Plan::default();
    for record in &records {
        plan.extend(horizon::plan_deferring(
            record,
            &notifications,
            &[],
            now(),
            edge,
            true,
        ));
    }
    assert_eq!(plan.schedules.len(), 3, "the three starts are stored");
    assert_eq!(plan.deferred.len(), 3, "planned whole, each entity says");
    store
        .commit_writes(&WriteCommit {
            events: vec![("w_1".into(), "accepted")],
            records: records.iter().map(|r| (r.clone(), None)).collect(),
            plan: plan.clone(),
            ..WriteCommit::default()
        })
        .await
        .unwrap();
    let deferred = |until: &str, limit: usize| {
        let store = store.clone();
        let until = t(until);
        async move { store.deferred_entities(until, limit).await.unwrap() }
    };
    // The ends fire a day before the contracts end (-P1D).
    assert_eq!(
        deferred("2027-12-31T00:00:00Z", 10).await,
        [key("k_1"), key("k_2")]
    );
    assert_eq!(deferred("2026-12-31T00:00:00Z", 10).await, [key("k_1")]);
    assert_eq!(deferred("2027-12-31T00:00:00Z", 1).await, [key("k_1")]);
    assert!(deferred("2026-12-30T23:59:59Z", 10).await.is_empty());

    // The upcoming view: the stored starts and the derived ends, by fire time.
    let full: Vec<Schedule> = (records.iter().take(2))
        .flat_map(|r| plan_for(r, &notifications, now()).schedules)
        .collect();
    let mut want: Vec<(Time, String)> = full.iter().map(|s| (s.fire_at, s.id.clone())).collect();
    want.sort();
    let listed = |page: &lifecycle_core::ports::Page<Schedule>| -> Vec<(Time, String)> {
        page.data
            .iter()
            .map(|s| (s.fire_at, s.id.clone()))
            .collect()
    };
    let pending = ScheduleState::Pending;
    let all = store
        .customer_schedules("c_1", pending, None, None, 10)
        .await
        .unwrap();
    assert_eq!(listed(&all), want);
    assert_eq!(all.next_cursor, None);
    let mut end = full.iter().find(|s| s.id == want[3].1).unwrap().clone();
    end.updated_at = all.data[3].updated_at;
    assert_eq!(all.data[3], end, "a derived moment is the planner's own");
    let first = store
        .customer_schedules("c_1", pending, None, None, 3)
        .await
        .unwrap();
    assert_eq!(listed(&first), want[..3]);
    let cursor = first.next_cursor.expect("one more");
    let rest = store
        .customer_schedules("c_1", pending, None, Some(&cursor), 3)
        .await
        .unwrap();
    assert_eq!(listed(&rest), want[3..]);
    assert_eq!(rest.next_cursor, None);
    let until = store
        .customer_schedules("c_1", pending, Some(t("2027-02-01T00:00:00Z")), None, 10)
        .await
        .unwrap();
    assert_eq!(listed(&until), want[..3]);
    let skipped = store
        .customer_schedules("c_1", ScheduleState::Skipped, None, None, 10)
        .await
        .unwrap();
    assert!(skipped.data.is_empty(), "deferred moments are pending ones");

    // One notification's fan-out only brings an entity's earliest sooner;
    // a plan under every notification replaces it, and None clears it.
    let defer = |entity: &str, earliest: Option<&str>, whole: bool| Plan {
        deferred: vec![horizon::Deferral {
            entity: key(entity),
            earliest: earliest.map(t),
            whole,
        }],
        ..Plan::default()
    };
    store
        .apply_plan(&defer("k_2", Some("2026-12-20T00:00:00Z"), false))
        .await
        .unwrap();
    assert_eq!(deferred("2026-12-25T00:00:00Z", 10).await, [key("k_2")]);
    store
        .apply_plan(&defer("k_2", Some("2027-09-01T00:00:00Z"), false))
        .await
        .unwrap();
    assert_eq!(deferred("2026-12-25T00:00:00Z", 10).await, [key("k_2")]);
    store
        .apply_plan(&defer("k_2", Some("2027-05-31T00:00:00Z"), true))
        .await
        .unwrap();
    assert!(deferred("2027-05-30T00:00:00Z", 10)
        .await
        .contains(&key("k_1")));
    assert!(!deferred("2027-05-30T00:00:00Z", 10)
        .await
        .contains(&key("k_2")));
    store.apply_plan(&defer("k_1", None, true)).await.unwrap();
    assert_eq!(deferred("2027-12-31T00:00:00Z", 10).await, [key("k_2")]);
    // A deferral of an entity never written writes nothing.
    store
        .apply_plan(&defer("k_9", Some("2026-12-20T00:00:00Z"), true))
        .await
        .unwrap();
    assert_eq!(store.entity(&key("k_9")).await.unwrap(), None);
    assert_eq!(deferred("2027-12-31T00:00:00Z", 10).await, [key("k_2")]);
}

/// Five pending schedules of customer c_1 an hour apart, one skipped, one of c_2.
async fn customer_schedules_page_by_fire_time(store: Arc<dyn Store>) {
    let base = plan_for(
        &contract("k_1", "c_1", "2026-12-01T00:00:00Z", None),
        &[notification(json!({"event_type": "contract.start"}))],
        now(),
    )
    .schedules[0]
        .clone();
    let mut schedules = Vec::new();
    for i in 0..5 {
        let mut s = base.clone();
        s.id = format!("sch_{i:02}");
        // Out of order by id, so that ordering by fire time shows.
        s.fire_at = t("2026-12-01T00:00:00Z") + chrono::Duration::hours(4 - i);
        schedules.push(s);
    }
    let mut skipped = base.clone();
    skipped.id = "sch_skipped".into();
    skipped.state = ScheduleState::Skipped;
    schedules.push(skipped.clone());
    let mut other = base.clone();
    other.id = "sch_other".into();
    other.customer_id = "c_2".into();
    schedules.push(other);
    let mut write = base.clone();
    write.id = "sch_write".into();
    write.write = Some(WriteInfo {
        event_id: "w".into(),
        occurred_at: now(),
        version: 1,
        snapshot: json!({}),
    });
    schedules.push(write);
    store
        .apply_plan(&Plan {
            schedules,
            ..Plan::default()
        })
        .await
        .unwrap();

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store
            .customer_schedules("c_1", ScheduleState::Pending, None, cursor.as_deref(), 2)
            .await
            .unwrap();
        pages += 1;
        assert!(page.data.len() <= 2);
        seen.extend(page.data.iter().map(|s| s.id.clone()));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["sch_04", "sch_03", "sch_02", "sch_01", "sch_00"]);

    let until = store
        .customer_schedules(
            "c_1",
            ScheduleState::Pending,
            Some(t("2026-12-01T01:00:00Z")),
            None,
            10,
        )
        .await
        .unwrap();
    let ids: Vec<&str> = until.data.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["sch_04", "sch_03"], "until is inclusive");
    assert_eq!(until.next_cursor, None);

    let exact = store
        .customer_schedules("c_1", ScheduleState::Pending, None, None, 5)
        .await
        .unwrap();
    assert_eq!(exact.data.len(), 5);
    assert_eq!(exact.next_cursor, None, "no cursor when nothing follows");

    let skipped_page = store
        .customer_schedules("c_1", ScheduleState::Skipped, None, None, 10)
        .await
        .unwrap();
    assert_eq!(skipped_page.data, vec![skipped]);
    assert!(store
        .customer_schedules("c_9", ScheduleState::Pending, None, None, 10)
        .await
        .unwrap()
        .data
        .is_empty());
    assert!(matches!(
        store
            .customer_schedules("c_1", ScheduleState::Pending, None, Some("garbage"), 2)
            .await,
        Err(StoreError::InvalidCursor)
    ));
}

fn fire_of(schedule: &Schedule, endpoints: &[&str], at: Time) -> FireCommit {
    let mut fired = schedule.clone();
    fired.state = ScheduleState::Fired;
    fired.updated_at = at;
    FireCommit {
        schedule: fired,
        expected_fire_at: schedule.fire_at,
        message: Some(Message {
            id: schedule.webhook_id(),
            body: format!("{{\"id\":\"{}\"}}", schedule.webhook_id()),
        }),
        deliveries: endpoints
            .iter()
            .map(|e| Delivery::to_endpoint(schedule, e, at))
            .collect(),
    }
}

async fn commit_fires_exactly_once(store: Arc<dyn Store>) {
    let k = contract(
        "k_1",
        "c_1",
        "2026-12-01T00:00:00Z",
        Some("2027-01-01T00:00:00Z"),
    );
    let plan = plan_for(&k, &two_notifications(), now());
    store.apply_plan(&plan).await.unwrap();
    let (a, b) = (&plan.schedules[0], &plan.schedules[1]);
    let at = a.fire_at;

    let fire = fire_of(a, &["ep_1", "ep_2"], at);
    assert_eq!(
        store
            .commit_fires(std::slice::from_ref(&fire))
            .await
            .unwrap(),
        [true]
    );
    assert_eq!(
        store.schedule(&a.id).await.unwrap().unwrap().state,
        ScheduleState::Fired
    );
    for d in &fire.deliveries {
        assert_eq!(store.delivery(&d.id).await.unwrap().unwrap().0, *d);
    }
    // The same fire again (a duplicate invocation): nothing more.
    let mut again = fire_of(a, &["ep_3"], at);
    again.schedule.reason = Some("second".into());
    assert_eq!(store.commit_fires(&[again.clone()]).await.unwrap(), [false]);
    assert!(store
        .delivery(&again.deliveries[0].id)
        .await
        .unwrap()
        .is_none());
    assert_eq!(store.schedule(&a.id).await.unwrap().unwrap().reason, None);
    // The customer's view by state follows the fire.
    let fired = store
        .customer_schedules("c_1", ScheduleState::Fired, None, None, 10)
        .await
        .unwrap();
    let ids: Vec<&str> = fired.data.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, [a.id.as_str()]);
    let pending = store
        .customer_schedules("c_1", ScheduleState::Pending, None, None, 10)
        .await
        .unwrap();
    assert!(pending.data.iter().all(|s| s.id != a.id));

    // A fire expecting another time (the schedule moved): refused; in a batch, the others commit.
    let mut wrong = fire_of(b, &["ep_1"], b.fire_at);
    wrong.expected_fire_at = b.fire_at + chrono::Duration::minutes(1);
    let right = fire_of(b, &["ep_2"], b.fire_at);
    assert_eq!(
        store
            .commit_fires(&[wrong.clone(), right.clone(), fire])
            .await
            .unwrap(),
        [false, true, false]
    );
    assert!(store
        .delivery(&wrong.deliveries[0].id)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .delivery(&right.deliveries[0].id)
        .await
        .unwrap()
        .is_some());
    // A claim of the fired delivery finds its message.
    let (claimed, message) = store
        .claim_delivery(
            &right.deliveries[0].id,
            b.fire_at,
            b.fire_at + chrono::Duration::seconds(45),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(message.id, b.webhook_id());
    assert_eq!(message.body, right.message.as_ref().unwrap().body);
    assert_eq!(
        claimed.next_attempt_at,
        Some(b.fire_at + chrono::Duration::seconds(45))
    );
}

/// Writes beyond one DynamoDB transaction (100 actions) behave like small ones.
/// DynamoDB fires in steps, not one transaction (`aws/src/dynamodb/fires.rs`):
/// a crash after the schedule is taken and before its deliveries are in
/// (here: one delivery removed behind the store's back) is completed by the
/// retried trigger, under the same ids, and only once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_fire_interrupted_after_its_schedule_completes_on_retry() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let dynamo = common::dynamo_store().await;
    let (client, table) = (dynamo.client().clone(), dynamo.table().to_string());
    let store: Arc<dyn Store> = Arc::new(dynamo);
    let k = contract("k_1", "c_1", "2026-12-01T00:00:00Z", None);
    let plan = plan_for(&k, &two_notifications(), now());
    store.apply_plan(&plan).await.unwrap();
    let a = &plan.schedules[0];
    let fire = fire_of(a, &["ep_1", "ep_2"], a.fire_at);
    assert_eq!(
        store
            .commit_fires(std::slice::from_ref(&fire))
            .await
            .unwrap(),
        [true]
    );
    let lost = &fire.deliveries[1];
    client
        .delete_item()
        .table_name(&table)
        .key(
            "pk",
            AttributeValue::S(lifecycle_aws::dynamodb::delivery_pk(&lost.id)),
        )
        .key(
            "sk",
            AttributeValue::S(lifecycle_aws::dynamodb::DELIVERY_SK.into()),
        )
        .send()
        .await
        .unwrap();
    assert!(store.delivery(&lost.id).await.unwrap().is_none());

    // The retry: the missing delivery is made again, the present one is left as it is.
    let mut retried = fire.clone();
    retried.deliveries[0].attempt_count = 7;
    assert_eq!(
        store
            .commit_fires(std::slice::from_ref(&retried))
            .await
            .unwrap(),
        [true]
    );
    assert_eq!(store.delivery(&lost.id).await.unwrap().unwrap().0, *lost);
    let kept = store
        .delivery(&fire.deliveries[0].id)
        .await
        .unwrap()
        .unwrap()
        .0;
    assert_eq!(kept, fire.deliveries[0]);
    let (_, message) = store
        .claim_delivery(
            &lost.id,
            a.fire_at,
            a.fire_at + chrono::Duration::minutes(1),
        )
        .await
        .unwrap()
        .expect("the remade delivery is due, with its message");
    assert_eq!(message.id, a.webhook_id());
    // Once complete, a further retry commits nothing.
    assert_eq!(
        store
            .commit_fires(std::slice::from_ref(&fire))
            .await
            .unwrap(),
        [false]
    );
    // A retry naming a delivery the first run did not make adds nothing.
    let other = fire_of(a, &["ep_3"], a.fire_at);
    assert_eq!(
        store
            .commit_fires(std::slice::from_ref(&other))
            .await
            .unwrap(),
        [false]
    );
    assert!(store
        .delivery(&other.deliveries[0].id)
        .await
        .unwrap()
        .is_none());
}

async fn large_commits_beyond_one_transaction(store: Arc<dyn Store>) {
    let base = plan_for(
        &contract("k_1", "c_1", "2026-12-01T00:00:00Z", None),
        &[notification(json!({"event_type": "contract.start"}))],
        now(),
    )
    .schedules[0]
        .clone();
    let schedules: Vec<Schedule> = (0..150)
        .map(|i| {
            let mut s = base.clone();
            s.id = format!("sch_{i:03}");
            s
        })
        .collect();
    let records: Vec<EntityRecord> = (0..60)
        .map(|i| contract(&format!("k_{i:02}"), "c_1", "2026-12-01T00:00:00Z", None))
        .collect();
    store
        .commit_writes(&WriteCommit {
            events: (0..60).map(|i| (format!("w_{i}"), "accepted")).collect(),
            records: records.iter().map(|r| (r.clone(), None)).collect(),
            plan: Plan {
                schedules: schedules.clone(),
                ..Plan::default()
            },
            ..WriteCommit::default()
        })
        .await
        .unwrap();
    let ids: Vec<String> = (0..60).map(|i| format!("w_{i}")).collect();
    assert_eq!(
        store
            .write_state(&ids, &[])
            .await
            .unwrap()
            .seen_events
            .len(),
        60
    );
    assert_eq!(
        store
            .entities_after(EntityKind::Contract, None, 100)
            .await
            .unwrap()
            .len(),
        60
    );
    let page = store
        .customer_schedules("c_1", ScheduleState::Pending, None, None, 200)
        .await
        .unwrap();
    assert_eq!(page.data.len(), 150);

    // A big commit whose entity version moved: refused, and none of its plan written.
    let mut moved_on = records[0].clone();
    moved_on.version = 6;
    let late_plan: Vec<Schedule> = (0..120)
        .map(|i| {
            let mut s = base.clone();
            s.id = format!("sch_late_{i:03}");
            s.entity = moved_on.key();
            s
        })
        .collect();
    let refused = store
        .commit_writes(&WriteCommit {
            events: vec![("w_late".into(), "accepted")],
            records: vec![(moved_on.clone(), Some(5))],
            plan: Plan {
                schedules: late_plan,
                ..Plan::default()
            },
            ..WriteCommit::default()
        })
        .await;
    assert!(is_conflict(refused));
    assert!(store
        .schedules(&["sch_late_000".into(), "sch_late_119".into()])
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .write_state(&["w_late".into()], &[])
        .await
        .unwrap()
        .seen_events
        .is_empty());

    // A fire to 120 endpoints.
    let endpoints: Vec<String> = (0..120).map(|i| format!("ep_{i:03}")).collect();
    let refs: Vec<&str> = endpoints.iter().map(String::as_str).collect();
    let fire = fire_of(&schedules[0], &refs, now());
    assert_eq!(
        store
            .commit_fires(std::slice::from_ref(&fire))
            .await
            .unwrap(),
        [true]
    );
    assert_eq!(
        store
            .commit_fires(std::slice::from_ref(&fire))
            .await
            .unwrap(),
        [false]
    );
    for d in [&fire.deliveries[0], &fire.deliveries[119]] {
        assert!(store.delivery(&d.id).await.unwrap().is_some());
    }
    let filter = DeliveryFilter {
        customer_id: Some("c_1".into()),
        ..DeliveryFilter::default()
    };
    assert_eq!(
        store
            .deliveries(&filter, None, 500)
            .await
            .unwrap()
            .data
            .len(),
        120
    );
}

async fn claim_is_exclusive_under_a_lease(store: Arc<dyn Store>) {
    let d = delivery(0, "c_1", "ep_1", EventType::AlertsLowCreditBalanceReached);
    let message = Message {
        id: d.webhook_id.clone(),
        body: "{\"hello\":1}".into(),
    };
    store
        .add_message(&message, std::slice::from_ref(&d))
        .await
        .unwrap();
    let at = d.created_at;
    let lease = at + chrono::Duration::seconds(45);

    // Not due yet.
    assert!(store
        .claim_delivery(&d.id, at - chrono::Duration::seconds(1), lease)
        .await
        .unwrap()
        .is_none());
    let (claimed, body) = store
        .claim_delivery(&d.id, at, lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(body.body, message.body);
    assert_eq!(claimed.next_attempt_at, Some(lease));
    assert_eq!(
        store
            .delivery(&d.id)
            .await
            .unwrap()
            .unwrap()
            .0
            .next_attempt_at,
        Some(lease)
    );
    // Leased: nobody else gets it until the lease ends.
    assert!(store
        .claim_delivery(&d.id, at, lease)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .claim_delivery(&d.id, lease - chrono::Duration::seconds(1), lease)
        .await
        .unwrap()
        .is_none());
    // The lease ran out (a crash mid-attempt): claimable again.
    let later = lease + chrono::Duration::seconds(45);
    assert!(store
        .claim_delivery(&d.id, lease, later)
        .await
        .unwrap()
        .is_some());

    // Concurrent claims: exactly one wins.
    let mut e = delivery(0, "c_1", "ep_2", EventType::AlertsLowCreditBalanceReached);
    e.created_at += chrono::Duration::seconds(1);
    store.add_message(&message, &[e.clone()]).await.unwrap();
    let claims = (0..4).map(|_| {
        let store = store.clone();
        let id = e.id.clone();
        let at = e.created_at;
        tokio::spawn(async move {
            store
                .claim_delivery(&id, at, at + chrono::Duration::seconds(45))
                .await
                .unwrap()
                .is_some()
        })
    });
    let mut won = 0;
    for claim in claims.collect::<Vec<_>>() {
        won += claim.await.unwrap() as usize;
    }
    assert_eq!(won, 1);

    // Not pending, or missing: nothing to claim.
    let mut done = e.clone();
    done.status = DeliveryStatus::Delivered;
    done.next_attempt_at = None;
    store.put_delivery(&done).await.unwrap();
    assert!(store
        .claim_delivery(&e.id, later, later)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .claim_delivery("dlv_missing", later, later)
        .await
        .unwrap()
        .is_none());
}

/// `claim_deliveries` takes the due pending ones among those asked, in
/// order, leaving the rest alone; `commit_attempts` records each.
async fn claims_and_attempts_in_batches(store: Arc<dyn Store>) {
    let deliveries: Vec<Delivery> = (0..5)
        .map(|n| delivery(n, "c_1", "ep_1", EventType::ContractEnd))
        .collect();
    for d in &deliveries {
        let message = Message {
            id: d.webhook_id.clone(),
            body: format!("{{\"n\":\"{}\"}}", d.webhook_id),
        };
        store
            .add_message(&message, std::slice::from_ref(d))
            .await
            .unwrap();
    }
    // Delivery 4 is due after `at`; delivery 1 is already delivered.
    let at = deliveries[3].created_at;
    let mut done = deliveries[1].clone();
    done.status = DeliveryStatus::Delivered;
    done.next_attempt_at = None;
    store.put_delivery(&done).await.unwrap();
    let lease = at + chrono::Duration::seconds(45);
    let mut ids: Vec<String> = deliveries.iter().map(|d| d.id.clone()).rev().collect();
    ids.push("dlv_missing".into());
    let claimed = store.claim_deliveries(&ids, at, lease).await.unwrap();
    let claimed_ids: Vec<&str> = claimed.iter().map(|(d, _)| d.id.as_str()).collect();
    let expected: Vec<&str> = [3, 2, 0]
        .iter()
        .map(|&n| deliveries[n].id.as_str())
        .collect();
    assert_eq!(claimed_ids, expected);
    for (d, message) in &claimed {
        assert_eq!(d.next_attempt_at, Some(lease));
        assert_eq!(message.id, d.webhook_id);
        assert!(message.body.contains(&d.webhook_id), "{}", message.body);
    }
    // Leased: a second batch claim gets only what was not due before.
    let again = store
        .claim_deliveries(&ids, lease - chrono::Duration::seconds(1), lease)
        .await
        .unwrap();
    let again: Vec<&str> = again.iter().map(|(d, _)| d.id.as_str()).collect();
    assert_eq!(again, vec![deliveries[4].id.as_str()]);
    assert!(store
        .claim_deliveries(&[], at, lease)
        .await
        .unwrap()
        .is_empty());

    let commits: Vec<AttemptCommit> = claimed
        .iter()
        .enumerate()
        .map(|(n, (d, _))| {
            let mut next = d.clone();
            next.attempt_count = 1;
            if n == 0 {
                next.next_attempt_at = Some(at + chrono::Duration::seconds(5));
            } else {
                next.status = DeliveryStatus::Delivered;
                next.next_attempt_at = None;
            }
            AttemptCommit {
                attempt: attempt(&next, 1, Some(if n == 0 { 500 } else { 204 })),
                delivery: next,
                leased_until: None,
            }
        })
        .collect();
    store.commit_attempts(&commits).await.unwrap();
    for commit in &commits {
        let (d, attempts) = store.delivery(&commit.delivery.id).await.unwrap().unwrap();
        assert_eq!(d.status, commit.delivery.status);
        assert_eq!(d.next_attempt_at, commit.delivery.next_attempt_at);
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].status_code, commit.attempt.status_code);
    }
    store.commit_attempts(&[]).await.unwrap();
}

fn attempt(d: &Delivery, number: u32, status: Option<u16>) -> Attempt {
    Attempt {
        delivery_id: d.id.clone(),
        number,
        at: d.created_at + chrono::Duration::seconds(number as i64),
        endpoint_id: d.endpoint_id.clone().unwrap(),
        status_code: status,
        latency_ms: 12,
        error: status.is_none().then(|| "timed out".to_string()),
        response: Some("ok".into()),
        manual: false,
    }
}

async fn commit_attempt_records_attempts_in_order(store: Arc<dyn Store>) {
    let d = delivery(0, "c_1", "ep_1", EventType::ContractEnd);
    store
        .add_message(
            &Message {
                id: d.webhook_id.clone(),
                body: "{}".into(),
            },
            std::slice::from_ref(&d),
        )
        .await
        .unwrap();
    let mut after_first = d.clone();
    after_first.attempt_count = 1;
    after_first.next_attempt_at = Some(d.created_at + chrono::Duration::seconds(5));
    let first = attempt(&d, 1, None);
    store
        .commit_attempt(&AttemptCommit {
            delivery: after_first.clone(),
            attempt: first.clone(),
            leased_until: None,
        })
        .await
        .unwrap();
    let (stored, attempts) = store.delivery(&d.id).await.unwrap().unwrap();
    assert_eq!(stored, after_first);
    assert_eq!(attempts, vec![first.clone()]);

    let mut delivered = after_first.clone();
    delivered.attempt_count = 2;
    delivered.status = DeliveryStatus::Delivered;
    delivered.next_attempt_at = None;
    let second = attempt(&d, 2, Some(200));
    store
        .commit_attempt(&AttemptCommit {
            delivery: delivered.clone(),
            attempt: second.clone(),
            leased_until: None,
        })
        .await
        .unwrap();
    let (stored, attempts) = store.delivery(&d.id).await.unwrap().unwrap();
    assert_eq!(stored, delivered);
    assert_eq!(attempts, vec![first, second]);
    assert!(store
        .claim_delivery(
            &d.id,
            delivered.updated_at + chrono::Duration::days(1),
            delivered.updated_at
        )
        .await
        .unwrap()
        .is_none());
}

/// Claimed, leased until `l1`; the attempt is slow, the lease ends, a
/// second claim takes the delivery until `l2` and delivers it. The first
/// attempt's failure, recorded last, changes nothing: the delivery stays
/// delivered with the second attempt's record, and the second claim's
/// lease was not released by the first.
async fn a_slow_attempt_cannot_overwrite_the_next_claims_outcome(store: Arc<dyn Store>) {
    let outcome = |claimed: &Delivery, delivered: bool, recorded: Time| {
        let mut next = claimed.clone();
        next.attempt_count = claimed.attempt_count + 1;
        next.updated_at = recorded;
        next.status = if delivered {
            DeliveryStatus::Delivered
        } else {
            DeliveryStatus::Pending
        };
        next.next_attempt_at = (!delivered).then(|| recorded + chrono::Duration::seconds(5));
        AttemptCommit {
            attempt: attempt(
                &next,
                next.attempt_count,
                Some(if delivered { 200 } else { 500 }),
            ),
            delivery: next,
            leased_until: claimed.next_attempt_at,
        }
    };
    let seconds = chrono::Duration::seconds;
    // The slow attempt recorded after the second.
    let (first, second, later) = claimed_twice(&store, 0).await;
    let won = outcome(&second, true, later + seconds(2));
    store
        .commit_attempts(std::slice::from_ref(&won))
        .await
        .unwrap();
    let slow = outcome(&first, false, later + seconds(3));
    store
        .commit_attempts(std::slice::from_ref(&slow))
        .await
        .unwrap();
    let (stored, attempts) = store.delivery(&first.id).await.unwrap().unwrap();
    assert_eq!(stored.status, DeliveryStatus::Delivered, "{stored:?}");
    assert_eq!(stored.attempt_count, 1);
    assert_eq!(attempts.len(), 1);
    assert_eq!(
        attempts[0].status_code,
        Some(200),
        "the second attempt's record stays"
    );
    // The slow attempt recorded while the second is in flight.
    let (first, second, later) = claimed_twice(&store, 1).await;
    let slow = outcome(&first, false, later + seconds(1));
    store
        .commit_attempts(std::slice::from_ref(&slow))
        .await
        .unwrap();
    let lease = second.next_attempt_at.unwrap();
    assert!(
        (store
            .claim_delivery(&first.id, later + seconds(2), lease)
            .await
            .unwrap())
        .is_none(),
        "the second claim still holds its lease"
    );
    let won = outcome(&second, true, later + seconds(3));
    store
        .commit_attempts(std::slice::from_ref(&won))
        .await
        .unwrap();
    let (stored, attempts) = store.delivery(&first.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.attempt_count),
        (DeliveryStatus::Delivered, 1)
    );
    assert_eq!(
        attempts.iter().map(|a| a.status_code).collect::<Vec<_>>(),
        vec![Some(200)]
    );
}

/// Delivery `n` claimed until 45 s after it was made, then, a second after
/// that lease ended, claimed again for 45 s: (the first claim's, the
/// second's, when the second claimed).
async fn claimed_twice(store: &Arc<dyn Store>, n: usize) -> (Delivery, Delivery, Time) {
    let d = delivery(n, "c_1", "ep_1", EventType::ContractEnd);
    let message = Message {
        id: d.webhook_id.clone(),
        body: "{}".into(),
    };
    (store.add_message(&message, std::slice::from_ref(&d)))
        .await
        .unwrap();
    let l1 = d.created_at + chrono::Duration::seconds(45);
    let (first, _) =
        (store.claim_delivery(&d.id, d.created_at, l1).await.unwrap()).expect("claimed");
    let later = l1 + chrono::Duration::seconds(1);
    let l2 = later + chrono::Duration::seconds(45);
    let (second, _) = (store.claim_delivery(&d.id, later, l2).await.unwrap())
        .expect("due again once the first lease ended");
    assert_eq!(second.next_attempt_at, Some(l2));
    (first, second, later)
}

async fn add_message_inserts_each_delivery_once(store: Arc<dyn Store>) {
    let d1 = delivery(0, "c_1", "ep_1", EventType::WebhookEndpointTest);
    let mut d2 = delivery(0, "c_1", "ep_2", EventType::WebhookEndpointTest);
    d2.created_at += chrono::Duration::seconds(1);
    let message = Message {
        id: d1.webhook_id.clone(),
        body: "{\"v\":1}".into(),
    };
    store
        .add_message(&message, std::slice::from_ref(&d1))
        .await
        .unwrap();
    // Again, with a changed copy of d1 and a new d2: d1 is kept as it was.
    let mut changed = d1.clone();
    changed.reason = Some("changed".into());
    let other_body = Message {
        id: d1.webhook_id.clone(),
        body: "{\"v\":2}".into(),
    };
    store
        .add_message(&other_body, &[changed, d2.clone()])
        .await
        .unwrap();
    assert_eq!(store.delivery(&d1.id).await.unwrap().unwrap().0, d1);
    assert_eq!(store.delivery(&d2.id).await.unwrap().unwrap().0, d2);
    let (_, kept) = store
        .claim_delivery(&d1.id, d2.created_at, d2.created_at)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.body, message.body, "a message is written once");
    let all = store
        .deliveries(&DeliveryFilter::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(all.data.len(), 2);

    // put_delivery replaces an existing one; a missing one stays missing.
    let mut resent = d2.clone();
    resent.manual = true;
    store.put_delivery(&resent).await.unwrap();
    assert_eq!(store.delivery(&d2.id).await.unwrap().unwrap().0, resent);
    let ghost = delivery(9, "c_1", "ep_1", EventType::WebhookEndpointTest);
    store.put_delivery(&ghost).await.unwrap();
    assert!(store.delivery(&ghost.id).await.unwrap().is_none());
}

async fn deliveries_filter_and_page_newest_first(store: Arc<dyn Store>) {
    // 9 deliveries, a second apart, over two customers, two endpoints, three types.
    let mut all = Vec::new();
    for n in 0..9 {
        let customer = if n % 3 == 0 { "c_2" } else { "c_1" };
        let endpoint = if n % 2 == 0 { "ep_a" } else { "ep_b" };
        let event_type = [
            EventType::ContractEnd,
            EventType::ContractStart,
            EventType::CommitCreate,
        ][n % 3];
        let mut d = delivery(n, customer, endpoint, event_type);
        // Three day buckets: the last a day later, the first a day earlier.
        if n == 8 {
            d.created_at += chrono::Duration::days(1);
        }
        if n == 0 {
            d.created_at -= chrono::Duration::days(1);
        }
        all.push(d);
    }
    for d in &all {
        store
            .add_message(
                &Message {
                    id: d.webhook_id.clone(),
                    body: "{}".into(),
                },
                std::slice::from_ref(d),
            )
            .await
            .unwrap();
    }
    // Two fail, one is delivered.
    for n in [1, 4] {
        let mut failed = all[n].clone();
        failed.status = DeliveryStatus::Failed;
        failed.next_attempt_at = None;
        store.put_delivery(&failed).await.unwrap();
        all[n] = failed;
    }
    let mut delivered = all[2].clone();
    delivered.status = DeliveryStatus::Delivered;
    delivered.next_attempt_at = None;
    store.put_delivery(&delivered).await.unwrap();
    all[2] = delivered;

    async fn ids(store: &Arc<dyn Store>, filter: DeliveryFilter, limit: usize) -> Vec<String> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = store
                .deliveries(&filter, cursor.as_deref(), limit)
                .await
                .unwrap();
            assert!(page.data.len() <= limit);
            out.extend(page.data.iter().map(|(d, _)| d.webhook_id.clone()));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return out,
            }
        }
    }
    let expect = |pick: &dyn Fn(&Delivery) -> bool| -> Vec<String> {
        all.iter()
            .rev()
            .filter(|d| pick(d))
            .map(|d| d.webhook_id.clone())
            .collect()
    };

    for limit in [1, 2, 4, 20] {
        assert_eq!(
            ids(&store, DeliveryFilter::default(), limit).await,
            expect(&|_| true),
            "limit {limit}"
        );
    }
    let by_customer = DeliveryFilter {
        customer_id: Some("c_1".into()),
        ..Default::default()
    };
    assert_eq!(
        ids(&store, by_customer, 2).await,
        expect(&|d| d.customer_id == "c_1")
    );
    let by_type = DeliveryFilter {
        event_type: Some(EventType::ContractEnd),
        ..Default::default()
    };
    assert_eq!(
        ids(&store, by_type, 2).await,
        expect(&|d| d.event_type == EventType::ContractEnd)
    );
    let failed = DeliveryFilter {
        status: Some(DeliveryStatus::Failed),
        ..Default::default()
    };
    assert_eq!(
        ids(&store, failed, 1).await,
        expect(&|d| d.status == DeliveryStatus::Failed)
    );
    let pending_a = DeliveryFilter {
        endpoint_id: Some("ep_a".into()),
        status: Some(DeliveryStatus::Pending),
        ..Default::default()
    };
    assert_eq!(
        ids(&store, pending_a, 2).await,
        expect(&|d| d.endpoint_id.as_deref() == Some("ep_a") && d.status == DeliveryStatus::Pending)
    );
    let failed_b = DeliveryFilter {
        endpoint_id: Some("ep_b".into()),
        status: Some(DeliveryStatus::Failed),
        event_type: Some(EventType::ContractStart),
        ..Default::default()
    };
    assert_eq!(
        ids(&store, failed_b, 2).await,
        expect(&|d| d.endpoint_id.as_deref() == Some("ep_b")
            && d.status == DeliveryStatus::Failed
            && d.event_type == EventType::ContractStart)
    );
    let endpoint_b = DeliveryFilter {
        endpoint_id: Some("ep_b".into()),
        ..Default::default()
    };
    assert_eq!(
        ids(&store, endpoint_b, 3).await,
        expect(&|d| d.endpoint_id.as_deref() == Some("ep_b"))
    );
    let customer_status = DeliveryFilter {
        customer_id: Some("c_1".into()),
        status: Some(DeliveryStatus::Pending),
        endpoint_id: Some("ep_a".into()),
        ..Default::default()
    };
    assert_eq!(
        ids(&store, customer_status, 1).await,
        expect(&|d| d.customer_id == "c_1"
            && d.status == DeliveryStatus::Pending
            && d.endpoint_id.as_deref() == Some("ep_a"))
    );
    let (since, until) = (all[2].created_at, all[6].created_at);
    let window = DeliveryFilter {
        since: Some(since),
        until: Some(until),
        ..Default::default()
    };
    assert_eq!(
        ids(&store, window, 2).await,
        expect(&|d| d.created_at >= since && d.created_at <= until),
        "since and until are inclusive"
    );
    let customer_window = DeliveryFilter {
        customer_id: Some("c_2".into()),
        since: Some(since),
        ..Default::default()
    };
    assert_eq!(
        ids(&store, customer_window, 1).await,
        expect(&|d| d.customer_id == "c_2" && d.created_at >= since)
    );
    let nobody = DeliveryFilter {
        customer_id: Some("c_9".into()),
        ..Default::default()
    };
    assert!(ids(&store, nobody, 5).await.is_empty());
    assert!(matches!(
        store
            .deliveries(&DeliveryFilter::default(), Some("garbage"), 2)
            .await,
        Err(StoreError::InvalidCursor)
    ));
    // Rows carry their attempts.
    let first = all[0].clone();
    store
        .commit_attempt(&AttemptCommit {
            delivery: first.clone(),
            attempt: attempt(&first, 1, Some(500)),
            leased_until: None,
        })
        .await
        .unwrap();
    let page = store
        .deliveries(&DeliveryFilter::default(), None, 20)
        .await
        .unwrap();
    let (_, attempts) = page.data.iter().find(|(d, _)| d.id == first.id).unwrap();
    assert_eq!(attempts.len(), 1);
}

async fn signal_state_alerts_and_current_values(store: Arc<dyn Store>) {
    let alert = AlertState {
        notification_id: "ntf_low".into(),
        customer_id: "c_1".into(),
        in_alarm: true,
        since: now(),
        value: 80.0,
        period: String::new(),
        crossings: 1,
    };
    let crossing = delivery(0, "c_1", "ep_1", EventType::AlertsLowCreditBalanceReached);
    let changes = SignalChanges {
        balances: vec![
            (
                "c_1".into(),
                Balance {
                    value: 80.0,
                    occurred_at: now(),
                },
            ),
            (
                "c_2".into(),
                Balance {
                    value: 1500.5,
                    occurred_at: now(),
                },
            ),
        ],
        spends: vec![(
            "c_1".into(),
            Spend {
                period: "2026-11-01T00:00:00Z".into(),
                value: 12.25,
                occurred_at: now(),
            },
        )],
        usage: vec![
            (("c_1".into(), "api_calls".into(), "2026-11".into()), 42.0),
            (("c_2".into(), "api_calls".into(), "2026-11".into()), 7.0),
            (("c_2".into(), "api_calls".into(), "2026-10".into()), 99.0),
        ],
        counted: Default::default(),
        versions: Default::default(),
        alerts: vec![alert.clone()],
        messages: vec![Message {
            id: crossing.webhook_id.clone(),
            body: "{}".into(),
        }],
        deliveries: vec![crossing.clone()],
    };
    store.apply_signal_changes(&changes).await.unwrap();

    let state = store
        .signal_state(
            &["c_1".into(), "c_3".into()],
            &[
                ("c_1".into(), "api_calls".into(), "2026-11".into()),
                ("c_1".into(), "api_calls".into(), "2026-12".into()),
            ],
        )
        .await
        .unwrap();
    assert_eq!(state.balances.len(), 1);
    assert_eq!(
        state.balances["c_1"],
        Balance {
            value: 80.0,
            occurred_at: now()
        }
    );
    assert_eq!(state.spends["c_1"].value, 12.25);
    assert_eq!(state.spends["c_1"].period, "2026-11-01T00:00:00Z");
    assert_eq!(state.usage.len(), 1);
    assert_eq!(
        state.usage[&("c_1".into(), "api_calls".into(), "2026-11".into())],
        42.0
    );
    assert_eq!(state.alerts.len(), 1);
    assert_eq!(state.alerts[&("ntf_low".into(), "c_1".into())], alert);
    assert_eq!(store.alerts_of("c_1").await.unwrap(), vec![alert.clone()]);
    assert!(store.alerts_of("c_2").await.unwrap().is_empty());
    assert!(store
        .claim_delivery(&crossing.id, crossing.created_at, crossing.created_at)
        .await
        .unwrap()
        .is_some());

    let sorted = |mut v: Vec<(String, f64, String)>| {
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    assert_eq!(
        sorted(
            store
                .current_values(Measure::Balance, None, "2026-11")
                .await
                .unwrap()
        ),
        vec![
            ("c_1".into(), 80.0, String::new()),
            ("c_2".into(), 1500.5, String::new())
        ]
    );
    assert_eq!(
        sorted(
            store
                .current_values(Measure::Spend, None, "2026-11")
                .await
                .unwrap()
        ),
        vec![("c_1".into(), 12.25, "2026-11-01T00:00:00Z".into())]
    );
    assert_eq!(
        sorted(
            store
                .current_values(Measure::Usage, Some("api_calls"), "2026-11")
                .await
                .unwrap()
        ),
        vec![
            ("c_1".into(), 42.0, "2026-11".into()),
            ("c_2".into(), 7.0, "2026-11".into())
        ]
    );

    // Upserts: a new balance and a resolved alert replace the old ones.
    let mut resolved = alert.clone();
    resolved.in_alarm = false;
    resolved.value = 500.0;
    store
        .apply_signal_changes(&SignalChanges {
            balances: vec![(
                "c_1".into(),
                Balance {
                    value: 500.0,
                    occurred_at: now(),
                },
            )],
            alerts: vec![resolved.clone()],
            ..SignalChanges::default()
        })
        .await
        .unwrap();
    let state = store.signal_state(&["c_1".into()], &[]).await.unwrap();
    assert_eq!(state.balances["c_1"].value, 500.0);
    assert_eq!(store.alerts_of("c_1").await.unwrap(), vec![resolved]);

    // Signals committed with writes.
    store
        .commit_writes(&WriteCommit {
            events: vec![("u_1".into(), "accepted")],
            signals: SignalChanges {
                usage: vec![(("c_3".into(), "api_calls".into(), "2026-11".into()), 1.0)],
                ..SignalChanges::default()
            },
            ..WriteCommit::default()
        })
        .await
        .unwrap();
    assert_eq!(
        store
            .current_values(Measure::Usage, Some("api_calls"), "2026-11")
            .await
            .unwrap()
            .len(),
        3
    );
}

/// Skip records and crossings committed with writes show in the unfiltered log.
async fn deliveries_of_a_write_commit_are_in_the_log(store: Arc<dyn Store>) {
    let k = contract("k_1", "c_1", "2026-01-01T00:00:00Z", None);
    let plan = plan_for(
        &k,
        &[notification(json!({"event_type": "contract.start"}))],
        now(),
    );
    assert_eq!(plan.skipped.len(), 1, "a start long past is skipped");
    let crossing = delivery(3, "c_2", "ep_1", EventType::AlertsLowCreditBalanceReached);
    store
        .commit_writes(&WriteCommit {
            events: vec![("w_1".into(), "accepted")],
            records: vec![(k, None)],
            plan: plan.clone(),
            signals: SignalChanges {
                messages: vec![Message {
                    id: crossing.webhook_id.clone(),
                    body: "{}".into(),
                }],
                deliveries: vec![crossing.clone()],
                ..SignalChanges::default()
            },
        })
        .await
        .unwrap();
    let log = store
        .deliveries(&DeliveryFilter::default(), None, 10)
        .await
        .unwrap();
    let ids: Vec<&str> = log.data.iter().map(|(d, _)| d.id.as_str()).collect();
    assert_eq!(ids, [crossing.id.as_str(), plan.skipped[0].id.as_str()]);
    let skipped = DeliveryFilter {
        status: Some(DeliveryStatus::Skipped),
        customer_id: Some("c_1".into()),
        ..DeliveryFilter::default()
    };
    assert_eq!(
        store
            .deliveries(&skipped, None, 10)
            .await
            .unwrap()
            .data
            .len(),
        1
    );
}

/// Flushes of figures add up per minute (two flushes of one minute are
/// one minute's figures, their lag histograms merged), read by range.
async fn stats_add_up_by_minute(store: Arc<dyn Store>) {
    use lifecycle_core::stats::{LagHistogram, MinuteStats};
    let figure = |minute: &str, fired, delivered, failed, lags: &[f64]| {
        let mut lag = LagHistogram::default();
        for l in lags {
            lag.add(*l);
        }
        MinuteStats {
            minute: t(minute),
            fired,
            delivered,
            failed,
            lag,
        }
    };
    store
        .add_stats(&[
            figure("2026-11-30T23:59:00Z", 1, 1, 0, &[0.2]),
            figure("2026-12-01T00:00:00Z", 5, 3, 1, &[0.1, 0.2, 4.0]),
        ])
        .await
        .unwrap();
    store
        .add_stats(&[figure("2026-12-01T00:00:00Z", 2, 1, 2, &[30.0])])
        .await
        .unwrap();
    store
        .add_stats(&[figure("2026-12-01T00:02:00Z", 9, 0, 0, &[])])
        .await
        .unwrap();
    let read = store
        .stats(t("2026-11-30T23:59:30Z"), t("2026-12-01T00:02:00Z"))
        .await
        .unwrap();
    let mut lag = LagHistogram::default();
    for l in [0.1, 0.2, 4.0, 30.0] {
        lag.add(l);
    }
    let minutes: Vec<_> = read.iter().map(|m| m.minute).collect();
    assert_eq!(
        minutes,
        [t("2026-11-30T23:59:00Z"), t("2026-12-01T00:00:00Z")]
    );
    assert_eq!(
        read[1],
        MinuteStats {
            minute: t("2026-12-01T00:00:00Z"),
            fired: 7,
            delivered: 4,
            failed: 3,
            lag
        }
    );
    assert_eq!(read[0].lag.count(), 1);
    let later = store
        .stats(t("2026-12-01T00:01:00Z"), t("2026-12-01T01:00:00Z"))
        .await
        .unwrap();
    assert_eq!(later.iter().map(|m| m.fired).collect::<Vec<_>>(), [9]);
}
