//! `GET /metrics` of the local runtime: the contract's families (named in
//! `lifecycle_core::metrics`) and the process's own (HTTP requests, SQLite
//! writes, the timer loop's wake-ups), kept by `prometheus-client` and
//! encoded by it in the OpenMetrics text format.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use lifecycle_core::event_type::EventType;
use lifecycle_core::metrics::{self as names, AttemptOutcome, Gauges, Metrics};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Instant;

type Labels<const N: usize> = [(&'static str, String); N];

/// From 10 ms to about 5.8 hours, doubling: a lag is a send's latency in
/// quiet times and the length of a backlog after an outage.
fn lag_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 22))
}

/// From 100 µs to about 6.5 s, doubling.
fn latency_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 17))
}

pub struct LocalMetrics {
    registry: Registry,
    ingested: Family<Labels<1>, Counter>,
    fired: Family<Labels<1>, Counter>,
    attempts: Family<Labels<1>, Counter>,
    lag: Histogram,
    schedules_pending: Gauge,
    deliveries_pending: Gauge,
    endpoints: Family<Labels<1>, Gauge>,
    requests: Family<Labels<3>, Counter>,
    request_seconds: Family<Labels<1>, Histogram>,
    /// How long each call on SQLite's writer connection takes, its commit included.
    pub sqlite_write_seconds: Histogram,
    /// The timer loop's wake-ups, by why it woke (`timer`, `notified`).
    pub timer_wakeups: Family<Labels<1>, Counter>,
}

impl Default for LocalMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let metrics = LocalMetrics {
            ingested: Family::default(),
            fired: Family::default(),
            attempts: Family::default(),
            lag: lag_buckets(),
            schedules_pending: Gauge::default(),
            deliveries_pending: Gauge::default(),
            endpoints: Family::default(),
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(latency_buckets),
            sqlite_write_seconds: latency_buckets(),
            timer_wakeups: Family::default(),
            registry: Registry::default(),
        };
        let m = &metrics;
        registry.register(
            names::EVENTS_INGESTED,
            "Events accepted by POST /v1/events, by type",
            m.ingested.clone(),
        );
        registry.register(
            names::WEBHOOKS_FIRED,
            "Webhooks made (one per webhook id, whatever its endpoints), by event type",
            m.fired.clone(),
        );
        registry.register(
            names::DELIVERY_ATTEMPTS,
            "Delivery attempts, by outcome",
            m.attempts.clone(),
        );
        registry.register(
            names::DELIVERY_LAG,
            "Seconds from a delivery's scheduled_for to its attempt that succeeded",
            m.lag.clone(),
        );
        registry.register(
            names::SCHEDULES_PENDING,
            "Moments stored as schedules and not yet fired",
            m.schedules_pending.clone(),
        );
        registry.register(
            names::DELIVERIES_PENDING,
            "Deliveries waiting for their first attempt or a retry",
            m.deliveries_pending.clone(),
        );
        registry.register(
            names::ENDPOINTS,
            "Webhook endpoints, by health",
            m.endpoints.clone(),
        );
        registry.register(
            "lifecycle_http_requests",
            "HTTP requests answered, by method, route and status",
            m.requests.clone(),
        );
        registry.register(
            "lifecycle_http_request_duration_seconds",
            "Seconds to answer an HTTP request, by route",
            m.request_seconds.clone(),
        );
        registry.register(
            "lifecycle_sqlite_write_seconds",
            "Seconds of each call on SQLite's writer connection, its commit included",
            m.sqlite_write_seconds.clone(),
        );
        registry.register(
            "lifecycle_timer_wakeups",
            "Times the timer loop woke, by why (timer: a timer fell due; notified: one was registered)",
            m.timer_wakeups.clone(),
        );
        LocalMetrics {
            registry,
            ..metrics
        }
    }

    pub fn timer_woke(&self, why: &'static str) {
        self.timer_wakeups
            .get_or_create(&[("reason", why.into())])
            .inc();
    }
}

impl Metrics for LocalMetrics {
    fn events_ingested(&self, type_name: &str, count: u64) {
        let labels = [("type", type_name.to_string())];
        self.ingested.get_or_create(&labels).inc_by(count);
    }

    fn webhooks_fired(&self, event_type: EventType, count: u64) {
        let labels = [("event_type", event_type.as_str().to_string())];
        self.fired.get_or_create(&labels).inc_by(count);
    }

    fn delivery_attempt(&self, outcome: AttemptOutcome, lag_seconds: Option<f64>) {
        let labels = [("outcome", outcome.as_str().to_string())];
        self.attempts.get_or_create(&labels).inc();
        if let Some(lag) = lag_seconds {
            self.lag.observe(lag);
        }
    }

    fn exposition(&self, gauges: &Gauges) -> Option<String> {
        self.schedules_pending
            .set(gauges.backlog.schedules_pending as i64);
        self.deliveries_pending
            .set(gauges.backlog.deliveries_pending as i64);
        for (state, count) in &gauges.endpoints {
            let labels = [("state", state.as_str().to_string())];
            self.endpoints.get_or_create(&labels).set(*count as i64);
        }
        // Every outcome is listed from the start, at zero until it happens.
        for outcome in AttemptOutcome::ALL {
            drop(
                self.attempts
                    .get_or_create(&[("outcome", outcome.as_str().to_string())]),
            );
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String does not fail");
        Some(text)
    }
}

/// Counts and times each request by its route (the pattern, not the path:
/// ids would make a series per entity).
pub async fn track_requests(
    State(metrics): State<Arc<LocalMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().as_str().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics
        .request_seconds
        .get_or_create(&[("route", route.clone())])
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&[("method", method), ("route", route), ("status", status)])
        .inc();
    response
}
