//! The `schedule` function's handlers: the table's stream (schedule and
//! delivery items -> timers, notification changes -> fan-out jobs, job
//! items -> fan-out pages) and the periodic sweep.

use crate::fanout::{self, Step};
use crate::stream::{image, work, Work};
use crate::Runtime;
use aws_lambda_events::event::dynamodb::Event;
use chrono::Duration;
use lifecycle_core::planner::TimerChange;
use lifecycle_core::ports::Scheduler;
use lifecycle_core::time::Time;
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

/// Handles a batch of stream records, in order. A record whose work fails
/// stops the batch there: the timers of the records before it are applied,
/// and its sequence number is returned, so the event source retries from it
/// (`ReportBatchItemFailures`) instead of the whole batch. Every step is
/// idempotent (conditional job writes, ticks made at most once per minute,
/// timers that dedupe), so a retried record does no harm.
pub async fn handle_stream(
    rt: &Runtime,
    event: &Event,
    deadline: Option<Instant>,
) -> Result<StreamOutcome, String> {
    let (outcome, failed) = handle_records(rt, event, deadline).await;
    match failed {
        None => Ok(outcome),
        Some((_, error)) => Err(error),
    }
}

/// [`handle_stream`], with the first failed record's sequence number and error.
pub async fn handle_records(
    rt: &Runtime,
    event: &Event,
    deadline: Option<Instant>,
) -> (StreamOutcome, Option<(String, String)>) {
    let mut outcome = StreamOutcome::default();
    let Some(scheduler) = rt.scheduler.as_ref() else {
        let first = event.records.first();
        let sequence = first.map(|r| r.change.sequence_number.clone().unwrap_or_default());
        let error = "SCHEDULE_GROUP is not set: the schedule function has no scheduler";
        return (outcome, sequence.map(|s| (s, error.to_string())));
    };
    let now = rt.clock.now();
    let within = |at: Time| rt.settings.within_horizon(at, now);
    // (sequence number of the record, its timer change)
    let mut timers: Vec<(String, TimerChange)> = Vec::new();
    // (timer id, pk, sk) of the items the timers come from.
    let mut located = Vec::new();
    let mut failed = None;
    for record in &event.records {
        let sequence = record.change.sequence_number.clone().unwrap_or_default();
        let done = match work(record, &within) {
            Work::Timer(change) => {
                if let TimerChange::Set { id, .. } = &change {
                    let item = image(&record.change.new_image);
                    if let (Some(pk), Some(sk)) = (item.pk, item.sk) {
                        located.push((id.clone(), pk, sk));
                    }
                }
                timers.push((sequence.clone(), change));
                Ok(())
            }
            Work::FanOut {
                notification,
                exists,
                gen,
            } => start_fanout(rt, &notification, exists, &gen, &mut outcome).await,
            Work::Job { .. } => {
                let job = image(&record.change.new_image);
                run_job(rt, job, deadline, &mut outcome).await
            }
            Work::Nothing => Ok(()),
        };
        if let Err(error) = done {
            failed = Some((sequence, error));
            break;
        }
    }
    outcome.timers = timers.len();
    if !timers.is_empty() {
        let changes: Vec<TimerChange> = timers.iter().map(|(_, c)| c.clone()).collect();
        scheduler.remember_locations(located);
        if let Err(error) = scheduler.apply(&changes).await {
            // Which timer failed is not known: retry from the first record that had one.
            failed = Some((timers[0].0.clone(), error));
        }
    }
    (outcome, failed)
}

async fn start_fanout(
    rt: &Runtime,
    notification: &lifecycle_core::notification::Notification,
    exists: bool,
    gen: &str,
    outcome: &mut StreamOutcome,
) -> Result<(), String> {
    fanout::start(rt, notification, exists, gen).await?;
    outcome.fanouts_started += 1;
    if evaluate_threshold(rt, notification, exists, gen).await? {
        outcome.thresholds_evaluated += 1;
    }
    Ok(())
}

async fn run_job(
    rt: &Runtime,
    job: crate::stream::Image,
    deadline: Option<Instant>,
    outcome: &mut StreamOutcome,
) -> Result<(), String> {
    let name = job.ntf.clone().unwrap_or_default();
    match fanout::step(rt, &job, deadline).await? {
        Step::Continued { after, entities } => {
            outcome.entities_planned += entities;
            (outcome.fanout_steps).push(format!("{name}: continues after {after}"));
        }
        Step::Done { entities } => {
            outcome.entities_planned += entities;
            outcome.fanout_steps.push(format!("{name}: done"));
        }
        Step::Superseded => {}
    }
    Ok(())
}

/// A threshold notification created with `evaluate_on_create`, or edited:
/// evaluated against every customer's current value, as the local process
/// does inline (deferred here from `api`: `Config::defer_fan_outs`). A replayed
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
    rt.service
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
    /// Make sure every minute with timers within the horizon has its tick
    /// (after an incident), not only those entering it.
    #[serde(default)]
    pub full: bool,
}

/// What a sweep did.
#[derive(Debug, Default, Serialize)]
pub struct SweepOutcome {
    /// Entities planned again as their deferred moments came within the horizon.
    pub materialised: usize,
    /// Minutes entering the horizon that have timers, and the ticks made for them.
    pub minutes: usize,
    pub ticks_made: usize,
    /// Past minutes still holding timers overdue by more than `OVERDUE`, re-woken.
    pub rewoken: usize,
}

/// A timer this far past its time has lost its wake-up (a tick or message
/// that ended in a dead-letter queue, a crash before a claim): its minute
/// is re-woken. Far above a boundary's drain, so a backlog being worked
/// through is not queued again.
const OVERDUE: Duration = Duration::minutes(15);

/// A minute is re-woken at most this often, so a stuck timer costs one
/// re-read of its minute per period, not a storm.
const REWAKE_EVERY: Duration = Duration::minutes(30);

/// How far back the sweep looks for overdue timers.
const OVERDUE_LOOKBACK: Duration = Duration::hours(48);

/// The sweep: makes the ticks of the minutes entering the horizon (a window
/// three periods wide at its edge, overlapping the previous sweep's: a tick
/// made twice is a Conflict, harmless), found in the `due` index at a cost
/// per minute, not per timer; and re-wakes the past minutes still holding
/// timers overdue by more than 15 minutes, each at most every 30 minutes
/// (a new generation of its tick). Nothing it does grows with the number of
/// timers in a minute.
pub async fn handle_sweep(
    rt: &Runtime,
    sweep: &Sweep,
    deadline: Option<Instant>,
) -> Result<SweepOutcome, String> {
    let scheduler = rt
        .scheduler
        .as_ref()
        .ok_or("SCHEDULE_GROUP is not set: the schedule function has no scheduler")?;
    let materialised = materialise(rt, deadline).await?;
    let now = rt.clock.now();
    let edge = now + rt.settings.horizon;
    let near = now + scheduler.config().near;
    let from = if sweep.full {
        near
    } else {
        (edge - rt.settings.sweep_period * 2).max(near)
    };
    let to = edge + rt.settings.sweep_period;
    let minutes = rt
        .store
        .due_minutes(from, to)
        .await
        .map_err(|e| e.to_string())?;
    let mut outcome = SweepOutcome {
        materialised,
        minutes: minutes.len(),
        ..SweepOutcome::default()
    };
    outcome.ticks_made = scheduler.ensure_ticks(&minutes).await?;
    let overdue = (rt.store)
        .due_minutes(now - OVERDUE_LOOKBACK, now - OVERDUE)
        .await
        .map_err(|e| e.to_string())?;
    for minute in overdue {
        if rewake(rt, minute, now).await? {
            outcome.rewoken += 1;
        }
    }
    Ok(outcome)
}

/// Entities planned again per page of the sweep's materialisation.
const MATERIALISE_PAGE: usize = 100;

/// Plans again the entities whose deferred moments come within the horizon
/// (`Service::materialise`), a page at a time, within a budget of 80 % of
/// the sweep period and 30 s short of the invocation's deadline: what is
/// left waits for the next sweep, which starts where this one stopped
/// (the entities still deferred are its work list). The entities planned.
async fn materialise(rt: &Runtime, deadline: Option<Instant>) -> Result<usize, String> {
    let period = (rt.settings.sweep_period.to_std()).unwrap_or(std::time::Duration::from_secs(300));
    let mut stop = Instant::now() + period.mul_f64(0.8);
    if let Some(deadline) = deadline {
        stop = stop.min(
            deadline
                .checked_sub(std::time::Duration::from_secs(30))
                .unwrap_or(deadline),
        );
    }
    let mut planned = 0;
    loop {
        let page = (rt.service.materialise(MATERIALISE_PAGE).await).map_err(|e| e.to_string())?;
        planned += page;
        if page < MATERIALISE_PAGE || Instant::now() >= stop {
            return Ok(planned);
        }
    }
}

/// Re-wakes a past minute: the next generation of its tick, on the timer
/// queue, unless one was taken within `REWAKE_EVERY`. Generation n is taken
/// no earlier than n periods after the minute, so the check needs no clock
/// of its own in the table.
async fn rewake(rt: &Runtime, minute: Time, now: Time) -> Result<bool, String> {
    let periods = ((now - minute).num_seconds() / REWAKE_EVERY.num_seconds()).max(0) as u32;
    let taken = rt
        .store
        .tick_generation(minute)
        .await
        .map_err(|e| e.to_string())?;
    let gen = periods.max(1);
    if taken.is_some_and(|g| g >= gen) {
        return Ok(false);
    }
    let work = lifecycle_aws::Work::tick(minute, gen);
    rt.queue()?.send(&[(work, 0)]).await?;
    tracing::warn!(minute = %minute, gen, "timers overdue; minute re-woken");
    Ok(true)
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
        let (outcome, failed) = handle_records(rt, &event, deadline).await;
        tracing::info!(?outcome, "stream batch");
        let failures = match failed {
            Some((sequence, error)) => {
                tracing::warn!(%error, %sequence, "stream record failed; retried from it");
                vec![serde_json::json!({"itemIdentifier": sequence})]
            }
            None => Vec::new(),
        };
        return Ok(serde_json::json!({"batchItemFailures": failures}));
    }
    if let Some(sweep) = input.get("sweep") {
        let sweep: Sweep = serde_json::from_value(sweep.clone()).unwrap_or_default();
        let outcome = handle_sweep(rt, &sweep, deadline).await?;
        tracing::info!(?outcome, "sweep");
        return serde_json::to_value(outcome).map_err(|e| e.to_string());
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
