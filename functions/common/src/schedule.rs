//! The `schedule` function's handlers: the table's stream (schedule and
//! delivery items -> timers, notification changes -> fan-out jobs, job
//! items -> fan-out pages) and the periodic sweep.

use crate::fanout::{self, Step};
use crate::stream::{image, work, Work};
use crate::Runtime;
use aws_lambda_events::event::dynamodb::Event;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{Duration, DurationRound};
use lifecycle_core::planner::TimerChange;
use lifecycle_core::ports::Scheduler;
use lifecycle_core::time::{parse_time, Time};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// What one stream batch did.
#[derive(Debug, Default, Serialize)]
pub struct StreamOutcome {
    pub timers: usize,
    pub fanouts_started: usize,
    /// Fan-out steps run, and the entities they planned.
    pub fanout_steps: Vec<String>,
    pub entities_planned: usize,
    /// Threshold notifications evaluated against every customer.
    pub thresholds_evaluated: usize,
}

/// Handles a batch of stream records. An error fails the batch: the event
/// source retries it (every step is idempotent: upserts, conditional job
/// writes, create-or-update schedules).
pub async fn handle_stream(
    rt: &Runtime,
    event: &Event,
    deadline: Option<Instant>,
) -> Result<StreamOutcome, String> {
    let scheduler = rt
        .scheduler
        .as_ref()
        .ok_or("SCHEDULE_GROUP is not set: the schedule function has no scheduler")?;
    let now = rt.clock.now();
    let within = |at: Time| rt.settings.within_horizon(at, now);
    let mut outcome = StreamOutcome::default();
    let mut timers: Vec<TimerChange> = Vec::new();
    for record in &event.records {
        match work(record, &within) {
            Work::Timer(change) => timers.push(change),
            Work::FanOut {
                notification,
                exists,
                gen,
            } => {
                fanout::start(rt, &notification, exists, &gen).await?;
                outcome.fanouts_started += 1;
                if evaluate_threshold(rt, &notification, exists, &gen).await? {
                    outcome.thresholds_evaluated += 1;
                }
            }
            Work::Job { .. } => {
                let job = image(&record.change.new_image);
                match fanout::step(rt, &job, deadline).await? {
                    Step::Continued { after, entities } => {
                        outcome.entities_planned += entities;
                        outcome.fanout_steps.push(format!(
                            "{}: continues after {after}",
                            job.ntf.unwrap_or_default()
                        ));
                    }
                    Step::Done { entities } => {
                        outcome.entities_planned += entities;
                        outcome
                            .fanout_steps
                            .push(format!("{}: done", job.ntf.unwrap_or_default()));
                    }
                    Step::Superseded => {}
                }
            }
            Work::Nothing => {}
        }
    }
    outcome.timers = timers.len();
    if !timers.is_empty() {
        scheduler.apply(&timers).await?;
    }
    Ok(outcome)
}

/// A threshold notification created with `evaluate_on_create`, or edited:
/// evaluated against every customer's current value, as the local process
/// does inline (deferred here from `api`, see `deferred.rs`). A replayed
/// record evaluates again and finds the crossings already recorded.
async fn evaluate_threshold(
    rt: &Runtime,
    written: &lifecycle_core::notification::Notification,
    exists: bool,
    gen: &str,
) -> Result<bool, String> {
    if !exists || !written.is_threshold() {
        return Ok(false);
    }
    // The notification as it is now; a newer edit has a record of its own.
    let current = lifecycle_core::ports::Store::notification(rt.store.as_ref(), &written.id)
        .await
        .map_err(|e| e.to_string())?;
    let Some(current) = current.filter(|n| n.updated_at.to_rfc3339() == gen) else {
        return Ok(false);
    };
    let created = current.created_at == current.updated_at;
    if created && current.evaluate_on_create != Some(true) {
        return Ok(false);
    }
    rt.service()
        .evaluate_everyone(&current)
        .await
        .map_err(|e| e.to_string())?;
    Ok(true)
}

/// The sweep's input (`{"sweep": {...}}` from the template's rate schedule).
#[derive(Debug, Default, Deserialize)]
pub struct Sweep {
    #[serde(default)]
    pub scheduled_time: Option<String>,
    /// Re-register everything pending within the horizon (after an incident).
    #[serde(default)]
    pub full: bool,
}

/// How far back the sweep looks for pending timers that lost their invocation.
const OVERDUE_LOOKBACK_HOURS: i64 = 48;

/// The sweep: registers the pending timers entering the horizon (a window
/// one sweep period wide, overlapping the previous one: registering twice
/// is harmless) and re-wakes the pending ones overdue by more than five
/// minutes (a lost invocation, a crashed attempt), through the `due` index.
pub async fn handle_sweep(rt: &Runtime, sweep: &Sweep) -> Result<usize, String> {
    let scheduler = rt
        .scheduler
        .as_ref()
        .ok_or("SCHEDULE_GROUP is not set: the schedule function has no scheduler")?;
    let now = rt.clock.now();
    let edge = now + rt.settings.horizon;
    let from = if sweep.full {
        now
    } else {
        edge - rt.settings.sweep_period * 2
    };
    let mut due = due_between(rt, from, edge + rt.settings.sweep_period).await?;
    due.extend(
        due_between(
            rt,
            now - Duration::hours(OVERDUE_LOOKBACK_HOURS),
            now - Duration::minutes(5),
        )
        .await?,
    );
    let timers: Vec<TimerChange> = due
        .into_iter()
        .map(|(id, at)| TimerChange::Set { id, at })
        .collect();
    if !timers.is_empty() {
        scheduler.apply(&timers).await?;
    }
    Ok(timers.len())
}

fn key_time(time: Time) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Pending schedules and deliveries due in [from, to) from the `due` index
/// (hour buckets x 16 shards, `infra/README.md`): (timer id, due time).
async fn due_between(rt: &Runtime, from: Time, to: Time) -> Result<Vec<(String, Time)>, String> {
    let mut buckets = Vec::new();
    let mut hour = from
        .duration_trunc(Duration::hours(1))
        .map_err(|e| e.to_string())?;
    while hour < to {
        for shard in 0..16u8 {
            buckets.push(format!("DUE#{}#{shard:x}", hour.format("%Y-%m-%dT%H")));
        }
        hour += Duration::hours(1);
    }
    let (low, high) = (key_time(from), key_time(to));
    let mut found = Vec::new();
    let mut running = tokio::task::JoinSet::new();
    for bucket in buckets {
        while running.len() >= 16 {
            if let Some(done) = running.join_next().await {
                found.extend(done.map_err(|e| e.to_string())??);
            }
        }
        let client = rt.store.client().clone();
        let table = rt.store.table().to_string();
        let (low, high) = (low.clone(), high.clone());
        running.spawn(async move { query_bucket(client, table, bucket, low, high).await });
    }
    while let Some(done) = running.join_next().await {
        found.extend(done.map_err(|e| e.to_string())??);
    }
    Ok(found)
}

async fn query_bucket(
    client: aws_sdk_dynamodb::Client,
    table: String,
    bucket: String,
    low: String,
    high: String,
) -> Result<Vec<(String, Time)>, String> {
    let mut found = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .query()
            .table_name(&table)
            .index_name("due")
            .key_condition_expression("g2pk = :pk AND g2sk BETWEEN :low AND :high")
            .expression_attribute_values(":pk", AttributeValue::S(bucket.clone()))
            .expression_attribute_values(":low", AttributeValue::S(low.clone()))
            .expression_attribute_values(":high", AttributeValue::S(format!("{high}#")))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| format!("querying the due index: {e:?}"))?;
        for item in page.items() {
            let Some(AttributeValue::S(sort)) = item.get("g2sk") else {
                continue;
            };
            if let Some((at, id)) = sort.split_once('#') {
                if let Some(at) = parse_time(at) {
                    if key_time(at) < high {
                        found.push((id.to_string(), at));
                    }
                }
            }
        }
        match page.last_evaluated_key() {
            Some(key) => start = Some(key.clone()),
            None => break,
        }
    }
    Ok(found)
}

/// Any input of the `schedule` function: a stream batch (`Records`), the
/// sweep (`{"sweep": {...}}`), or `{"fanout": {"notification_id": "..."}}`
/// to restart a notification's fan-out by hand. The answer of a stream
/// batch is the partial-batch response the event source expects.
pub async fn dispatch(
    rt: &Runtime,
    input: serde_json::Value,
    deadline: Option<Instant>,
) -> Result<serde_json::Value, String> {
    if input.get("Records").is_some() {
        let event: Event = serde_json::from_value(input).map_err(|e| e.to_string())?;
        let outcome = handle_stream(rt, &event, deadline).await?;
        tracing::info!(?outcome, "stream batch");
        return Ok(serde_json::json!({"batchItemFailures": []}));
    }
    if let Some(sweep) = input.get("sweep") {
        let sweep: Sweep = serde_json::from_value(sweep.clone()).unwrap_or_default();
        let registered = handle_sweep(rt, &sweep).await?;
        return Ok(serde_json::json!({"registered": registered}));
    }
    if let Some(id) = input
        .pointer("/fanout/notification_id")
        .and_then(|v| v.as_str())
    {
        let notification = lifecycle_core::ports::Store::notification(rt.store.as_ref(), id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no notification {id}"))?;
        let gen = notification.updated_at.to_rfc3339();
        fanout::start(rt, &notification, true, &gen).await?;
        return Ok(serde_json::json!({"fanout": id}));
    }
    Err(format!("not an input of the schedule function: {input}"))
}
