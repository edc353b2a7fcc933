//! The near-timer sink of the `schedule` function: timers due within
//! `SchedulerConfig::near` (14 minutes) go to the SQS timer queue with
//! `DelaySeconds` instead of a tick, grouped by the second they are due in
//! (`lifecycle_aws::queue::messages_of`), each with its item's key where the stream gave it; the deliverer holds the last second.

use async_trait::async_trait;
use lifecycle_aws::queue::{messages_of, Timer};
use lifecycle_aws::{NearTimers, TimerQueue};
use lifecycle_core::time::Clock;
use std::sync::Arc;

pub struct SqsTimers {
    pub queue: TimerQueue,
    pub clock: Arc<dyn Clock>,
}

#[async_trait]
impl NearTimers for SqsTimers {
    async fn due(&self, timers: &[Timer]) -> Result<(), String> {
        let messages = messages_of(timers.to_vec(), self.clock.now());
        self.queue.send(&messages).await
    }
}

/// Where near timers go when there is no queue (a misconfiguration): refused,
/// so the stream batch is retried rather than the timer lost.
pub struct NoQueue;

#[async_trait]
impl NearTimers for NoQueue {
    async fn due(&self, timers: &[Timer]) -> Result<(), String> {
        Err(format!(
            "{} timers are due within minutes but TIMER_QUEUE_URL is not set",
            timers.len()
        ))
    }
}
