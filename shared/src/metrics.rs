//! What the service counts as it works, for a runtime to export: the local
//! one as Prometheus families on `GET /metrics`, the AWS one as CloudWatch
//! metrics in the embedded metric format. The names of the API contract's
//! families live here, once; each exporter derives its own from them.

use crate::event_type::EventType;

pub const EVENTS_INGESTED: &str = "lifecycle_events_ingested";
pub const WEBHOOKS_FIRED: &str = "lifecycle_webhooks_fired";
pub const DELIVERY_ATTEMPTS: &str = "lifecycle_delivery_attempts";
pub const DELIVERY_LAG: &str = "lifecycle_delivery_lag_seconds";
pub const SCHEDULES_PENDING: &str = "lifecycle_schedules_pending";
pub const DELIVERIES_PENDING: &str = "lifecycle_deliveries_pending";
pub const ENDPOINTS: &str = "lifecycle_endpoints";

/// How one delivery attempt ended (the `outcome` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttemptOutcome {
    Success,
    Failure,
    Timeout,
}

impl AttemptOutcome {
    pub const ALL: [AttemptOutcome; 3] = [Self::Success, Self::Failure, Self::Timeout];

    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Success => "success",
            AttemptOutcome::Failure => "failure",
            AttemptOutcome::Timeout => "timeout",
        }
    }
}

/// An endpoint's health (the `state` label of `lifecycle_endpoints`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EndpointState {
    Healthy,
    Failing,
    Disabled,
}

impl EndpointState {
    pub const ALL: [EndpointState; 3] = [Self::Healthy, Self::Failing, Self::Disabled];

    pub fn of(endpoint: &crate::endpoint::Endpoint) -> Self {
        match (endpoint.enabled, endpoint.failing_since) {
            (false, _) => EndpointState::Disabled,
            (true, Some(_)) => EndpointState::Failing,
            (true, None) => EndpointState::Healthy,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EndpointState::Healthy => "healthy",
            EndpointState::Failing => "failing",
            EndpointState::Disabled => "disabled",
        }
    }
}

/// What is waiting now: the gauges, read from the store when asked.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Backlog {
    pub schedules_pending: u64,
    pub deliveries_pending: u64,
}

/// The figures of `GET /metrics` that are read at the time of the scrape.
#[derive(Clone, Debug, Default)]
pub struct Gauges {
    pub backlog: Backlog,
    pub endpoints: Vec<(EndpointState, u64)>,
}

/// The counters the service feeds. Each call is one in-memory update:
/// counting must not slow the paths it counts.
pub trait Metrics: Send + Sync {
    fn events_ingested(&self, _type_name: &str, _count: u64) {}
    fn webhooks_fired(&self, _event_type: EventType, _count: u64) {}
    /// One attempt; `lag_seconds` (from `scheduled_for` to the attempt) when it succeeded.
    fn delivery_attempt(&self, _outcome: AttemptOutcome, _lag_seconds: Option<f64>) {}
    /// The Prometheus text of every family, with these gauges; None where
    /// the runtime exports its metrics otherwise (CloudWatch on AWS).
    fn exposition(&self, _gauges: &Gauges) -> Option<String> {
        None
    }
}

/// Counts nothing (tests, tools).
pub struct NoMetrics;

impl Metrics for NoMetrics {}
