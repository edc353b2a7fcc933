//! The planner: from an entity's state, the notifications and the time, the
//! schedules that should exist, and the changes that get there from the
//! schedules that do exist. Pure: no I/O, time passed in.

use crate::entity::{Entity, EntityKey, EntityRecord};
use crate::event_type::{Edge, EventType};
use crate::ids::hashed_id;
use crate::notification::Notification;
use crate::schedule::{Delivery, Schedule, ScheduleState, SegmentRef, WriteInfo};
use crate::time::{format_time, Time};
use crate::write_event::WriteEvent;
use chrono::Duration;
use std::collections::HashMap;

/// The earliest deferred moment of an entity after a plan.
#[derive(Clone, Debug, PartialEq)]
pub struct Deferral {
    pub entity: EntityKey,
    pub earliest: Option<Time>,
    /// Planned under every notification, so `earliest` replaces what the
    /// entity had; otherwise (one notification's fan-out) it can only
    /// bring it sooner.
    pub whole: bool,
}

/// A time-based moment of an entity.
#[derive(Clone, Debug, PartialEq)]
pub struct Moment {
    pub event_type: EventType,
    pub event_time: Time,
    pub segment: Option<SegmentRef>,
}

/// Every time-based moment of an entity: a contract's start and end (if it
/// has one), each segment's start and end.
pub fn moments(entity: &Entity) -> Vec<Moment> {
    let kind = entity.kind();
    match entity {
        Entity::Contract(c) => {
            let mut moments = vec![Moment {
                event_type: EventType::ContractStart,
                event_time: c.starting_at,
                segment: None,
            }];
            if let Some(end) = c.ending_before {
                moments.push(Moment {
                    event_type: EventType::ContractEnd,
                    event_time: end,
                    segment: None,
                });
            }
            moments
        }
        Entity::Commit(g) | Entity::Credit(g) => {
            let count = g.access_schedule.len();
            g.access_schedule
                .iter()
                .enumerate()
                .flat_map(|(index, s)| {
                    let segment = SegmentRef {
                        id: s.id.clone(),
                        index,
                        count,
                    };
                    [(Edge::Start, s.starting_at), (Edge::End, s.ending_before)].map(
                        |(edge, event_time)| Moment {
                            event_type: EventType::for_moment(kind, edge),
                            event_time,
                            segment: Some(segment.clone()),
                        },
                    )
                })
                .collect()
        }
    }
}

/// A change the scheduler must make so that timers match what is due.
/// A timer's id is a schedule's (`sch_`: fire it) or a delivery's (`dlv_`:
/// attempt it), so retries are timers too.
#[derive(Clone, Debug, PartialEq)]
pub enum TimerChange {
    /// Create, or move, a timer.
    Set {
        id: String,
        at: Time,
    },
    Clear {
        id: String,
    },
}

/// What to write: schedules to upsert, timers to change, skips to record,
/// and the moments kept out of the store beyond the horizon (`horizon`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub schedules: Vec<Schedule>,
    pub timers: Vec<TimerChange>,
    pub skipped: Vec<Delivery>,
    pub deferred: Vec<Deferral>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.schedules.is_empty() && self.deferred.is_empty()
    }

    pub fn extend(&mut self, other: Plan) {
        self.schedules.extend(other.schedules);
        self.timers.extend(other.timers);
        self.skipped.extend(other.skipped);
        self.deferred.extend(other.deferred);
    }

    /// `had_timer`: the schedule was pending before, so a skip must clear its timer.
    pub(crate) fn pending_or_skipped(
        &mut self,
        mut schedule: Schedule,
        notification: &Notification,
        now: Time,
        had_timer: bool,
    ) {
        match decide(schedule.fire_at, notification, now) {
            Ok(late) => {
                schedule.state = ScheduleState::Pending;
                schedule.late = late;
                schedule.reason = None;
                self.timers.push(TimerChange::Set {
                    id: schedule.id.clone(),
                    at: schedule.fire_at,
                });
            }
            Err(reason) => {
                if had_timer {
                    self.timers.push(TimerChange::Clear {
                        id: schedule.id.clone(),
                    });
                }
                schedule.state = ScheduleState::Skipped;
                schedule.late = false;
                self.skipped
                    .push(Delivery::skipped(&schedule, &reason, now));
                schedule.reason = Some(reason);
            }
        }
        self.schedules.push(schedule);
    }
}

/// A fire time in the future is on time; a past one within the catch-up
/// window fires at once, late; an older one is skipped, with the reason.
pub fn decide(fire_at: Time, notification: &Notification, now: Time) -> Result<bool, String> {
    decide_with_grace(fire_at, notification, now, Duration::zero())
}

/// How late a timer may go off and still count as on time: timers fire at
/// or just after their time, never exactly at it.
pub const FIRE_GRACE_SECS: i64 = 60;

fn decide_with_grace(
    fire_at: Time,
    notification: &Notification,
    now: Time,
    grace: Duration,
) -> Result<bool, String> {
    if fire_at >= now {
        return Ok(false);
    }
    let deadline = notification.catch_up.apply(fire_at).unwrap_or(fire_at) + grace;
    if now <= deadline {
        Ok(true)
    } else {
        Err(format!(
            "fire time {} had passed by more than the catch-up window {} when it was planned",
            format_time(fire_at),
            notification.catch_up
        ))
    }
}

/// The schedules that should exist for an entity under these notifications.
pub fn desired(
    record: &EntityRecord,
    notifications: &[Notification],
    now: Time,
) -> Vec<(Schedule, usize)> {
    wanted_moments(record, notifications)
        .into_iter()
        .map(|(n, moment, fire_at)| {
            let schedule = time_schedule(&record.entity, &notifications[n], &moment, fire_at, now);
            (schedule, n)
        })
        .collect()
}

/// What `desired` is made of, before any schedule is built: each moment
/// wanted, with the index of the notification that wants it and its fire time.
pub(crate) fn wanted_moments(
    record: &EntityRecord,
    notifications: &[Notification],
) -> Vec<(usize, Moment, Time)> {
    if record.is_archived() {
        return Vec::new();
    }
    let entity = &record.entity;
    let moments = moments(entity);
    let mut wanted = Vec::new();
    for (n, notification) in notifications.iter().enumerate() {
        if !notification.event_type.is_time_based() || !notification.applies_to(entity) {
            continue;
        }
        for moment in moments
            .iter()
            .filter(|m| m.event_type == notification.event_type)
        {
            if let Some(fire_at) = notification.offset.apply(moment.event_time) {
                wanted.push((n, moment.clone(), fire_at));
            }
        }
    }
    wanted
}

pub(crate) fn time_schedule(
    entity: &Entity,
    notification: &Notification,
    moment: &Moment,
    fire_at: Time,
    now: Time,
) -> Schedule {
    let event_time = format_time(moment.event_time);
    let segment_id = moment.segment.as_ref().map_or("", |s| s.id.as_str());
    let id = hashed_id(
        "sch",
        &[
            &notification.id,
            entity.kind().as_str(),
            entity.id(),
            moment.event_type.as_str(),
            segment_id,
            &event_time,
        ],
    );
    Schedule {
        id,
        notification_id: notification.id.clone(),
        event_type: moment.event_type,
        customer_id: entity.customer_id().to_string(),
        entity: entity.key(),
        segment: moment.segment.clone(),
        event_time: moment.event_time,
        offset: notification.offset.clone(),
        fire_at,
        state: ScheduleState::Pending,
        late: false,
        reason: None,
        write: None,
        updated_at: now,
    }
}

/// The changes that take `existing` (this entity's time-based schedules of
/// the notifications in scope) to what `notifications` want now.
/// A fired or skipped schedule is never planned again: nothing fires twice.
pub fn plan(
    record: &EntityRecord,
    notifications: &[Notification],
    existing: &[Schedule],
    now: Time,
) -> Plan {
    let mut by_id: HashMap<&str, &Schedule> = existing.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut plan = Plan::default();
    for (wanted, n) in desired(record, notifications, now) {
        let notification = &notifications[n];
        match by_id.remove(wanted.id.as_str()) {
            None => plan.pending_or_skipped(wanted, notification, now, false),
            Some(old) if old.state == ScheduleState::Cancelled => {
                plan.pending_or_skipped(wanted, notification, now, false)
            }
            Some(old) if old.state == ScheduleState::Pending && old.fire_at != wanted.fire_at => {
                plan.pending_or_skipped(wanted, notification, now, true)
            }
            Some(_) => {}
        }
    }
    for old in by_id
        .into_values()
        .filter(|s| s.state == ScheduleState::Pending && s.write.is_none())
    {
        let reason = cancel_reason(
            record,
            notifications.iter().find(|n| n.id == old.notification_id),
        );
        let mut cancelled = old.clone();
        cancelled.state = ScheduleState::Cancelled;
        cancelled.reason = Some(reason.to_string());
        cancelled.updated_at = now;
        plan.timers.push(TimerChange::Clear { id: old.id.clone() });
        plan.schedules.push(cancelled);
    }
    plan
}

fn cancel_reason(record: &EntityRecord, notification: Option<&Notification>) -> &'static str {
    match notification {
        _ if record.is_archived() => "entity archived",
        None => "notification deleted",
        Some(n) if !n.enabled => "notification disabled",
        Some(n)
            if !n
                .filter
                .matches(record.entity.customer_id(), record.entity.custom_fields()) =>
        {
            "notification filter no longer matches"
        }
        Some(_) => "moment moved or removed",
    }
}

/// Schedules due now for the write-based notifications a write triggers.
pub fn write_schedules(
    record: &EntityRecord,
    event: &WriteEvent,
    notifications: &[Notification],
    now: Time,
) -> Vec<Schedule> {
    let event_type = EventType::for_write(event.kind, event.action);
    let entity = &record.entity;
    notifications
        .iter()
        .filter(|n| n.event_type == event_type && n.enabled)
        .filter(|n| {
            n.filter
                .matches(entity.customer_id(), entity.custom_fields())
        })
        .map(|n| Schedule {
            id: hashed_id(
                "sch",
                &[
                    &n.id,
                    event.kind.as_str(),
                    entity.id(),
                    event_type.as_str(),
                    &event.id,
                ],
            ),
            notification_id: n.id.clone(),
            event_type,
            customer_id: entity.customer_id().to_string(),
            entity: entity.key(),
            segment: None,
            event_time: event.occurred_at,
            offset: n.offset.clone(),
            fire_at: now,
            state: ScheduleState::Pending,
            late: false,
            reason: None,
            write: Some(WriteInfo {
                event_id: event.id.clone(),
                occurred_at: event.occurred_at,
                version: record.version,
                snapshot: entity.snapshot(),
            }),
            updated_at: now,
        })
        .collect()
}

/// Whether a due schedule still stands: the guard run when it fires.
/// Returns the reason to skip it, if any.
pub fn stale_reason(
    schedule: &Schedule,
    record: Option<&EntityRecord>,
    notification: Option<&Notification>,
    now: Time,
) -> Option<String> {
    let Some(notification) = notification else {
        return Some("notification deleted".into());
    };
    if !notification.enabled {
        return Some("notification disabled".into());
    }
    if schedule.write.is_none() {
        let Some(record) = record else {
            return Some("entity not found".into());
        };
        if record.is_archived() {
            return Some("entity archived".into());
        }
        let still_wanted = desired(record, std::slice::from_ref(notification), now)
            .iter()
            .any(|(s, _)| s.id == schedule.id && s.fire_at == schedule.fire_at);
        if !still_wanted {
            return Some("moment moved or removed".into());
        }
    }
    let grace = Duration::seconds(FIRE_GRACE_SECS);
    if let Err(reason) = decide_with_grace(schedule.fire_at, notification, now, grace) {
        return Some(reason.replace(
            "when it was planned",
            "when it came due (was the process down?)",
        ));
    }
    None
}
