//! The scheduler port on EventBridge Scheduler: one one-time schedule per
//! timer, in the deployment's group, named by the timer id, firing in the
//! minute before the timer (the deliverer holds the remainder: second
//! precision). Timers due within `near` get no schedule: they go to the
//! `NearTimers` sink (the SQS timer queue in the deployment, see
//! `infra/README.md`), so no `at()` is ever in the past.

use async_trait::async_trait;
use aws_sdk_scheduler::types::{
    ActionAfterCompletion, DeadLetterConfig, FlexibleTimeWindow, FlexibleTimeWindowMode,
    RetryPolicy, ScheduleState, Target,
};
use aws_sdk_scheduler::Client;
use chrono::{Duration, DurationRound};
use lifecycle_core::planner::TimerChange;
use lifecycle_core::ports::Scheduler;
use lifecycle_core::time::{Clock, Time};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Where the schedules go and what they invoke.
#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    /// The deployment's schedule group.
    pub group: String,
    /// The `deliver` function's ARN.
    pub target_arn: String,
    /// The role EventBridge Scheduler assumes to invoke the target.
    pub role_arn: String,
    /// The schedules' SQS dead-letter queue.
    pub dead_letter_arn: String,
    pub maximum_retry_attempts: i32,
    pub maximum_event_age_seconds: i32,
    /// Timers due sooner than this get no schedule (SQS delays reach 15 minutes).
    pub near: Duration,
}

impl SchedulerConfig {
    /// The design's values (`infra/README.md`): 10 retries within an hour,
    /// timers due within 14 minutes handed to the near sink.
    pub fn new(group: &str, target_arn: &str, role_arn: &str, dead_letter_arn: &str) -> Self {
        SchedulerConfig {
            group: group.into(),
            target_arn: target_arn.into(),
            role_arn: role_arn.into(),
            dead_letter_arn: dead_letter_arn.into(),
            maximum_retry_attempts: 10,
            maximum_event_age_seconds: 3600,
            near: Duration::minutes(14),
        }
    }

    /// From the schedule function's environment (`SCHEDULE_GROUP`,
    /// `DELIVER_FUNCTION_ARN`, `SCHEDULER_ROLE_ARN`, `SCHEDULE_DLQ_ARN`).
    pub fn from_env() -> Result<Self, String> {
        let var = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
        Ok(Self::new(
            &var("SCHEDULE_GROUP")?,
            &var("DELIVER_FUNCTION_ARN")?,
            &var("SCHEDULER_ROLE_ARN")?,
            &var("SCHEDULE_DLQ_ARN")?,
        ))
    }
}

/// Receives the timers due too soon for a schedule (id, fire time): in the
/// deployment, the SQS timer queue with `DelaySeconds`.
#[async_trait]
pub trait NearTimers: Send + Sync {
    async fn due(&self, timers: &[(String, Time)]) -> Result<(), String>;
}

pub struct EventBridgeScheduler {
    client: Client,
    config: Arc<SchedulerConfig>,
    near: Arc<dyn NearTimers>,
    clock: Arc<dyn Clock>,
}

/// A schedule name for a timer id: the id itself when it is a valid name
/// (1-64 characters of `[0-9a-zA-Z-_.]`; `sch_<32 hex>` and `dlv_<32 hex>`
/// are), otherwise `h-` and 40 hex characters of its SHA-256.
pub fn schedule_name(id: &str) -> String {
    let valid = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if valid {
        return id.to_string();
    }
    let digest = Sha256::digest(id.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("h-{}", &hex[..40])
}

/// The minute that starts at or before `at - 60 s`: the schedule invokes
/// within (`at - 120 s`, `at`), and the deliverer holds the remainder.
pub fn fire_minute(at: Time) -> Time {
    (at - Duration::seconds(60))
        .duration_trunc(Duration::minutes(1))
        .expect("a minute divides any time")
}

/// `at(yyyy-mm-ddThh:mm:ss)`, read in UTC.
pub fn expression(at: Time) -> String {
    format!("at({})", fire_minute(at).format("%Y-%m-%dT%H:%M:%S"))
}

/// The target input: the timer id and its fire time (the deliverer's dedupe
/// key), with the scheduler's context attributes.
pub fn input(id: &str, at: Time) -> String {
    json!({
        "timer": id,
        "at": at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        "scheduled_time": "<aws.scheduler.scheduled-time>",
        "execution_id": "<aws.scheduler.execution-id>",
        "attempt": "<aws.scheduler.attempt-number>",
    })
    .to_string()
}

impl EventBridgeScheduler {
    pub fn new(
        client: Client,
        config: SchedulerConfig,
        near: Arc<dyn NearTimers>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            client,
            config: Arc::new(config),
            near,
            clock,
        }
    }

    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }
}

/// The calls, on a client and configuration the tasks of one `apply` share.
struct Calls {
    client: Client,
    config: Arc<SchedulerConfig>,
}

impl Calls {
    fn target(&self, id: &str, at: Time) -> Result<Target, String> {
        Target::builder()
            .arn(&self.config.target_arn)
            .role_arn(&self.config.role_arn)
            .input(input(id, at))
            .retry_policy(
                RetryPolicy::builder()
                    .maximum_retry_attempts(self.config.maximum_retry_attempts)
                    .maximum_event_age_in_seconds(self.config.maximum_event_age_seconds)
                    .build(),
            )
            .dead_letter_config(
                DeadLetterConfig::builder()
                    .arn(&self.config.dead_letter_arn)
                    .build(),
            )
            .build()
            .map_err(|e| e.to_string())
    }

    fn window() -> Result<FlexibleTimeWindow, String> {
        FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()
            .map_err(|e| e.to_string())
    }

    /// Creates the schedule, or on Conflict (it exists, perhaps at another
    /// time) updates it with the full definition: UpdateSchedule resets
    /// whatever it is not given.
    async fn upsert(&self, id: &str, at: Time) -> Result<(), String> {
        let name = schedule_name(id);
        let created = self
            .client
            .create_schedule()
            .name(&name)
            .group_name(&self.config.group)
            .schedule_expression(expression(at))
            .schedule_expression_timezone("UTC")
            .flexible_time_window(Self::window()?)
            .action_after_completion(ActionAfterCompletion::Delete)
            .state(ScheduleState::Enabled)
            .target(self.target(id, at)?)
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conflict_exception()) =>
            {
                self.client
                    .update_schedule()
                    .name(&name)
                    .group_name(&self.config.group)
                    .schedule_expression(expression(at))
                    .schedule_expression_timezone("UTC")
                    .flexible_time_window(Self::window()?)
                    .action_after_completion(ActionAfterCompletion::Delete)
                    .state(ScheduleState::Enabled)
                    .target(self.target(id, at)?)
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| format!("updating schedule {name}: {e:?}"))
            }
            Err(e) => Err(format!("creating schedule {name}: {e:?}")),
        }
    }

    async fn delete(&self, id: &str) -> Result<(), String> {
        let name = schedule_name(id);
        match self
            .client
            .delete_schedule()
            .name(&name)
            .group_name(&self.config.group)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(format!("deleting schedule {name}: {e:?}")),
        }
    }
}

#[async_trait]
impl Scheduler for EventBridgeScheduler {
    /// Applies the last change of each timer (16 calls in flight), then
    /// hands the near ones to the sink. A timer moved from far to near keeps
    /// its old schedule: when that fires, the deliverer finds `at` different
    /// from the schedule's fire time and does nothing (the stale guard), so
    /// no delete is spent on it. Errors are collected, not short-circuited:
    /// every change is tried.
    async fn apply(&self, changes: &[TimerChange]) -> Result<(), String> {
        let now = self.clock.now();
        // The last change of each timer is the one that counts.
        let mut seen = std::collections::HashSet::new();
        let mut last: Vec<&TimerChange> = changes
            .iter()
            .rev()
            .filter(|change| match change {
                TimerChange::Set { id, .. } | TimerChange::Clear { id } => seen.insert(id.as_str()),
            })
            .collect();
        last.reverse();
        let mut near = Vec::new();
        let mut errors = Vec::new();
        let mut running = tokio::task::JoinSet::new();
        for change in last {
            if let TimerChange::Set { id, at } = change {
                if *at - now <= self.config.near {
                    near.push((id.clone(), *at));
                    continue;
                }
            }
            // At most 16 calls in flight.
            while running.len() >= 16 {
                if let Some(done) = running.join_next().await {
                    errors.extend(done.map_err(|e| e.to_string()).and_then(|r| r).err());
                }
            }
            let calls = Calls {
                client: self.client.clone(),
                config: self.config.clone(),
            };
            let change = change.clone();
            running.spawn(async move {
                match change {
                    TimerChange::Set { id, at } => calls.upsert(&id, at).await,
                    TimerChange::Clear { id } => calls.delete(&id).await,
                }
            });
        }
        while let Some(done) = running.join_next().await {
            errors.extend(done.map_err(|e| e.to_string()).and_then(|r| r).err());
        }
        if !near.is_empty() {
            if let Err(e) = self.near.due(&near).await {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}
