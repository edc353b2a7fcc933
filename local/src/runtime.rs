//! The local runtime wired once: the service over SQLite, the embedded
//! scheduler and the HTTP sender, counting into the process's metrics.
//! `lifecycle serve`, the benchmarks and the tests all start it here, so
//! what they measure is what users run.

use crate::metrics::{track_requests, LocalMetrics};
use crate::sqlite::SqliteStore;
use crate::timers::{self, LocalScheduler};
use lifecycle_core::api::ApiKeys;
use lifecycle_core::ports::Sender;
use lifecycle_core::service::{Config, Service};
use lifecycle_core::time::Clock;
use std::sync::Arc;
use tokio::sync::Notify;

#[derive(Clone)]
pub struct Runtime {
    pub service: Arc<Service>,
    pub store: SqliteStore,
    pub metrics: Arc<LocalMetrics>,
    wake: Arc<Notify>,
}

impl Runtime {
    /// Wires the parts and installs the system notifications. The sender is
    /// the HTTP one, or one that routes by endpoint kind around it.
    pub async fn start(
        store: SqliteStore,
        sender: impl Sender + 'static,
        clock: Arc<dyn Clock>,
        config: Config,
    ) -> Result<Self, lifecycle_core::error::ApiError> {
        let metrics = Arc::new(LocalMetrics::new());
        let store = store.timing_writes(metrics.sqlite_write_seconds.clone());
        let wake = Arc::new(Notify::new());
        let service = Service::new(
            Arc::new(store.clone()),
            Arc::new(LocalScheduler::new(wake.clone())),
            Arc::new(sender),
            clock,
            config,
        )
        .with_metrics(metrics.clone());
        let service = Arc::new(service);
        service.install().await?;
        Ok(Runtime {
            service,
            store,
            metrics,
            wake,
        })
    }

    /// Starts the timer loop (and the flushes of the per-minute figures).
    pub fn run_timers(&self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(timers::run(
            self.service.clone(),
            self.store.clone(),
            self.wake.clone(),
            self.metrics.clone(),
        ))
    }

    /// The API and the page, each request counted.
    pub fn router(&self, api_keys: impl Into<ApiKeys>) -> axum::Router {
        lifecycle_core::api::router(self.service.clone(), api_keys).layer(
            axum::middleware::from_fn_with_state(self.metrics.clone(), track_requests),
        )
    }
}
