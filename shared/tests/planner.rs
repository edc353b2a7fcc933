//! The pure planner, through the public API: moments, fire times, states,
//! reasons, ids, timer changes and payloads. Time is always passed in.

use chrono::Duration;
use lifecycle_core::entity::{Entity, EntityKind, EntityRecord};
use lifecycle_core::event_type::EventType;
use lifecycle_core::notification::Notification;
use lifecycle_core::payload;
use lifecycle_core::planner::{
    decide, desired, moments, plan, stale_reason, write_schedules, Plan, TimerChange,
};
use lifecycle_core::schedule::{DeliveryStatus, Schedule, ScheduleState};
use lifecycle_core::time::{format_time, parse_time, Clock, FixedClock, Time};
use lifecycle_core::write_event::parse_event;
use serde_json::{json, Value};

// ---------------------------------------------------------------- helpers

const NOW: &str = "2026-11-25T00:00:00Z";

fn t(text: &str) -> Time {
    parse_time(text).unwrap_or_else(|| panic!("bad time {text}"))
}

fn now() -> Time {
    t(NOW)
}

fn record(kind: EntityKind, data: Value) -> EntityRecord {
    EntityRecord {
        entity: Entity::parse(kind, &data).unwrap(),
        version: 1,
        occurred_at: now(),
        archived_at: None,
    }
}

fn contract_data(start: &str, end: Option<&str>) -> Value {
    json!({"id": "k_1", "customer_id": "c_1", "name": "Main", "starting_at": start,
           "ending_before": end, "custom_fields": {"tier": "enterprise"}})
}

/// Contract k_1 of c_1 from 2026-12-01, ending as given.
fn contract(end: Option<&str>) -> EntityRecord {
    record(
        EntityKind::Contract,
        contract_data("2026-12-01T00:00:00Z", end),
    )
}

fn grant_data(kind: EntityKind, id: &str, segments: &[(&str, &str, &str)]) -> Value {
    let schedule: Vec<Value> = segments
        .iter()
        .map(|(sid, start, end)| json!({"id": sid, "starting_at": start, "ending_before": end, "amount": 100}))
        .collect();
    let mut data = json!({"id": id, "customer_id": "c_1", "contract_id": "k_1",
                          "access_schedule": schedule, "custom_fields": {"tier": "enterprise"}});
    if kind == EntityKind::Commit {
        data["type"] = json!("prepaid");
    }
    data
}

const COMMIT_SEGMENTS: [(&str, &str, &str); 2] = [
    ("s1", "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"),
    ("s2", "2027-01-01T00:00:00Z", "2027-02-01T00:00:00Z"),
];
const CREDIT_SEGMENTS: [(&str, &str, &str); 3] = [
    ("c1", "2026-12-15T00:00:00Z", "2027-03-15T00:00:00Z"),
    ("c2", "2027-03-15T00:00:00Z", "2027-06-15T00:00:00Z"),
    ("c3", "2027-06-15T00:00:00Z", "2027-09-15T00:00:00Z"),
];

fn commit() -> EntityRecord {
    record(
        EntityKind::Commit,
        grant_data(EntityKind::Commit, "cm_1", &COMMIT_SEGMENTS),
    )
}

fn credit() -> EntityRecord {
    record(
        EntityKind::Credit,
        grant_data(EntityKind::Credit, "cr_1", &CREDIT_SEGMENTS),
    )
}

/// A new record of the same entity after an edit.
fn edited(kind: EntityKind, data: Value, version: u64) -> EntityRecord {
    EntityRecord {
        version,
        ..record(kind, data)
    }
}

fn archived(mut record: EntityRecord) -> EntityRecord {
    record.version += 1;
    record.archived_at = Some(now());
    record
}

fn ntf(event_type: &str, offset: &str) -> Notification {
    ntf_with(json!({"event_type": event_type, "offset": offset}))
}

fn ntf_with(body: Value) -> Notification {
    Notification::create(&body, now()).unwrap()
}

/// `type [segment index/count] @fire_at`: one line per schedule.
fn line(s: &Schedule) -> String {
    let segment = s
        .segment
        .as_ref()
        .map(|g| format!("{}[{}/{}] ", g.id, g.index, g.count))
        .unwrap_or_default();
    format!(
        "{} {}@{}",
        s.event_type.as_str(),
        segment,
        format_time(s.fire_at)
    )
}

fn lines(schedules: &[Schedule]) -> Vec<String> {
    let mut lines: Vec<_> = schedules.iter().map(line).collect();
    lines.sort();
    lines
}

/// The stored schedules after a plan is applied: upsert by id.
fn apply(existing: &[Schedule], plan: &Plan) -> Vec<Schedule> {
    let mut out = existing.to_vec();
    for s in &plan.schedules {
        match out.iter_mut().find(|o| o.id == s.id) {
            Some(o) => *o = s.clone(),
            None => out.push(s.clone()),
        }
    }
    out
}

fn in_state(plan: &Plan, state: ScheduleState) -> Vec<&Schedule> {
    plan.schedules.iter().filter(|s| s.state == state).collect()
}

fn set(s: &Schedule) -> TimerChange {
    TimerChange::Set {
        id: s.id.clone(),
        at: s.fire_at,
    }
}

fn clear(s: &Schedule) -> TimerChange {
    TimerChange::Clear { id: s.id.clone() }
}

/// Every cancelled schedule of the plan has this reason and a cleared timer.
fn assert_cancelled(plan: &Plan, ids: &[&str], reason: &str) {
    let mut cancelled: Vec<_> = in_state(plan, ScheduleState::Cancelled)
        .into_iter()
        .map(|s| s.id.as_str())
        .collect();
    let mut want = ids.to_vec();
    cancelled.sort();
    want.sort();
    assert_eq!(cancelled, want);
    for s in in_state(plan, ScheduleState::Cancelled) {
        assert_eq!(s.reason.as_deref(), Some(reason), "{}", line(s));
        assert!(plan.timers.contains(&clear(s)), "{}", line(s));
    }
}

// ------------------------------------------------ 1. the 15 event types

#[test]
fn contract_moments_are_its_start_and_end() {
    let m = moments(&contract(Some("2026-12-31T00:00:00Z")).entity);
    let got: Vec<_> = m
        .iter()
        .map(|m| (m.event_type, format_time(m.event_time), m.segment.clone()))
        .collect();
    assert_eq!(
        got,
        [
            (
                EventType::ContractStart,
                "2026-12-01T00:00:00Z".to_string(),
                None
            ),
            (
                EventType::ContractEnd,
                "2026-12-31T00:00:00Z".to_string(),
                None
            ),
        ]
    );
}

#[test]
fn every_segment_has_a_start_and_an_end_moment() {
    let m = moments(&credit().entity);
    assert_eq!(m.len(), 6);
    for (i, (sid, start, end)) in CREDIT_SEGMENTS.iter().enumerate() {
        let (s, e) = (&m[2 * i], &m[2 * i + 1]);
        assert_eq!(
            (s.event_type, format_time(s.event_time)),
            (EventType::CreditSegmentStart, start.to_string())
        );
        assert_eq!(
            (e.event_type, format_time(e.event_time)),
            (EventType::CreditSegmentEnd, end.to_string())
        );
        for seg in [&s.segment, &e.segment] {
            let seg = seg.as_ref().unwrap();
            assert_eq!((seg.id.as_str(), seg.index, seg.count), (*sid, i, 3));
        }
    }
    let types: Vec<_> = moments(&commit().entity)
        .iter()
        .map(|m| m.event_type)
        .collect();
    assert_eq!(
        types,
        [EventType::CommitSegmentStart, EventType::CommitSegmentEnd].repeat(2)
    );
}

#[test]
fn each_time_based_type_plans_its_moments() {
    let cases: [(&str, EntityRecord, &[&str]); 6] = [
        (
            "contract.start",
            contract(Some("2026-12-31T00:00:00Z")),
            &["contract.start @2026-12-01T00:00:00Z"],
        ),
        (
            "contract.end",
            contract(Some("2026-12-31T00:00:00Z")),
            &["contract.end @2026-12-31T00:00:00Z"],
        ),
        (
            "commit.segment.start",
            commit(),
            &[
                "commit.segment.start s1[0/2] @2026-12-01T00:00:00Z",
                "commit.segment.start s2[1/2] @2027-01-01T00:00:00Z",
            ],
        ),
        (
            "commit.segment.end",
            commit(),
            &[
                "commit.segment.end s1[0/2] @2027-01-01T00:00:00Z",
                "commit.segment.end s2[1/2] @2027-02-01T00:00:00Z",
            ],
        ),
        (
            "credit.segment.start",
            credit(),
            &[
                "credit.segment.start c1[0/3] @2026-12-15T00:00:00Z",
                "credit.segment.start c2[1/3] @2027-03-15T00:00:00Z",
                "credit.segment.start c3[2/3] @2027-06-15T00:00:00Z",
            ],
        ),
        (
            "credit.segment.end",
            credit(),
            &[
                "credit.segment.end c1[0/3] @2027-03-15T00:00:00Z",
                "credit.segment.end c2[1/3] @2027-06-15T00:00:00Z",
                "credit.segment.end c3[2/3] @2027-09-15T00:00:00Z",
            ],
        ),
    ];
    for (event_type, record, want) in cases {
        let n = ntf(event_type, "PT0S");
        let p = plan(&record, std::slice::from_ref(&n), &[], now());
        assert_eq!(lines(&p.schedules), want, "{event_type}");
        for s in &p.schedules {
            assert_eq!(
                (s.state, s.late, s.write.is_none()),
                (ScheduleState::Pending, false, true)
            );
            assert_eq!(
                (s.notification_id.as_str(), s.customer_id.as_str()),
                (n.id.as_str(), "c_1")
            );
            assert_eq!((s.entity.clone(), s.event_time), (record.key(), s.fire_at));
            assert!(s.id.starts_with("sch_"));
        }
        assert_eq!(p.timers, p.schedules.iter().map(set).collect::<Vec<_>>());
        assert!(p.skipped.is_empty());
        // A notification of another kind's type plans nothing for this entity.
        let other = if record.key().kind == EntityKind::Contract {
            "credit.segment.end"
        } else {
            "contract.end"
        };
        assert!(plan(&record, &[ntf(other, "PT0S")], &[], now()).is_empty());
    }
}

#[test]
fn each_write_type_gives_one_due_now_schedule_per_matching_enabled_notification() {
    let occurred = "2026-11-24T10:00:00Z";
    let before = |kind| match kind {
        EntityKind::Contract => contract(None),
        EntityKind::Commit => commit(),
        EntityKind::Credit => credit(),
    };
    for kind in [EntityKind::Contract, EntityKind::Commit, EntityKind::Credit] {
        for action in ["create", "edit", "archive"] {
            let type_name = format!("{}.{action}", kind.as_str());
            let event_type = EventType::parse(&type_name).unwrap();
            let data = match action {
                "archive" => json!({"id": before(kind).entity.id(), "customer_id": "c_1"}),
                _ => before(kind).entity.snapshot(),
            };
            let event = parse_event(
                &json!({"id": "wr_1", "type": type_name, "occurred_at": occurred, "data": data}),
            )
            .unwrap();
            let record = match action {
                "create" => EntityRecord {
                    occurred_at: t(occurred),
                    ..before(kind)
                },
                "edit" => EntityRecord {
                    version: 2,
                    occurred_at: t(occurred),
                    ..before(kind)
                },
                _ => EntityRecord {
                    occurred_at: t(occurred),
                    ..archived(before(kind))
                },
            };
            let mut notifications = Notification::system_defaults(now());
            notifications.push(ntf_with(json!({"event_type": type_name, "enabled": false})));
            notifications.push(ntf_with(
                json!({"event_type": type_name, "filter": {"customer_ids": ["c_9"]}}),
            ));
            let extra = ntf_with(
                json!({"event_type": type_name, "filter": {"custom_fields": {"tier": "enterprise"}}}),
            );
            notifications.push(extra.clone());

            let schedules = write_schedules(&record, &event, &notifications, now());
            let mut ids: Vec<_> = schedules
                .iter()
                .map(|s| s.notification_id.clone())
                .collect();
            ids.sort();
            let mut want = vec![Notification::system_id(event_type), extra.id.clone()];
            want.sort();
            assert_eq!(ids, want, "{type_name}");
            for s in &schedules {
                assert_eq!(
                    (s.event_type, s.state, s.late),
                    (event_type, ScheduleState::Pending, false)
                );
                assert_eq!(
                    (s.fire_at, s.event_time),
                    (now(), t(occurred)),
                    "{type_name}"
                );
                assert_eq!((s.entity.clone(), s.segment.clone()), (record.key(), None));
                assert_eq!(s.offset.as_str(), "PT0S");
                let w = s
                    .write
                    .as_ref()
                    .expect("a write schedule remembers its write");
                assert_eq!(
                    (w.event_id.as_str(), w.occurred_at, w.version),
                    ("wr_1", t(occurred), record.version)
                );
                assert_eq!(w.snapshot, record.entity.snapshot());
            }
            // Write types are no time-based plan.
            let write_only: Vec<_> = notifications
                .into_iter()
                .filter(|n| !n.event_type.is_time_based())
                .collect();
            assert!(desired(&record, &write_only, now()).is_empty());
            assert_eq!(
                plan(&record, &write_only, &[], now()),
                Plan::default(),
                "{type_name}"
            );
        }
    }
}

// ------------------------------------------------ 2. a fresh install

#[test]
fn fresh_install_plans_contract_commit_and_credit_moments() {
    let defaults = Notification::system_defaults(now());
    assert_eq!(defaults.len(), 15);
    let planned = |record: &EntityRecord| {
        let p = plan(record, &defaults, &[], now());
        assert_eq!(p.timers.len(), p.schedules.len());
        assert!(p.skipped.is_empty());
        for s in &p.schedules {
            assert_eq!(s.notification_id, Notification::system_id(s.event_type));
            assert_eq!(
                (s.offset.as_str(), s.fire_at, s.state),
                ("PT0S", s.event_time, ScheduleState::Pending)
            );
        }
        lines(&p.schedules)
    };
    assert_eq!(
        planned(&contract(Some("2026-12-31T00:00:00Z"))),
        [
            "contract.end @2026-12-31T00:00:00Z",
            "contract.start @2026-12-01T00:00:00Z"
        ]
    );
    assert_eq!(
        planned(&commit()),
        [
            "commit.segment.end s1[0/2] @2027-01-01T00:00:00Z",
            "commit.segment.end s2[1/2] @2027-02-01T00:00:00Z",
            "commit.segment.start s1[0/2] @2026-12-01T00:00:00Z",
            "commit.segment.start s2[1/2] @2027-01-01T00:00:00Z",
        ]
    );
    assert_eq!(planned(&credit()).len(), 6);
    assert_eq!(
        planned(&credit())[..2],
        [
            "credit.segment.end c1[0/3] @2027-03-15T00:00:00Z",
            "credit.segment.end c2[1/3] @2027-06-15T00:00:00Z"
        ]
    );
}

// ------------------------------------------------ 3. offsets

#[test]
fn negative_zero_and_positive_offsets() {
    let record = contract(Some("2026-12-31T00:00:00Z"));
    for (offset, fire_at) in [
        ("-P30D", "2026-12-01T00:00:00Z"),
        ("PT0S", "2026-12-31T00:00:00Z"),
        ("PT2H", "2026-12-31T02:00:00Z"),
        ("-PT90M", "2026-12-30T22:30:00Z"),
        ("P1Y", "2027-12-31T00:00:00Z"),
    ] {
        let p = plan(&record, &[ntf("contract.end", offset)], &[], now());
        let [s] = &p.schedules[..] else {
            panic!("{offset}: {:?}", p.schedules)
        };
        assert_eq!(
            (format_time(s.fire_at), s.offset.as_str()),
            (fire_at.to_string(), offset)
        );
        assert_eq!(s.event_time, t("2026-12-31T00:00:00Z"));
    }
}

#[test]
fn a_month_before_march_31_is_the_last_day_of_february() {
    for (end, fire_at) in [
        ("2027-03-31T10:00:00Z", "2027-02-28T10:00:00Z"),
        ("2028-03-31T10:00:00Z", "2028-02-29T10:00:00Z"),
    ] {
        let record = record(
            EntityKind::Contract,
            contract_data("2026-12-01T00:00:00Z", Some(end)),
        );
        let p = plan(&record, &[ntf("contract.end", "-P1M")], &[], now());
        assert_eq!(lines(&p.schedules), [format!("contract.end @{fire_at}")]);
    }
}

// ------------------------------------------------ 4. open-ended contracts

#[test]
fn open_ended_contract_plans_a_start_and_an_end_once_it_has_one() {
    let defaults = Notification::system_defaults(now());
    let open = contract(None);
    assert_eq!(moments(&open.entity).len(), 1);
    let first = plan(&open, &defaults, &[], now());
    assert_eq!(
        lines(&first.schedules),
        ["contract.start @2026-12-01T00:00:00Z"]
    );

    let existing = apply(&[], &first);
    let ended = edited(
        EntityKind::Contract,
        contract_data("2026-12-01T00:00:00Z", Some("2027-06-01T00:00:00Z")),
        2,
    );
    let second = plan(&ended, &defaults, &existing, now());
    assert_eq!(
        lines(&second.schedules),
        ["contract.end @2027-06-01T00:00:00Z"]
    );
    assert_eq!(second.timers, [set(&second.schedules[0])]);
}

// ------------------------------------------------ 5. edits and idempotence

#[test]
fn a_moved_moment_cancels_the_old_schedule_and_plans_a_new_one() {
    let notifications = [ntf("contract.start", "PT0S"), ntf("contract.end", "-P30D")];
    let existing = apply(
        &[],
        &plan(
            &contract(Some("2026-12-31T00:00:00Z")),
            &notifications,
            &[],
            now(),
        ),
    );
    let old_end = existing
        .iter()
        .find(|s| s.event_type == EventType::ContractEnd)
        .unwrap()
        .clone();

    let moved = edited(
        EntityKind::Contract,
        contract_data("2026-12-01T00:00:00Z", Some("2027-01-31T00:00:00Z")),
        2,
    );
    let p = plan(&moved, &notifications, &existing, t("2026-11-26T00:00:00Z"));
    assert_eq!(p.schedules.len(), 2, "the unmoved start is untouched");
    assert_cancelled(&p, &[&old_end.id], "moment moved or removed");
    let cancelled = in_state(&p, ScheduleState::Cancelled)[0];
    assert_eq!(
        (cancelled.fire_at, cancelled.updated_at),
        (old_end.fire_at, t("2026-11-26T00:00:00Z"))
    );

    let new = in_state(&p, ScheduleState::Pending)[0];
    assert_ne!(new.id, old_end.id);
    assert_eq!(line(new), "contract.end @2027-01-01T00:00:00Z");
    assert!(p.timers.contains(&set(new)));
    assert_eq!(p.timers.len(), 2);
}

#[test]
fn planning_the_same_state_twice_changes_nothing() {
    let mut notifications = Notification::system_defaults(now());
    notifications.push(ntf("commit.segment.end", "-P7D"));
    // Past moments too: the credit's first start is late, December 1 is skipped.
    let later = t("2026-12-16T00:00:00Z");
    let (mut late, mut skipped) = (0, 0);
    for record in [contract(Some("2026-12-31T00:00:00Z")), commit(), credit()] {
        let first = plan(&record, &notifications, &[], later);
        assert!(!first.is_empty());
        late += first.schedules.iter().filter(|s| s.late).count();
        skipped += first.skipped.len();
        let second = plan(&record, &notifications, &apply(&[], &first), later);
        assert_eq!(second, Plan::default(), "{:?}", record.key());
        let third = plan(
            &record,
            &notifications,
            &apply(&[], &first),
            t("2026-12-20T00:00:00Z"),
        );
        assert_eq!(third, Plan::default(), "{:?}", record.key());
    }
    assert_eq!((late, skipped), (1, 2));
}

// ------------------------------------------------ 6. archive

#[test]
fn archive_cancels_every_pending_schedule_and_leaves_fired_and_skipped_alone() {
    let defaults = Notification::system_defaults(now());
    let mut existing = apply(&[], &plan(&credit(), &defaults, &[], now()));
    assert_eq!(existing.len(), 6);
    existing[0].state = ScheduleState::Fired;
    existing[1].state = ScheduleState::Skipped;
    let fired_and_skipped = [existing[0].id.clone(), existing[1].id.clone()];
    // A pending write-based schedule is the write's, not the planner's.
    let event = parse_event(
        &json!({"id": "wr_9", "type": "credit.edit", "occurred_at": NOW,
                                    "data": credit().entity.snapshot()}),
    )
    .unwrap();
    existing.extend(write_schedules(&credit(), &event, &defaults, now()));

    let p = plan(&archived(credit()), &defaults, &existing, now());
    let pending: Vec<&str> = existing[2..6].iter().map(|s| s.id.as_str()).collect();
    assert_cancelled(&p, &pending, "entity archived");
    assert_eq!((p.schedules.len(), p.timers.len()), (4, 4));
    assert!(p
        .schedules
        .iter()
        .all(|s| !fired_and_skipped.contains(&s.id) && s.write.is_none()));
    assert!(desired(&archived(credit()), &defaults, now()).is_empty());
}

// ------------------------------------------------ 7. notification changes

#[test]
fn an_offset_edit_moves_the_same_schedule() {
    let mut n = ntf("contract.end", "-P30D");
    let record = contract(Some("2026-12-31T00:00:00Z"));
    let existing = apply(&[], &plan(&record, std::slice::from_ref(&n), &[], now()));
    n.patch(&json!({"offset": "-P7D"}), now()).unwrap();
    let p = plan(&record, std::slice::from_ref(&n), &existing, now());
    let [s] = &p.schedules[..] else {
        panic!("{:?}", p.schedules)
    };
    assert_eq!(s.id, existing[0].id);
    assert_eq!(
        (line(s), s.offset.as_str(), s.state),
        (
            "contract.end @2026-12-24T00:00:00Z".into(),
            "-P7D",
            ScheduleState::Pending
        )
    );
    assert_eq!(
        p.timers,
        [TimerChange::Set {
            id: s.id.clone(),
            at: t("2026-12-24T00:00:00Z")
        }]
    );
}

#[test]
fn disabling_cancels_and_re_enabling_revives() {
    let mut n = ntf("commit.segment.start", "-P1D");
    let record = commit();
    let existing = apply(&[], &plan(&record, std::slice::from_ref(&n), &[], now()));
    let ids: Vec<&str> = existing.iter().map(|s| s.id.as_str()).collect();

    n.patch(&json!({"enabled": false}), now()).unwrap();
    let off = plan(&record, std::slice::from_ref(&n), &existing, now());
    assert_cancelled(&off, &ids, "notification disabled");
    let existing = apply(&existing, &off);
    assert_eq!(
        plan(&record, std::slice::from_ref(&n), &existing, now()),
        Plan::default()
    );

    n.patch(&json!({"enabled": true}), now()).unwrap();
    let on = plan(&record, std::slice::from_ref(&n), &existing, now());
    assert_eq!(
        on.schedules
            .iter()
            .map(|s| s.id.as_str())
            .collect::<Vec<_>>(),
        ids
    );
    for s in &on.schedules {
        assert_eq!(
            (s.state, s.reason.as_deref()),
            (ScheduleState::Pending, None)
        );
    }
    assert_eq!(on.timers, on.schedules.iter().map(set).collect::<Vec<_>>());
    assert_eq!(lines(&on.schedules), lines(&existing));
}

#[test]
fn a_deleted_notification_cancels_its_pending_schedules() {
    let kept = ntf("contract.start", "PT0S");
    let gone = ntf("contract.end", "-P30D");
    let record = contract(Some("2026-12-31T00:00:00Z"));
    let existing = apply(
        &[],
        &plan(&record, &[kept.clone(), gone.clone()], &[], now()),
    );
    let gone_id = existing
        .iter()
        .find(|s| s.notification_id == gone.id)
        .unwrap()
        .id
        .clone();
    let p = plan(&record, &[kept], &existing, now());
    assert_cancelled(&p, &[&gone_id], "notification deleted");
    assert_eq!(p.schedules.len(), 1);
}

// ------------------------------------------------ 8. past fire times

#[test]
fn a_past_fire_time_within_catch_up_fires_late() {
    let clock = FixedClock::new(t("2026-12-01T00:00:00Z"));
    clock.advance(Duration::hours(23));
    let p = plan(
        &contract(None),
        &[ntf("contract.start", "PT0S")],
        &[],
        clock.now(),
    );
    let [s] = &p.schedules[..] else { panic!() };
    assert_eq!(
        (s.state, s.late, s.reason.as_deref()),
        (ScheduleState::Pending, true, None)
    );
    assert_eq!(
        p.timers,
        [TimerChange::Set {
            id: s.id.clone(),
            at: t("2026-12-01T00:00:00Z")
        }]
    );
    assert!(p.skipped.is_empty());
    assert_eq!(
        decide(
            t("2026-12-01T00:00:00Z"),
            &ntf("contract.start", "PT0S"),
            clock.now()
        ),
        Ok(true)
    );
    assert_eq!(
        decide(
            t("2026-12-25T00:00:00Z"),
            &ntf("contract.start", "PT0S"),
            clock.now()
        ),
        Ok(false)
    );
}

#[test]
fn a_past_fire_time_beyond_catch_up_is_skipped_with_a_reason() {
    let now = t("2026-12-02T00:00:01Z");
    let p = plan(&contract(None), &[ntf("contract.start", "PT0S")], &[], now);
    let [s] = &p.schedules[..] else { panic!() };
    let reason = "fire time 2026-12-01T00:00:00Z had passed by more than the catch-up window PT24H when it was planned";
    assert_eq!(
        (s.state, s.late, s.reason.as_deref()),
        (ScheduleState::Skipped, false, Some(reason))
    );
    assert!(p.timers.is_empty());
    let [d] = &p.skipped[..] else {
        panic!("{:?}", p.skipped)
    };
    assert_eq!(
        (d.status, d.reason.as_deref(), d.endpoint_id.as_deref()),
        (DeliveryStatus::Skipped, Some(reason), None)
    );
    assert_eq!(
        (
            d.schedule_id.as_str(),
            d.webhook_id.clone(),
            d.scheduled_for
        ),
        (s.id.as_str(), s.webhook_id(), s.fire_at)
    );
    assert_eq!(
        (
            d.notification_id.as_deref(),
            d.event_type,
            d.customer_id.as_str()
        ),
        (Some(s.notification_id.as_str()), s.event_type, "c_1")
    );
}

#[test]
fn zero_catch_up_never_fires_late() {
    let n = ntf_with(json!({"event_type": "contract.start", "catch_up": "PT0S"}));
    let p = plan(
        &contract(None),
        std::slice::from_ref(&n),
        &[],
        t("2026-12-01T00:00:01Z"),
    );
    assert_eq!(in_state(&p, ScheduleState::Skipped).len(), 1);
    assert_eq!(p.skipped.len(), 1);
    assert!(p.timers.is_empty());
    assert!(decide(t("2026-12-01T00:00:00Z"), &n, t("2026-12-01T00:00:00.001Z")).is_err());
}

#[test]
fn a_fired_or_skipped_schedule_is_never_planned_again() {
    let n = ntf("contract.end", "-P30D");
    let record = contract(Some("2026-12-31T00:00:00Z"));
    for state in [ScheduleState::Fired, ScheduleState::Skipped] {
        let mut existing = apply(&[], &plan(&record, std::slice::from_ref(&n), &[], now()));
        existing[0].state = state;
        assert_eq!(
            plan(&record, std::slice::from_ref(&n), &existing, now()),
            Plan::default()
        );
        // Not even when its fire time would move.
        let mut moved = n.clone();
        moved.patch(&json!({"offset": "-P7D"}), now()).unwrap();
        assert_eq!(plan(&record, &[moved], &existing, now()), Plan::default());
    }
}

// ------------------------------------------------ 9. filters

#[test]
fn customer_filter() {
    let n = ntf_with(
        json!({"event_type": "contract.start", "filter": {"customer_ids": ["c_1", "c_2"]}}),
    );
    assert_eq!(
        plan(&contract(None), std::slice::from_ref(&n), &[], now())
            .schedules
            .len(),
        1
    );
    let mut other = contract_data("2026-12-01T00:00:00Z", None);
    other["customer_id"] = json!("c_3");
    assert!(plan(&record(EntityKind::Contract, other), &[n], &[], now()).is_empty());
}

#[test]
fn custom_field_filter_and_an_edit_that_stops_matching() {
    let n = ntf_with(
        json!({"event_type": "credit.segment.end", "filter": {"custom_fields": {"tier": "enterprise"}}}),
    );
    let first = plan(&credit(), std::slice::from_ref(&n), &[], now());
    assert_eq!(first.schedules.len(), 3);
    let existing = apply(&[], &first);

    let mut free = grant_data(EntityKind::Credit, "cr_1", &CREDIT_SEGMENTS);
    free["custom_fields"] = json!({"tier": "free"});
    let free = edited(EntityKind::Credit, free, 2);
    assert!(plan(&free, std::slice::from_ref(&n), &[], now()).is_empty());
    let ids: Vec<&str> = existing.iter().map(|s| s.id.as_str()).collect();
    let p = plan(&free, std::slice::from_ref(&n), &existing, now());
    assert_cancelled(&p, &ids, "notification filter no longer matches");

    let event = parse_event(
        &json!({"id": "wr_2", "type": "credit.edit", "occurred_at": NOW,
                                    "data": free.entity.snapshot()}),
    )
    .unwrap();
    let w = ntf_with(
        json!({"event_type": "credit.edit", "filter": {"custom_fields": {"tier": "enterprise"}}}),
    );
    assert!(write_schedules(&free, &event, std::slice::from_ref(&w), now()).is_empty());
    assert_eq!(write_schedules(&credit(), &event, &[w], now()).len(), 1);
}

// ------------------------------------------------ 10. stale_reason at fire time

#[test]
fn stale_reason_at_fire_time() {
    let n = ntf("contract.end", "-P30D");
    let record = contract(Some("2026-12-31T00:00:00Z"));
    let s = plan(&record, std::slice::from_ref(&n), &[], now())
        .schedules
        .remove(0);
    let due = s.fire_at;
    let reason = |record: Option<&EntityRecord>, n: Option<&Notification>, at: Time| {
        stale_reason(&s, record, n, at)
    };

    assert_eq!(reason(Some(&record), Some(&n), due), None);
    assert_eq!(
        reason(Some(&record), Some(&n), due + Duration::hours(23)),
        None
    );
    let moved = edited(
        EntityKind::Contract,
        contract_data("2026-12-01T00:00:00Z", Some("2027-01-31T00:00:00Z")),
        2,
    );
    assert_eq!(
        reason(Some(&moved), Some(&n), due).as_deref(),
        Some("moment moved or removed")
    );
    assert_eq!(
        reason(Some(&contract(None)), Some(&n), due).as_deref(),
        Some("moment moved or removed")
    );
    assert_eq!(
        reason(Some(&archived(record.clone())), Some(&n), due).as_deref(),
        Some("entity archived")
    );
    assert_eq!(
        reason(None, Some(&n), due).as_deref(),
        Some("entity not found")
    );
    let mut off = n.clone();
    off.patch(&json!({"enabled": false}), now()).unwrap();
    assert_eq!(
        reason(Some(&record), Some(&off), due).as_deref(),
        Some("notification disabled")
    );
    assert_eq!(
        reason(Some(&record), None, due).as_deref(),
        Some("notification deleted")
    );
    let mut edited_offset = n.clone();
    edited_offset
        .patch(&json!({"offset": "-P7D"}), now())
        .unwrap();
    assert_eq!(
        reason(Some(&record), Some(&edited_offset), due).as_deref(),
        Some("moment moved or removed")
    );

    let missed =
        reason(Some(&record), Some(&n), due + Duration::hours(25)).expect("missed catch-up");
    assert_eq!(
        missed,
        "fire time 2026-12-01T00:00:00Z had passed by more than the catch-up window PT24H when it came due (was the process down?)"
    );
}

#[test]
fn a_write_schedule_stands_whatever_the_entity_does_later() {
    let defaults = Notification::system_defaults(now());
    let event = parse_event(
        &json!({"id": "wr_3", "type": "contract.create", "occurred_at": NOW,
                                    "data": contract_data("2026-12-01T00:00:00Z", None)}),
    )
    .unwrap();
    let s = write_schedules(&contract(None), &event, &defaults, now()).remove(0);
    let n = defaults.iter().find(|n| n.id == s.notification_id);
    assert_eq!(
        stale_reason(&s, Some(&archived(contract(None))), n, now()),
        None
    );
    assert_eq!(stale_reason(&s, None, n, now() + Duration::hours(1)), None);
    assert!(stale_reason(&s, None, n, now() + Duration::hours(25))
        .unwrap()
        .contains("was the process down?"));
}

#[test]
fn zero_catch_up_still_fires_on_time() {
    // Timers fire at or just after fire_at; the deliverer itself only calls a
    // fire late after 60 s. A PT0S notification must still fire on time.
    let n = ntf_with(json!({"event_type": "contract.start", "catch_up": "PT0S"}));
    let record = contract(None);
    let s = plan(&record, std::slice::from_ref(&n), &[], now())
        .schedules
        .remove(0);
    assert_eq!(s.state, ScheduleState::Pending);
    assert_eq!(stale_reason(&s, Some(&record), Some(&n), s.fire_at), None);
    for late_by in [Duration::milliseconds(1), Duration::seconds(1)] {
        assert_eq!(
            stale_reason(&s, Some(&record), Some(&n), s.fire_at + late_by),
            None,
            "{late_by}"
        );
    }
    // The same for a write-based notification: due at ingest, fired just after.
    let w = ntf_with(json!({"event_type": "contract.create", "catch_up": "PT0S"}));
    let event = parse_event(
        &json!({"id": "wr_4", "type": "contract.create", "occurred_at": NOW,
                                    "data": record.entity.snapshot()}),
    )
    .unwrap();
    let ws = write_schedules(&record, &event, std::slice::from_ref(&w), now()).remove(0);
    assert_eq!(
        stale_reason(
            &ws,
            Some(&record),
            Some(&w),
            now() + Duration::milliseconds(5)
        ),
        None
    );
}

// ------------------------------------------------ 11. deterministic ids

#[test]
fn schedule_ids_are_deterministic() {
    let notifications = [
        ntf("commit.segment.start", "PT0S"),
        ntf("commit.segment.end", "PT0S"),
    ];
    let a = plan(&commit(), &notifications, &[], now());
    let b = plan(&commit(), &notifications, &[], t("2026-11-26T00:00:00Z"));
    let ids = |p: &Plan| p.schedules.iter().map(|s| s.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&a), ids(&b));
    for s in &a.schedules {
        let hash = s.id.strip_prefix("sch_").unwrap();
        assert_eq!(hash.len(), 32);
        assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(s.webhook_id(), format!("msg_{hash}"));
    }
    // Two segments x start/end: all different.
    let mut unique = ids(&a);
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 4);
    // Another notification of the same type differs.
    let other = plan(
        &commit(),
        &[ntf("commit.segment.start", "PT0S")],
        &[],
        now(),
    );
    assert!(other.schedules.iter().all(|s| !ids(&a).contains(&s.id)));
    // A moved moment differs; an offset edit keeps the id.
    let mut segments = COMMIT_SEGMENTS;
    segments[1].2 = "2027-03-01T00:00:00Z";
    let moved = record(
        EntityKind::Commit,
        grant_data(EntityKind::Commit, "cm_1", &segments),
    );
    let c = plan(&moved, &notifications, &[], now());
    assert_eq!(ids(&a).iter().filter(|id| ids(&c).contains(id)).count(), 3);

    let event = |id: &str| {
        parse_event(&json!({"id": id, "type": "commit.edit", "occurred_at": NOW, "data": commit().entity.snapshot()})).unwrap()
    };
    let defaults = Notification::system_defaults(now());
    let w1 = write_schedules(&commit(), &event("wr_1"), &defaults, now());
    let w1_again = write_schedules(
        &commit(),
        &event("wr_1"),
        &defaults,
        t("2026-11-27T00:00:00Z"),
    );
    let w2 = write_schedules(&commit(), &event("wr_2"), &defaults, now());
    assert_eq!(w1[0].id, w1_again[0].id);
    assert_ne!(w1[0].id, w2[0].id);
}

// ------------------------------------------------ 12. payloads

/// A webhook's `data`, without the entity snapshot under `kind`.
fn data_without(body: &Value, kind: &str) -> Value {
    let mut data = body["data"].clone();
    data.as_object_mut().unwrap().remove(kind);
    data
}

#[test]
fn a_segment_event_payload_carries_the_segment() {
    let n = ntf("commit.segment.end", "-P7D");
    let record = EntityRecord {
        version: 3,
        ..commit()
    };
    let p = plan(&record, std::slice::from_ref(&n), &[], now());
    let s = &p.schedules[1];
    let body = payload::build(s, Some(&record), false);
    assert_eq!(body["id"], json!(s.webhook_id()));
    assert_eq!(body["type"], json!("commit.segment.end"));
    assert_eq!(body["timestamp"], json!("2027-01-25T00:00:00Z"));
    assert_eq!(body["data"]["commit"], record.entity.snapshot());
    assert_eq!(
        data_without(&body, "commit"),
        json!({"customer_id": "c_1", "commit_id": "cm_1", "contract_id": "k_1",
               "event_time": "2027-02-01T00:00:00Z", "scheduled_for": "2027-01-25T00:00:00Z",
               "offset": "-P7D", "notification_id": n.id, "late": false, "version": 3,
               "custom_fields": {"tier": "enterprise"},
               "segment_id": "s2", "segment_index": 1, "segment_count": 2,
               "segment": {"id": "s2", "starting_at": "2027-01-01T00:00:00Z",
                           "ending_before": "2027-02-01T00:00:00Z", "amount": 100.0}})
    );

    let n = ntf("credit.segment.start", "PT0S");
    let c = plan(&credit(), std::slice::from_ref(&n), &[], now())
        .schedules
        .remove(0);
    let body = payload::build(&c, Some(&credit()), true);
    assert_eq!(body["data"]["credit"], credit().entity.snapshot());
    assert_eq!(
        data_without(&body, "credit"),
        json!({"customer_id": "c_1", "credit_id": "cr_1", "contract_id": "k_1",
               "event_time": "2026-12-15T00:00:00Z", "scheduled_for": "2026-12-15T00:00:00Z",
               "offset": "PT0S", "notification_id": n.id, "late": true, "version": 1,
               "custom_fields": {"tier": "enterprise"},
               "segment_id": "c1", "segment_index": 0, "segment_count": 3,
               "segment": credit().entity.snapshot()["access_schedule"][0]})
    );
}

#[test]
fn a_write_event_payload_carries_the_write_as_written() {
    let defaults = Notification::system_defaults(now());
    let data = contract_data("2026-12-01T00:00:00Z", Some("2026-12-31T00:00:00Z"));
    let event = parse_event(&json!({"id": "wr_5", "type": "contract.edit",
                                    "occurred_at": "2026-11-24T09:30:00+01:00", "data": data}))
    .unwrap();
    let at_write = edited(EntityKind::Contract, data.clone(), 2);
    let s = write_schedules(&at_write, &event, &defaults, now()).remove(0);
    // A later write changes the entity before the webhook is built.
    let mut later = edited(EntityKind::Contract, data, 3);
    if let Entity::Contract(c) = &mut later.entity {
        c.name = Some("Renamed".into());
        c.custom_fields.insert("tier".into(), "free".into());
    }

    let body = payload::build(&s, Some(&later), false);
    assert_eq!(body["id"], json!(s.webhook_id()));
    assert_eq!(body["type"], json!("contract.edit"));
    assert_eq!(body["data"]["contract"], at_write.entity.snapshot());
    assert_eq!(body["data"]["contract"]["name"], json!("Main"));
    assert_eq!(
        data_without(&body, "contract"),
        json!({"customer_id": "c_1", "contract_id": "k_1", "occurred_at": "2026-11-24T08:30:00Z",
               "event_time": "2026-11-24T08:30:00Z", "scheduled_for": NOW, "offset": "PT0S",
               "notification_id": "ntf_system_contract_edit", "late": false, "version": 2,
               "custom_fields": {"tier": "enterprise"}})
    );
}

#[test]
fn segment_count_follows_the_entity_at_delivery() {
    let n = ntf("commit.segment.end", "PT0S");
    let one = record(
        EntityKind::Commit,
        grant_data(EntityKind::Commit, "cm_1", &COMMIT_SEGMENTS[..1]),
    );
    let existing = apply(&[], &plan(&one, std::slice::from_ref(&n), &[], now()));
    let two = edited(
        EntityKind::Commit,
        grant_data(EntityKind::Commit, "cm_1", &COMMIT_SEGMENTS),
        2,
    );
    let stored = apply(
        &existing,
        &plan(&two, std::slice::from_ref(&n), &existing, now()),
    );
    let s1 = stored
        .iter()
        .find(|s| s.segment.as_ref().unwrap().id == "s1")
        .unwrap();
    let data = &payload::build(s1, Some(&two), false)["data"];
    assert_eq!(
        data["commit"]["access_schedule"].as_array().unwrap().len(),
        2
    );
    assert_eq!(
        data["segment_count"],
        json!(2),
        "the commit has two segments now"
    );
}
