//! The scheduler port on EventBridge Scheduler, by ticks: one one-time
//! schedule per minute that has timers due in it (`tick-<yyyymmddThhmm>`),
//! not one per timer, so Scheduler calls and live schedules grow with the
//! distinct fire minutes, not with the moments. The tick fires in the minute
//! before its own and invokes `deliver`, which reads the minute's timers from
//! the `due` index (`crate::dynamodb::due`) and queues them to the second.
//! A moved or cancelled timer needs no call at all: the index no longer
//! shows it at its old minute, and the deliverer's checks catch a tick that
//! read it before the move. Timers due within `near` get no tick: they go to
//! the `NearTimers` sink (the SQS timer queue), so no `at()` is ever in the past.

use crate::dynamodb::{minute_of, time_key};
use crate::queue::{Timer, Work};
use async_trait::async_trait;
use aws_sdk_scheduler::types::{
    ActionAfterCompletion, DeadLetterConfig, FlexibleTimeWindow, FlexibleTimeWindowMode,
    RetryPolicy, ScheduleState, Target,
};
use aws_sdk_scheduler::Client;
use chrono::Duration;
use lifecycle_core::planner::TimerChange;
use lifecycle_core::ports::Scheduler;
use lifecycle_core::time::{Clock, Time};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

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
    /// Timers due sooner than this get no tick (SQS delays reach 15 minutes).
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

/// Receives the timers due too soon for a tick (with their items' keys
/// where known): in the deployment, the SQS timer queue with `DelaySeconds`.
#[async_trait]
pub trait NearTimers: Send + Sync {
    async fn due(&self, timers: &[Timer]) -> Result<(), String>;
}

pub struct EventBridgeScheduler {
    client: Client,
    config: Arc<SchedulerConfig>,
    near: Arc<dyn NearTimers>,
    clock: Arc<dyn Clock>,
    /// Minutes whose tick this execution environment made or found made:
    /// a boundary's million timers cost one CreateSchedule per environment.
    ticked: Mutex<HashSet<Time>>,
    /// Items' keys of timers about to be applied (`remember_locations`).
    locations: Mutex<HashMap<String, (String, String)>>,
}

/// The schedule of a minute's tick: `tick-20270101T0000` (valid: 1-64
/// characters of `[0-9a-zA-Z-_.]`).
pub fn tick_name(minute: Time) -> String {
    format!("tick-{}", minute.format("%Y%m%dT%H%M"))
}

/// The minute before the tick's own: EventBridge Scheduler invokes an
/// `at()` schedule within the minute it names, so the tick runs in
/// (`minute - 60 s`, `minute`) and its timers are queued before they are due.
pub fn fire_minute(minute: Time) -> Time {
    minute_of(minute) - Duration::minutes(1)
}

/// `at(yyyy-mm-ddThh:mm:ss)` of a minute's tick, read in UTC.
pub fn expression(minute: Time) -> String {
    format!("at({})", fire_minute(minute).format("%Y-%m-%dT%H:%M:%S"))
}

/// The tick's input: the minute and generation 0 (the sweep's re-wakes use
/// later generations), with the scheduler's context attributes for the logs.
pub fn tick_input(minute: Time) -> String {
    let mut input = serde_json::to_value(Work::tick(minute_of(minute), 0)).expect("serializes");
    input["scheduled_time"] = "<aws.scheduler.scheduled-time>".into();
    input["execution_id"] = "<aws.scheduler.execution-id>".into();
    input["attempt"] = "<aws.scheduler.attempt-number>".into();
    input.to_string()
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
            ticked: Mutex::default(),
            locations: Mutex::default(),
        }
    }

    /// Where the items of timers about to be applied are (id, pk, sk), as
    /// the stream records that made them say: a near timer carries its key,
    /// so the deliverer reads the item directly rather than through the
    /// eventually consistent `lookup` index, which may not show it yet.
    pub fn remember_locations(&self, known: impl IntoIterator<Item = (String, String, String)>) {
        let mut locations = self.locations.lock().unwrap_or_else(|p| p.into_inner());
        for (id, pk, sk) in known {
            locations.insert(id, (pk, sk));
        }
    }

    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    /// Makes sure each minute has its tick: CreateSchedule, 16 in flight; a
    /// Conflict means it is there already. Minutes this environment ticked
    /// before cost nothing.
    pub async fn ensure_ticks(&self, minutes: &BTreeSet<Time>) -> Result<usize, String> {
        use futures::stream::{self, StreamExt};
        let fresh: Vec<Time> = {
            let ticked = self.ticked.lock().unwrap_or_else(|p| p.into_inner());
            minutes
                .iter()
                .map(|m| minute_of(*m))
                .filter(|m| !ticked.contains(m))
                .collect()
        };
        let results: Vec<Result<Time, String>> = stream::iter(fresh)
            .map(|minute| async move { self.create_tick(minute).await.map(|()| minute) })
            .buffer_unordered(16)
            .collect()
            .await;
        let mut errors = Vec::new();
        let mut made = 0;
        for result in results {
            match result {
                Ok(minute) => {
                    made += 1;
                    (self.ticked.lock().unwrap_or_else(|p| p.into_inner())).insert(minute);
                }
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(made)
        } else {
            Err(errors.join("; "))
        }
    }

    fn target(&self, minute: Time) -> Result<Target, String> {
        Target::builder()
            .arn(&self.config.target_arn)
            .role_arn(&self.config.role_arn)
            .input(tick_input(minute))
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

    /// A tick is never moved or deleted: its minute is its name, and a
    /// minute left with nothing due costs one empty read of the index.
    async fn create_tick(&self, minute: Time) -> Result<(), String> {
        let name = tick_name(minute);
        let window = FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()
            .map_err(|e| e.to_string())?;
        let created = self
            .client
            .create_schedule()
            .name(&name)
            .group_name(&self.config.group)
            .schedule_expression(expression(minute))
            .schedule_expression_timezone("UTC")
            .flexible_time_window(window)
            .action_after_completion(ActionAfterCompletion::Delete)
            .state(ScheduleState::Enabled)
            .target(self.target(minute)?)
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conflict_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(format!(
                "creating tick {name} ({}): {e:?}",
                time_key(minute)
            )),
        }
    }
}

#[async_trait]
impl Scheduler for EventBridgeScheduler {
    /// The last change of each timer counts. A set due within `near` goes
    /// to the near sink; a later one needs its minute's tick. Clears need
    /// nothing (see the module). Both halves are tried; errors are joined.
    async fn apply(&self, changes: &[TimerChange]) -> Result<(), String> {
        let now = self.clock.now();
        let mut last: HashMap<&str, Option<Time>> = HashMap::new();
        for change in changes {
            match change {
                TimerChange::Set { id, at } => last.insert(id, Some(*at)),
                TimerChange::Clear { id } => last.insert(id, None),
            };
        }
        let mut near = Vec::new();
        let mut minutes = BTreeSet::new();
        let mut locations =
            std::mem::take(&mut *self.locations.lock().unwrap_or_else(|p| p.into_inner()));
        for (id, at) in last {
            match at {
                Some(at) if at - now <= self.config.near => {
                    let (pk, sk) = locations.remove(id).unzip();
                    near.push(Timer {
                        pk,
                        sk,
                        ..Timer::new(id, at)
                    });
                }
                Some(at) => {
                    minutes.insert(minute_of(at));
                }
                None => {}
            }
        }
        near.sort_by(|a, b| (&a.at, &a.timer).cmp(&(&b.at, &b.timer)));
        let mut errors = Vec::new();
        if let Err(e) = self.ensure_ticks(&minutes).await {
            errors.push(e);
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
