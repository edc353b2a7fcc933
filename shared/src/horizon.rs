//! The horizon: a store need not keep a schedule row for every moment of
//! the year ahead. A pending moment that fires beyond the horizon and was
//! never stored is exactly what the planner derives from its entity and the
//! notifications, so it is deferred instead: the entity remembers when its
//! earliest deferred moment fires, and is planned again as that comes
//! within the horizon (`Service::materialise`). The upcoming view derives
//! the deferred moments in the meantime (`deferred_moments`).

use crate::entity::{EntityKey, EntityRecord};
use crate::notification::Notification;
pub use crate::planner::Deferral;
use crate::planner::{desired, plan, time_schedule, wanted_moments, Plan, TimerChange};
use crate::schedule::{Schedule, ScheduleState};
use crate::time::Time;
use std::collections::HashSet;

/// One entity's plan with the moments beyond `edge` deferred: `plan`, then
/// `defer_beyond`. A new entity (nothing stored) has all of its later
/// moments deferred, so they are never built (with monthly segments, most
/// of a bulk import's moments).
pub fn plan_deferring(
    record: &EntityRecord,
    notifications: &[Notification],
    existing: &[Schedule],
    now: Time,
    edge: Time,
    whole: bool,
) -> Plan {
    if !existing.is_empty() {
        let plan = plan(record, notifications, existing, now);
        return defer_beyond(plan, record.key(), existing, edge, whole);
    }
    let mut plan = Plan::default();
    let mut earliest: Option<Time> = None;
    for (n, moment, fire_at) in wanted_moments(record, notifications) {
        if fire_at > edge {
            earliest = Some(earliest.map_or(fire_at, |e| e.min(fire_at)));
            continue;
        }
        let notification = &notifications[n];
        let schedule = time_schedule(&record.entity, notification, &moment, fire_at, now);
        plan.pending_or_skipped(schedule, notification, now, false);
    }
    if whole || earliest.is_some() {
        plan.deferred.push(Deferral {
            entity: record.key(),
            earliest,
            whole,
        });
    }
    plan
}

/// Takes out of one entity's `plan` the pending moments that fire after
/// `edge` and have no stored schedule (`existing`), and records the
/// earliest of them. A stored one stays in the plan (moved or replanned
/// from cancelled): its row must change, and keeping it is always correct.
pub fn defer_beyond(
    mut plan: Plan,
    entity: EntityKey,
    existing: &[Schedule],
    edge: Time,
    whole: bool,
) -> Plan {
    let stored: HashSet<&str> = existing.iter().map(|s| s.id.as_str()).collect();
    let mut deferred = HashSet::new();
    let mut earliest: Option<Time> = None;
    plan.schedules.retain(|s| {
        let defer = s.state == ScheduleState::Pending
            && s.write.is_none()
            && s.fire_at > edge
            && !stored.contains(s.id.as_str());
        if defer {
            earliest = Some(earliest.map_or(s.fire_at, |e| e.min(s.fire_at)));
            deferred.insert(s.id.clone());
        }
        !defer
    });
    plan.timers
        .retain(|t| !matches!(t, TimerChange::Set { id, .. } if deferred.contains(id)));
    if whole || earliest.is_some() {
        plan.deferred.push(Deferral {
            entity,
            earliest,
            whole,
        });
    }
    plan
}

/// The deferred moments of an entity whose earliest deferred moment fires
/// at `from`: what the planner wants from then on that is not stored.
pub fn deferred_moments(
    record: &EntityRecord,
    notifications: &[Notification],
    from: Time,
    stored: &HashSet<String>,
    now: Time,
) -> Vec<Schedule> {
    desired(record, notifications, now)
        .into_iter()
        .map(|(schedule, _)| schedule)
        .filter(|s| s.fire_at >= from && !stored.contains(&s.id))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_time;
    use serde_json::json;

    fn t(s: &str) -> Time {
        parse_time(s).unwrap()
    }

    fn contract() -> EntityRecord {
        let body = json!({"id": "wc_1", "type": "contract.create", "occurred_at": "2026-12-01T00:00:00Z",
            "data": {"id": "k_1", "customer_id": "c_1",
                     "starting_at": "2026-12-02T00:00:00Z", "ending_before": "2027-12-01T00:00:00Z"}});
        let event = crate::write_event::parse_events(&body).unwrap().remove(0);
        let crate::write_event::Event::Write(write) = event else {
            panic!("a write")
        };
        let crate::write_event::Change::Put(entity) = write.change else {
            panic!("a put")
        };
        EntityRecord {
            entity,
            version: 1,
            occurred_at: t("2026-12-01T00:00:00Z"),
            archived_at: None,
        }
    }

    fn notifications() -> Vec<Notification> {
        ["contract.start", "contract.end"]
            .iter()
            .map(|event_type| {
                Notification::create(
                    &json!({"event_type": event_type, "offset": "PT0S"}),
                    t("2026-11-01T00:00:00Z"),
                )
                .unwrap()
            })
            .collect()
    }

    #[test]
    fn keeps_the_moments_within_the_edge_and_defers_the_later_ones() {
        let (record, notifications) = (contract(), notifications());
        let now = t("2026-12-01T00:00:00Z");
        let full = plan(&record, &notifications, &[], now);
        let edge = t("2026-12-03T00:00:00Z");
        let kept = defer_beyond(full.clone(), record.key(), &[], edge, true);
        assert_eq!(kept.schedules.len(), 1);
        assert_eq!(kept.schedules[0].fire_at, t("2026-12-02T00:00:00Z"));
        assert_eq!(kept.timers.len(), 1, "no timer for the deferred end");
        assert_eq!(
            kept.deferred,
            vec![Deferral {
                entity: record.key(),
                earliest: Some(t("2027-12-01T00:00:00Z")),
                whole: true
            }]
        );
        let derived = deferred_moments(
            &record,
            &notifications,
            t("2027-12-01T00:00:00Z"),
            &kept.schedules.iter().map(|s| s.id.clone()).collect(),
            now,
        );
        let end = full.schedules.iter().find(|s| s.fire_at > edge).unwrap();
        assert_eq!(derived.len(), 1);
        assert_eq!(derived[0].id, end.id);
    }

    #[test]
    fn a_new_entity_is_planned_as_plan_then_defer_beyond_would() {
        let (record, notifications) = (contract(), notifications());
        let now = t("2026-12-01T00:00:00Z");
        for edge in [
            "2026-11-01T00:00:00Z",
            "2026-12-03T00:00:00Z",
            "2028-01-01T00:00:00Z",
        ] {
            for whole in [true, false] {
                let full = plan(&record, &notifications, &[], now);
                assert_eq!(
                    plan_deferring(&record, &notifications, &[], now, t(edge), whole),
                    defer_beyond(full, record.key(), &[], t(edge), whole),
                    "edge {edge}, whole {whole}"
                );
            }
        }
    }

    #[test]
    fn a_stored_moment_that_moves_beyond_the_edge_stays_in_the_plan() {
        let (record, notifications) = (contract(), notifications());
        let now = t("2026-12-01T00:00:00Z");
        let mut stored = plan(&record, &notifications, &[], now).schedules;
        stored[1].fire_at = t("2026-12-02T12:00:00Z");
        let replanned = plan(&record, &notifications, &stored, now);
        let kept = defer_beyond(replanned, record.key(), &stored, now, false);
        assert_eq!(kept.schedules.len(), 1, "the moved end is kept");
        assert_eq!(kept.schedules[0].id, stored[1].id);
        assert!(kept.deferred.is_empty(), "nothing new was deferred");
    }

    #[test]
    fn a_whole_plan_with_nothing_beyond_the_edge_clears_the_deferral() {
        let (record, notifications) = (contract(), notifications());
        let now = t("2026-12-01T00:00:00Z");
        let full = plan(&record, &notifications, &[], now);
        let kept = defer_beyond(
            full.clone(),
            record.key(),
            &[],
            t("2028-01-01T00:00:00Z"),
            true,
        );
        assert_eq!(kept.schedules, full.schedules);
        assert_eq!(kept.deferred[0].earliest, None);
        let partial = defer_beyond(full, record.key(), &[], t("2028-01-01T00:00:00Z"), false);
        assert!(partial.deferred.is_empty());
    }
}
