//! The `deliver` function's handlers: a tick's input (from its EventBridge
//! Scheduler schedule), and the SQS timer queue's batches of work (tick
//! steps, groups of timers due at one second). Timers are held at most
//! `Settings::hold` (2 s) so webhooks leave on their second, and sent back
//! to the queue with a delay when further off. Then they run through the
//! core together: one `fire_and_attempt` for the schedules due at a second
//! (the stale guard and the conditional fires are the core's and the
//! store's: a moved, cancelled or already fired schedule writes nothing; what
//! fires is written leased to this invocation and sent without a claim),
//! and the attempts of the delivery timers, 64 sends in flight. Duplicates
//! of any message are harmless.

use crate::tick::{self, TickOutcome};
use crate::Runtime;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use chrono::DurationRound;
use lifecycle_aws::queue::{delay_seconds, Timer, Work};
use lifecycle_core::time::{parse_time, Time};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

/// Sends in flight per invocation (the sender allows 64 in all).
const SENDS_IN_FLIGHT: usize = 64;

/// How a panicked task's error starts.
const PANICKED: &str = "a fire or attempt task failed";

/// A schedule the store cannot read yet (the eventually consistent `lookup`
/// index) is sent back this many times, a second apart, before it is left
/// to the sweep's overdue pass.
const MAX_TRIES: u32 = 30;

/// What a batch of timers came to.
#[derive(Debug, Default, PartialEq, serde::Serialize)]
pub struct TimersOutcome {
    /// Schedules fired now, and deliveries attempted (theirs and delivery timers').
    pub fired: usize,
    pub attempted: usize,
    /// Timers sent back to the queue: too early, or not readable yet.
    pub requeued: usize,
}

/// A timer and the messages it came in (their failure is reported per message).
struct Pending {
    timer: Timer,
    at: Time,
    tries: u32,
    message: Option<String>,
}

/// Runs timers: groups due at one second, in order, each held to its
/// second; groups further off than the hold go back to the queue. Returns
/// the outcome and the messages whose timers failed.
async fn run_timers(
    rt: &Runtime,
    pending: Vec<Pending>,
) -> (TimersOutcome, BTreeSet<String>, Vec<String>) {
    let mut outcome = TimersOutcome::default();
    let mut failed = BTreeSet::new();
    let mut errors = Vec::new();
    let mut by_second: BTreeMap<Time, Vec<Pending>> = BTreeMap::new();
    for p in pending {
        let second =
            p.at.duration_trunc(chrono::Duration::seconds(1))
                .unwrap_or(p.at);
        by_second.entry(second).or_default().push(p);
    }
    let mut attempts = tokio::task::JoinSet::new();
    let mut later: Vec<Pending> = Vec::new();
    for (second, group) in by_second {
        let messages: BTreeSet<String> = group.iter().filter_map(|p| p.message.clone()).collect();
        let remaining = second - rt.clock.now();
        if remaining > rt.settings.hold || !later.is_empty() {
            later.extend(group);
            continue;
        }
        // Held until the last timer of the second is due, and a millisecond
        // more (a timer carries its time to the millisecond, its item to the
        // nanosecond): a delivery attempted before its time is not claimed,
        // and its timer would be spent (a retry left to the sweep).
        let latest = group.iter().map(|p| p.at).max().unwrap_or(second);
        let latest = latest + chrono::Duration::milliseconds(1);
        if let Ok(wait) = (latest - rt.clock.now()).to_std() {
            tokio::time::sleep(wait).await;
        }
        // A tick, or the stream, gave each schedule's item key: read
        // directly, not through the eventually consistent lookup index.
        rt.store.remember_locations(group.iter().filter_map(|p| {
            if p.timer.timer.starts_with("dlv_") {
                return None;
            }
            let (pk, sk) = (p.timer.pk.clone()?, p.timer.sk.clone()?);
            Some((p.timer.timer.clone(), pk, sk))
        }));
        let (deliveries, schedules): (Vec<Pending>, Vec<Pending>) = group
            .into_iter()
            .partition(|p| p.timer.timer.starts_with("dlv_"));
        outcome.fired += schedules.len();
        outcome.attempted += deliveries.len();
        let service = rt.service.clone();
        attempts.spawn(async move {
            let ids: Vec<String> = schedules.iter().map(|p| p.timer.timer.clone()).collect();
            let fired = match ids.is_empty() {
                true => Ok(Default::default()),
                false => service.fire_and_attempt(&ids, SENDS_IN_FLIGHT).await,
            };
            let dlv: Vec<String> = deliveries.iter().map(|p| p.timer.timer.clone()).collect();
            let attempted = service.attempt_many(&dlv, SENDS_IN_FLIGHT).await;
            let result = fired.and_then(|fired: lifecycle_core::service::Fired| {
                attempted.map(|()| {
                    let unknown: BTreeSet<String> = fired.unknown.into_iter().collect();
                    (schedules.into_iter())
                        .filter(|p| unknown.contains(&p.timer.timer))
                        .collect::<Vec<Pending>>()
                })
            });
            (messages, result)
        });
    }
    if !later.is_empty() {
        outcome.requeued += later.len();
        let messages: BTreeSet<String> = later.iter().filter_map(|p| p.message.clone()).collect();
        if let Err(e) = requeue(rt, &later).await {
            errors.push(e);
            failed.extend(messages);
        }
    }
    let mut unknown = Vec::new();
    while let Some(done) = attempts.join_next().await {
        match done {
            Ok((_, Ok(missing))) => unknown.extend(missing),
            Ok((messages, Err(e))) => {
                errors.push(format!("firing or attempting: {e:?}"));
                failed.extend(messages);
            }
            // A panicked task's messages are unknown here: every message
            // with timers is failed by the caller (see `handle_sqs`).
            Err(e) => errors.push(format!("{PANICKED}: {e}")),
        }
    }
    outcome.fired -= unknown.len();
    let messages: BTreeSet<String> = unknown.iter().filter_map(|p| p.message.clone()).collect();
    if let Err(e) = retry_unknown(rt, unknown, &mut outcome).await {
        errors.push(e);
        failed.extend(messages);
    }
    (outcome, failed, errors)
}

/// Sends timers back to the queue, each group delayed to its second.
async fn requeue(rt: &Runtime, timers: &[Pending]) -> Result<(), String> {
    let now = rt.clock.now();
    let mut by_second: BTreeMap<(i64, u32), Vec<Timer>> = BTreeMap::new();
    for p in timers {
        by_second
            .entry((p.at.timestamp(), p.tries))
            .or_default()
            .push(p.timer.clone());
    }
    let messages: Vec<(Work, i32)> = by_second
        .into_iter()
        .flat_map(|((second, tries), timers)| {
            let at = chrono::DateTime::from_timestamp(second, 0).unwrap_or(now);
            timers
                .chunks(lifecycle_aws::queue::TIMERS_PER_MESSAGE)
                .map(|chunk| {
                    let work = Work::Timers {
                        timers: chunk.to_vec(),
                        tries,
                    };
                    (work, delay_seconds(at, now))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    rt.queue()?.send(&messages).await
}

/// Schedules not readable yet: back to the queue a second later, counted.
async fn retry_unknown(
    rt: &Runtime,
    unknown: Vec<Pending>,
    outcome: &mut TimersOutcome,
) -> Result<(), String> {
    let (retry, given_up): (Vec<Pending>, Vec<Pending>) =
        unknown.into_iter().partition(|p| p.tries < MAX_TRIES);
    for p in &given_up {
        tracing::error!(timer = %p.timer.timer, "schedule still unreadable; left to the sweep");
    }
    if retry.is_empty() {
        return Ok(());
    }
    outcome.requeued += retry.len();
    let now = rt.clock.now();
    let retry: Vec<Pending> = retry
        .into_iter()
        .map(|p| Pending {
            at: now + chrono::Duration::seconds(2),
            tries: p.tries + 1,
            ..p
        })
        .collect();
    requeue(rt, &retry).await
}

/// One input: a tick (or a step of one), or timers.
pub async fn handle(
    rt: &Runtime,
    work: Work,
    deadline: Option<Instant>,
) -> Result<serde_json::Value, String> {
    match work {
        Work::Tick {
            tick,
            gen,
            shard,
            cursor,
        } => {
            let minute = parse_time(&tick).ok_or("a tick's minute is not a time")?;
            let outcome: TickOutcome = tick::run(rt, minute, gen, shard, cursor, deadline).await?;
            serde_json::to_value(outcome).map_err(|e| e.to_string())
        }
        Work::Timers { timers, tries } => run_all(rt, timers, tries).await,
        Work::One(timer) => run_all(rt, vec![timer], 0).await,
    }
}

async fn run_all(
    rt: &Runtime,
    timers: Vec<Timer>,
    tries: u32,
) -> Result<serde_json::Value, String> {
    let pending = pending_of(timers, tries, None)?;
    let (outcome, _, errors) = run_timers(rt, pending).await;
    if errors.is_empty() {
        Ok(serde_json::to_value(outcome).map_err(|e| e.to_string())?)
    } else {
        Err(errors.join("; "))
    }
}

fn pending_of(
    timers: Vec<Timer>,
    tries: u32,
    message: Option<&str>,
) -> Result<Vec<Pending>, String> {
    timers
        .into_iter()
        .map(|timer| {
            let at = timer
                .due()
                .ok_or_else(|| format!("timer {} has no time", timer.timer))?;
            Ok(Pending {
                timer,
                at,
                tries,
                message: message.map(str::to_string),
            })
        })
        .collect()
}

/// A batch from the timer queue: its tick steps side by side, its timers
/// together (one fire per second for the whole batch); the messages whose
/// work failed are reported for a retry.
pub async fn handle_sqs(
    rt: Arc<Runtime>,
    event: SqsEvent,
    deadline: Option<Instant>,
) -> SqsBatchResponse {
    let mut failed: BTreeSet<String> = BTreeSet::new();
    let mut ticks = tokio::task::JoinSet::new();
    let mut tick_messages = std::collections::HashMap::new();
    let mut pending = Vec::new();
    let mut timer_messages = BTreeSet::new();
    let mut receipts = std::collections::HashMap::new();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        if let Some(receipt) = &message.receipt_handle {
            receipts.insert(id.clone(), receipt.clone());
        }
        let work: Result<Work, _> =
            serde_json::from_str(message.body.as_deref().unwrap_or_default());
        match work {
            // A body that is no work would fail forever: dropped, logged.
            Err(error) => tracing::error!(%error, message = %id, "not a timer message; dropped"),
            Ok(Work::Tick { .. }) => {
                let rt = rt.clone();
                let work = work.expect("matched");
                let task = ticks.spawn(async move { handle(&rt, work, deadline).await });
                tick_messages.insert(task.id(), id);
            }
            Ok(Work::Timers { timers, tries }) => match pending_of(timers, tries, Some(&id)) {
                Ok(found) => {
                    timer_messages.insert(id);
                    pending.extend(found);
                }
                Err(error) => tracing::error!(%error, message = %id, "bad timers; dropped"),
            },
            Ok(Work::One(timer)) => match pending_of(vec![timer], 0, Some(&id)) {
                Ok(found) => {
                    timer_messages.insert(id);
                    pending.extend(found);
                }
                Err(error) => tracing::error!(%error, message = %id, "bad timer; dropped"),
            },
        }
    }
    let (outcome, timers_failed, errors) = run_timers(&rt, pending).await;
    for error in &errors {
        tracing::warn!(%error, "timers failed; the queue retries their messages");
    }
    if errors.iter().any(|e| e.starts_with(PANICKED)) {
        // A panic lost track of which messages it served: retry them all.
        failed.extend(timer_messages);
    }
    failed.extend(timers_failed);
    tracing::info!(?outcome, "timers");
    while let Some(done) = ticks.join_next_with_id().await {
        let (task, result) = match done {
            Ok((task, result)) => (task, result),
            Err(e) => (e.id(), Err(format!("a tick task failed: {e}"))),
        };
        match result {
            Ok(outcome) => tracing::info!(%outcome, "tick"),
            Err(error) => {
                tracing::warn!(%error, "tick failed; the queue retries it");
                failed.extend(tick_messages.get(&task).cloned());
            }
        }
    }
    retry_soon(&rt, &failed, &receipts).await;
    let mut response = SqsBatchResponse::default();
    for id in failed {
        let mut failure = BatchItemFailure::default();
        failure.item_identifier = id;
        response.batch_item_failures.push(failure);
    }
    response
}

/// Makes failed messages visible again in a few seconds: the queue's
/// visibility timeout is six times the function's (the event source's
/// rule), far too long to wait for a retry. Best effort: without it the
/// message still comes back, later.
async fn retry_soon(
    rt: &Runtime,
    failed: &BTreeSet<String>,
    receipts: &std::collections::HashMap<String, String>,
) {
    let Ok(queue) = rt.queue() else { return };
    for id in failed {
        let Some(receipt) = receipts.get(id) else {
            continue;
        };
        let changed = (queue.client.change_message_visibility())
            .queue_url(&queue.url)
            .receipt_handle(receipt)
            .visibility_timeout(RETRY_AFTER_SECONDS)
            .send()
            .await;
        if let Err(error) = changed {
            tracing::warn!(?error, message = %id, "could not bring a failed message back sooner");
        }
    }
}

/// Seconds before a failed message is tried again.
const RETRY_AFTER_SECONDS: i32 = 5;

/// Any input of the `deliver` function: an SQS batch (`Records`) or a
/// schedule's input (a tick).
pub async fn dispatch(
    rt: Arc<Runtime>,
    input: serde_json::Value,
    deadline: Option<Instant>,
) -> Result<serde_json::Value, String> {
    if input.get("Records").is_some() {
        let event: SqsEvent = serde_json::from_value(input).map_err(|e| e.to_string())?;
        let response = handle_sqs(rt, event, deadline).await;
        return serde_json::to_value(response).map_err(|e| e.to_string());
    }
    let work: Work = serde_json::from_value(input.clone())
        .map_err(|e| format!("not an input of the deliver function: {e}: {input}"))?;
    let outcome = handle(&rt, work, deadline).await?;
    tracing::info!(%outcome, "input");
    Ok(outcome)
}

/// The `Instant` of a Lambda deadline (milliseconds since the epoch).
pub fn deadline(epoch_ms: u64) -> Instant {
    let now_ms = chrono::Utc::now().timestamp_millis().max(0) as u64;
    Instant::now() + std::time::Duration::from_millis(epoch_ms.saturating_sub(now_ms))
}
