//! The `deliver` function's handlers: a timer's input, from an EventBridge
//! Scheduler schedule (invoked in the minute before its time) or from the
//! SQS timer queue (due within minutes). Holds the remainder so the webhook
//! leaves on its second, then runs the timer through the core: the fire
//! (stale-schedule guard, conditional state change, message, deliveries),
//! the signed sends, the attempts and their retry times. Duplicates are
//! harmless: a fire commits only while the schedule is pending at `at`.

use crate::Runtime;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lifecycle_core::error::ApiError;
use lifecycle_core::ports::Store;
use lifecycle_core::time::{parse_time, Time};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The target input (see `lifecycle_aws::scheduler::input`); the scheduler's
/// context attributes (`scheduled_time`, ...) are kept for the logs only.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct TimerInput {
    pub timer: String,
    pub at: String,
    #[serde(default)]
    pub scheduled_time: Option<String>,
    #[serde(default)]
    pub execution_id: Option<String>,
    #[serde(default)]
    pub attempt: Option<String>,
}

#[derive(Debug, PartialEq, Serialize)]
pub enum Outcome {
    /// The timer ran (fired and attempted, or found nothing to do).
    Ran,
    /// The schedule is no longer pending at `at`: moved, cancelled, fired.
    Stale,
    /// Too early to hold: sent back to the timer queue with a delay.
    Requeued { delay_seconds: i32 },
}

fn bad(text: &str) -> ApiError {
    ApiError::internal(text.to_string())
}

/// Runs one timer input.
pub async fn handle_timer(rt: &Runtime, input: &TimerInput) -> Result<Outcome, ApiError> {
    let at: Time = parse_time(&input.at).ok_or_else(|| bad("the input's `at` is not a time"))?;
    // The stale guard, first with the input's own time: a moved schedule's
    // old invocation does nothing (the core's fire checks state and time again).
    // The input carries milliseconds, as the table's time keys do.
    if input.timer.starts_with("sch_") {
        match rt.store.schedule(&input.timer).await? {
            Some(s)
                if s.state == lifecycle_core::schedule::ScheduleState::Pending
                    && s.fire_at.timestamp_millis() == at.timestamp_millis() => {}
            Some(_) => return Ok(Outcome::Stale),
            // Schedule items are never deleted, and every timer comes from
            // one: it was written a moment ago and the eventually consistent
            // `lookup` index does not show it yet. An error makes the queue
            // (or Lambda's async retries) bring it back shortly.
            None => {
                return Err(ApiError::unavailable(format!(
                    "schedule {} is not readable yet; retried",
                    input.timer
                )))
            }
        }
    }
    let remaining = at - rt.clock.now();
    if remaining > rt.settings.hold {
        return requeue(rt, input, at).await;
    }
    if remaining > chrono::Duration::zero() {
        tokio::time::sleep(remaining.to_std().unwrap_or_default()).await;
    }
    rt.service().run_timer(&input.timer).await?;
    Ok(Outcome::Ran)
}

async fn requeue(rt: &Runtime, input: &TimerInput, at: Time) -> Result<Outcome, ApiError> {
    let url = rt
        .settings
        .timer_queue_url
        .as_ref()
        .ok_or_else(|| bad("a timer came early and TIMER_QUEUE_URL is not set"))?;
    let delay = crate::near::delay_seconds(at, rt.clock.now());
    let body = serde_json::to_string(input).map_err(|e| bad(&e.to_string()))?;
    rt.sqs
        .send_message()
        .queue_url(url)
        .message_body(body)
        .delay_seconds(delay)
        .send()
        .await
        .map_err(|e| bad(&format!("requeueing {}: {e:?}", input.timer)))?;
    Ok(Outcome::Requeued {
        delay_seconds: delay,
    })
}

/// A batch from the timer queue: every message runs side by side (each
/// may hold up to a minute); the failed ones are reported for a retry.
pub async fn handle_sqs(rt: Arc<Runtime>, event: SqsEvent) -> SqsBatchResponse {
    let mut running = tokio::task::JoinSet::new();
    for message in event.records {
        let rt = rt.clone();
        running.spawn(async move {
            let id = message.message_id.clone().unwrap_or_default();
            let input: Result<TimerInput, _> =
                serde_json::from_str(message.body.as_deref().unwrap_or_default());
            let result = match input {
                // A body that is no timer would fail forever: dropped, logged.
                Err(error) => {
                    tracing::error!(%error, message = %id, "not a timer input; dropped");
                    Ok(())
                }
                Ok(input) => handle_timer(&rt, &input).await.map(drop),
            };
            (id, result)
        });
    }
    let mut response = SqsBatchResponse::default();
    while let Some(done) = running.join_next().await {
        if let Ok((id, Err(error))) = done {
            tracing::warn!(%error, message = %id, "timer failed; the queue retries it");
            let mut failure = aws_lambda_events::event::sqs::BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

/// Any input of the `deliver` function: an SQS batch (`Records`) or a
/// schedule's input.
pub async fn dispatch(
    rt: Arc<Runtime>,
    input: serde_json::Value,
) -> Result<serde_json::Value, String> {
    if input.get("Records").is_some() {
        let event: SqsEvent = serde_json::from_value(input).map_err(|e| e.to_string())?;
        let response = handle_sqs(rt, event).await;
        return serde_json::to_value(response).map_err(|e| e.to_string());
    }
    let timer: TimerInput = serde_json::from_value(input).map_err(|e| e.to_string())?;
    let outcome = handle_timer(&rt, &timer)
        .await
        .map_err(|e| format!("timer {}: {e:?}", timer.timer))?;
    tracing::info!(timer = %timer.timer, ?outcome, "timer");
    serde_json::to_value(outcome).map_err(|e| e.to_string())
}

/// The `Instant` of a Lambda deadline (milliseconds since the epoch).
pub fn deadline(epoch_ms: u64) -> std::time::Instant {
    let now_ms = chrono::Utc::now().timestamp_millis().max(0) as u64;
    std::time::Instant::now() + std::time::Duration::from_millis(epoch_ms.saturating_sub(now_ms))
}
