//! The near-timer sink of the `schedule` function: timers due within
//! `SchedulerConfig::near` (14 minutes) go to the SQS timer queue with
//! `DelaySeconds` instead of EventBridge Scheduler; the message body is the
//! same input a schedule carries, and the deliverer holds the last second.

use async_trait::async_trait;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use lifecycle_aws::NearTimers;
use lifecycle_core::time::{Clock, Time};
use std::sync::Arc;

pub struct SqsTimers {
    pub client: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub clock: Arc<dyn Clock>,
}

/// SQS delays go up to 15 minutes; the message arrives a second early and
/// the deliverer holds the rest.
pub fn delay_seconds(at: Time, now: Time) -> i32 {
    ((at - now).num_seconds() - 1).clamp(0, 900) as i32
}

#[async_trait]
impl NearTimers for SqsTimers {
    async fn due(&self, timers: &[(String, Time)]) -> Result<(), String> {
        let now = self.clock.now();
        for chunk in timers.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, (id, at))| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(lifecycle_aws::scheduler::input(id, *at))
                        .delay_seconds(delay_seconds(*at, now))
                        .build()
                        .map_err(|e| e.to_string())
                })
                .collect::<Result<Vec<_>, _>>()?;
            let sent = self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| format!("sending timers to the queue: {e:?}"))?;
            if !sent.failed().is_empty() {
                return Err(format!("the queue refused timers: {:?}", sent.failed()));
            }
        }
        Ok(())
    }
}

/// Where near timers go when there is no queue (a misconfiguration): refused,
/// so the stream batch is retried rather than the timer lost.
pub struct NoQueue;

#[async_trait]
impl NearTimers for NoQueue {
    async fn due(&self, timers: &[(String, Time)]) -> Result<(), String> {
        Err(format!(
            "{} timers are due within minutes but TIMER_QUEUE_URL is not set",
            timers.len()
        ))
    }
}
