//! The use cases, written once over the ports: ingest writes, manage
//! notifications and endpoints, fire due schedules, attempt deliveries.

mod deliver;
mod endpoints;
mod fire;
mod horizon;
mod ingest;
mod notifications;
mod signal_decision;
mod signals;
mod stats;
mod views;

pub use fire::Fired;
pub use ingest::WriteResult;
pub use notifications::FanOutPage;
pub use signal_decision::period_key;

use crate::ports::{Scheduler, Sender, Store};
use crate::retry::RetryPolicy;
use crate::time::Clock;
use chrono::Duration;
use std::sync::Arc;

/// A webhook must answer within this long.
pub const SEND_TIMEOUT_SECS: i64 = 15;

#[derive(Clone, Debug)]
pub struct Config {
    pub retry: RetryPolicy,
    /// Plain http webhook URLs (the local runtime allows them).
    pub allow_http: bool,
    /// Where `eventbridge` and `sqs` endpoints may point (None: the
    /// runtime has no AWS credentials and refuses them).
    pub aws_destinations: Option<crate::endpoint_kind::AwsAllowList>,
    /// An endpoint whose every attempt failed for this long is disabled.
    pub disable_after: Duration,
    /// The `catch_up` of notifications that do not give one, the system
    /// ones included (the contract's default is PT24H).
    pub default_catch_up: crate::offset::Offset,
    /// Moments firing later than this from now are deferred, not stored
    /// (`crate::horizon`); None stores every moment (a store that keeps
    /// no deferrals needs None).
    pub horizon: Option<Duration>,
    /// Notification changes are written and answered at once, and their
    /// re-plan over every entity and a threshold's evaluation over every
    /// customer are left to the runtime (on AWS the api answers within
    /// API Gateway's 30 s; the `schedule` function runs them from the
    /// notification's stream record, through `Service::reschedule_page` and
    /// `Service::evaluate_everyone`).
    pub defer_fan_outs: bool,
    /// A write's webhooks are made in the write's own commit (their message
    /// and deliveries, due at once), not planned as schedules that a timer
    /// fires a moment later: a single-event request then costs the store
    /// one commit before its attempt, not three. Off on AWS, where a
    /// transaction bills each of its items twice and the fire's own steps
    /// do not.
    pub fire_writes_at_ingest: bool,
}

impl Config {
    pub fn endpoint_rules(&self) -> crate::endpoint::EndpointRules {
        crate::endpoint::EndpointRules {
            allow_http: self.allow_http,
            aws: self.aws_destinations.clone(),
        }
    }

    /// The latest fire time stored as a schedule when planning at `now`.
    fn edge(&self, now: crate::time::Time) -> Option<crate::time::Time> {
        self.horizon.map(|horizon| now + horizon)
    }
}

/// One entity's plan, with the moments beyond `edge` deferred; `whole`:
/// planned under every notification.
fn plan_entity(
    record: &crate::entity::EntityRecord,
    notifications: &[crate::notification::Notification],
    existing: &[crate::schedule::Schedule],
    now: crate::time::Time,
    edge: Option<crate::time::Time>,
    whole: bool,
) -> crate::planner::Plan {
    match edge {
        Some(edge) => {
            crate::horizon::plan_deferring(record, notifications, existing, now, edge, whole)
        }
        None => crate::planner::plan(record, notifications, existing, now),
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            allow_http: true,
            aws_destinations: None,
            disable_after: Duration::days(5),
            default_catch_up: crate::offset::Offset::parse(crate::notification::DEFAULT_CATCH_UP)
                .expect("the default catch-up parses"),
            horizon: None,
            defer_fan_outs: false,
            fire_writes_at_ingest: true,
        }
    }
}

pub struct Service {
    pub store: Arc<dyn Store>,
    pub scheduler: Arc<dyn Scheduler>,
    pub sender: Arc<dyn Sender>,
    pub clock: Arc<dyn Clock>,
    pub config: Config,
    /// Where the counters go (`Service::with_metrics`; none by default).
    pub metrics: Arc<dyn crate::metrics::Metrics>,
    /// The per-minute figures not yet in the store (`Service::flush_stats`).
    stats: crate::stats::StatsRecorder,
    /// Serializes this process's changes to entities, notifications and
    /// schedules, so a plan never races a concurrent edit. The store's
    /// conditional writes still guard against other processes, and against
    /// the batches of writes that share it (see `ingest`).
    changes: tokio::sync::RwLock<()>,
}

impl Service {
    pub fn new(
        store: Arc<dyn Store>,
        scheduler: Arc<dyn Scheduler>,
        sender: Arc<dyn Sender>,
        clock: Arc<dyn Clock>,
        config: Config,
    ) -> Self {
        Self {
            store,
            scheduler,
            sender,
            clock,
            config,
            metrics: Arc::new(crate::metrics::NoMetrics),
            stats: Default::default(),
            changes: tokio::sync::RwLock::new(()),
        }
    }

    /// The same service, counting into `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<dyn crate::metrics::Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Installs the system notifications a fresh install has.
    pub async fn install(&self) -> Result<(), crate::error::ApiError> {
        let mut defaults = crate::notification::Notification::system_defaults(self.clock.now());
        for notification in &mut defaults {
            notification.catch_up = self.config.default_catch_up.clone();
        }
        Ok(self.store.install(&defaults).await?)
    }

    /// How long an attempt holds its delivery when it may wait for `waves`
    /// sends ahead of it (each up to the send timeout): past them all, so a
    /// crash mid-attempt is retried after it and a live attempt is never
    /// doubled. One wave: 45 s.
    fn attempt_lease(waves: usize) -> Duration {
        Duration::seconds(SEND_TIMEOUT_SECS * waves as i64 + 30)
    }

    /// Registers a timer at `now` for each pending delivery, so it is attempted at once.
    async fn wake_deliveries(
        &self,
        deliveries: &[crate::schedule::Delivery],
        now: crate::time::Time,
    ) {
        let timers: Vec<_> = deliveries
            .iter()
            .filter(|d| d.status == crate::schedule::DeliveryStatus::Pending)
            .map(|d| crate::planner::TimerChange::Set {
                id: d.id.clone(),
                at: now,
            })
            .collect();
        self.set_timers(&timers).await;
    }

    /// After a plan is committed: its timers registered, and the scheduler
    /// told of the soonest moment it deferred.
    async fn plan_committed(&self, plan: &crate::planner::Plan) {
        self.set_timers(&plan.timers).await;
        let soonest = plan.deferred.iter().filter_map(|d| d.earliest).min();
        if let Some(earliest) = soonest {
            if let Err(error) = self.scheduler.deferred(earliest).await {
                tracing::warn!(%error, "could not tell the scheduler of deferred moments");
            }
        }
    }

    async fn set_timers(&self, changes: &[crate::planner::TimerChange]) {
        if changes.is_empty() {
            return;
        }
        // The schedules are committed; a timer that fails to register is
        // found again by the scheduler's own sweep of due schedules.
        if let Err(error) = self.scheduler.apply(changes).await {
            tracing::warn!(%error, "could not register timers; the sweep will pick them up");
        }
    }
}
