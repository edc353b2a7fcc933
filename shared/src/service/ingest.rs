//! `POST /v1/events`: a batch of writes applied all at once or not at all.

use super::fire::fire_one;
use super::signal_decision::decide_signals;
use super::Service;
use crate::endpoint::Endpoint;
use crate::entity::EntityRecord;
use crate::error::ApiError;
use crate::event_type::WriteAction;
use crate::notification::Notification;
use crate::planner::{write_schedules, Plan, TimerChange};
use crate::ports::UsageKey;
use crate::ports::{StoreError, WriteCommit, WriteState};
use crate::signal::{month_of, Reading};
use crate::time::Time;
use crate::write_event::{parse_events, Change, Event, WriteEvent};
use serde::Serialize;
use std::collections::HashSet;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WriteResult {
    pub id: String,
    pub status: &'static str,
}

/// Conditional writes that lose a race are retried this many times.
const ATTEMPTS: usize = 8;

impl Service {
    pub async fn ingest(&self, body: &serde_json::Value) -> Result<Vec<WriteResult>, ApiError> {
        let events = parse_events(body)?;
        let batch = body.get("events").is_some();
        let event_ids: Vec<String> = events.iter().map(|e| e.id().to_string()).collect();
        let (mut writes, mut signals) = (Vec::new(), Vec::new());
        for (i, event) in events.iter().enumerate() {
            match event {
                Event::Write(write) => writes.push((i, write)),
                Event::Signal(signal) => signals.push((i, signal)),
            }
        }
        let mut keys: Vec<_> = writes.iter().map(|(_, w)| w.key()).collect();
        keys.sort();
        keys.dedup();
        let mut customers: Vec<String> =
            signals.iter().map(|(_, s)| s.customer_id.clone()).collect();
        customers.sort();
        customers.dedup();
        let mut usage: Vec<UsageKey> = signals
            .iter()
            .filter_map(|(_, s)| match &s.reading {
                Reading::Usage {
                    metric, timestamp, ..
                } => Some((s.customer_id.clone(), metric.clone(), month_of(*timestamp))),
                _ => None,
            })
            .collect();
        usage.sort();
        usage.dedup();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                // A conflict: two writers of one entity or total (two
                // function invocations) met. A random pause, longer each
                // time and taken before the lock, so the next try does not
                // meet the other again.
                let most = 10 * attempt as u64;
                let pause = rand::Rng::gen_range(&mut rand::thread_rng(), 1..=most);
                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
            }
            // Batches of writes alone are decided side by side, each one
            // while another commits: their commits are conditional on every
            // event id and entity version they read, so of two that meet on
            // one the second fails whole and is retried alone. Signals
            // (running totals) and retries take the lock to themselves.
            let (_shared, _alone);
            if signals.is_empty() && attempt == 0 {
                _shared = self.changes.read().await;
            } else {
                _alone = self.changes.write().await;
            }
            let mut state = self.store.write_state(&event_ids, &keys).await?;
            let notifications = self.store.notifications().await?;
            let endpoints = match self.config.fire_writes_at_ingest || !signals.is_empty() {
                true => self.store.endpoints().await?,
                false => Vec::new(),
            };
            let now = self.clock.now();
            let mut seen = std::mem::take(&mut state.seen_events);
            let (mut results, mut commit) = decide(
                &writes,
                batch,
                state,
                &mut seen,
                &notifications,
                self.config.fire_writes_at_ingest.then_some(&endpoints[..]),
                now,
                self.config.edge(now),
            )?;
            if !signals.is_empty() {
                let signal_state = self.store.signal_state(&customers, &usage).await?;
                let outcome = decide_signals(
                    &signals,
                    &mut seen,
                    signal_state,
                    &notifications,
                    &endpoints,
                    now,
                );
                results.extend(outcome.results);
                commit.events.extend(outcome.events);
                // Beside the webhooks of the writes, if made at ingest.
                let writes_fired = std::mem::replace(&mut commit.signals, outcome.changes);
                commit.signals.messages.extend(writes_fired.messages);
                commit.signals.deliveries.extend(writes_fired.deliveries);
            }
            results.sort_by_key(|(i, _)| *i);
            match self.store.commit_writes(&commit).await {
                Ok(()) => {
                    self.count_ingested(&events, &results);
                    self.count_fired(&commit.signals.deliveries, now);
                    self.plan_committed(&commit.plan).await;
                    self.wake_deliveries(&commit.signals.deliveries, now).await;
                    return Ok(results.into_iter().map(|(_, r)| r).collect());
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(too_large @ StoreError::TooLarge { .. }) => {
                    return Err(name_the_event(too_large, &events, batch))
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(ApiError::conflict(
            "the entities changed concurrently too often; retry the request",
        ))
    }
}

/// A store's refusal of an entity too large, as the refusal of the event
/// that wrote it (`events[3].data`, or `data` alone).
fn name_the_event(error: StoreError, events: &[Event], batch: bool) -> ApiError {
    let StoreError::TooLarge { entity, .. } = &error else {
        return error.into();
    };
    let index = events
        .iter()
        .position(|e| matches!(e, Event::Write(w) if w.key() == *entity));
    let refusal = ApiError::from(error.clone());
    match (index, batch) {
        (Some(i), true) => refusal.under(&format!("events[{i}]")),
        _ => refusal,
    }
}

/// What a batch of writes comes to, given what is stored: results per event
/// and everything to commit. Pure, so a refusal has written nothing.
/// `fire_to`: the endpoints to make the writes' webhooks for now (see
/// `Config::fire_writes_at_ingest`); None plans them as schedules.
#[allow(clippy::too_many_arguments)]
fn decide(
    events: &[(usize, &WriteEvent)],
    batch: bool,
    mut state: WriteState,
    seen: &mut HashSet<String>,
    notifications: &[Notification],
    fire_to: Option<&[Endpoint]>,
    now: Time,
    edge: Option<Time>,
) -> Result<(Vec<(usize, WriteResult)>, WriteCommit), ApiError> {
    let stored_versions: Vec<_> = state
        .records
        .iter()
        .map(|(k, r)| (k.clone(), r.version))
        .collect();
    let mut results = Vec::with_capacity(events.len());
    let mut commit = WriteCommit::default();
    let mut touched = Vec::new();
    for &(i, event) in events {
        let result = |status| {
            let id = event.id.clone();
            (i, WriteResult { id, status })
        };
        if !seen.insert(event.id.clone()) {
            results.push(result("duplicate"));
            continue;
        }
        let key = event.key();
        let current = state.records.get(&key);
        if current.is_some_and(|c| event.occurred_at < c.occurred_at) {
            results.push(result("stale"));
            commit.events.push((event.id.clone(), "stale"));
            continue;
        }
        let next = apply(event, current, now).map_err(|e| {
            if batch {
                e.under(&format!("events[{i}]"))
            } else {
                e
            }
        })?;
        for schedule in write_schedules(&next, event, notifications, now) {
            if let Some(endpoints) = fire_to {
                let notification = notifications
                    .iter()
                    .find(|n| n.id == schedule.notification_id);
                let fired = fire_one(&schedule, Some(&next), notification, endpoints, now);
                commit.signals.messages.extend(fired.message);
                commit.signals.deliveries.extend(fired.deliveries);
                continue;
            }
            commit.plan.timers.push(TimerChange::Set {
                id: schedule.id.clone(),
                at: schedule.fire_at,
            });
            commit.plan.schedules.push(schedule);
        }
        if !touched.contains(&key) {
            touched.push(key.clone());
        }
        state.records.insert(key, next);
        results.push(result("accepted"));
        commit.events.push((event.id.clone(), "accepted"));
    }
    let mut time_plan = Plan::default();
    for key in touched {
        let record = state
            .records
            .remove(&key)
            .expect("touched entities have a record");
        let existing = state.schedules.remove(&key).unwrap_or_default();
        time_plan.extend(super::plan_entity(
            &record,
            notifications,
            &existing,
            now,
            edge,
            true,
        ));
        let expected = stored_versions
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v);
        commit.records.push((record, expected));
    }
    commit.plan.extend(time_plan);
    Ok((results, commit))
}

/// The entity after one write, or why the write cannot apply.
fn apply(
    event: &WriteEvent,
    current: Option<&EntityRecord>,
    now: Time,
) -> Result<EntityRecord, ApiError> {
    let kind = event.kind.as_str();
    let id = event.key().id;
    let refuse = |why: String| Err(ApiError::conflict(why).at("data.id"));
    match (event.action, current, &event.change) {
        (WriteAction::Create, Some(_), _) => refuse(format!("{kind} `{id}` already exists")),
        (WriteAction::Create, None, Change::Put(entity)) => Ok(EntityRecord {
            entity: entity.clone(),
            version: 1,
            occurred_at: event.occurred_at,
            archived_at: None,
        }),
        (_, None, _) => refuse(format!("there is no {kind} `{id}`")),
        (_, Some(c), _) if c.is_archived() => refuse(format!("{kind} `{id}` is archived")),
        (_, Some(c), Change::Put(entity)) => Ok(EntityRecord {
            entity: entity.clone(),
            version: c.version + 1,
            occurred_at: event.occurred_at,
            archived_at: None,
        }),
        (_, Some(c), Change::Archive { .. }) => Ok(EntityRecord {
            entity: c.entity.clone(),
            version: c.version + 1,
            occurred_at: event.occurred_at,
            archived_at: Some(now),
        }),
    }
}
