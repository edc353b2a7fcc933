//! Building the core's `Service` over `DynamoStore`, for each function.

use crate::deferred::DeferredFanOut;
use crate::near::{NoQueue, SqsTimers};
use crate::settings::Settings;
use async_trait::async_trait;
use lifecycle_aws::{DynamoStore, EventBridgeScheduler, NearTimers};
use lifecycle_core::planner::TimerChange;
use lifecycle_core::ports::{Scheduler, Store};
use lifecycle_core::service::{Config, Service, SEND_TIMEOUT_SECS};
use lifecycle_core::time::{Clock, SystemClock};
use lifecycle_local::sender::HttpSender;
use std::sync::Arc;
use std::time::Duration;

/// What every function holds for the life of its execution environment.
pub struct Runtime {
    pub settings: Settings,
    pub store: Arc<DynamoStore>,
    pub clock: Arc<dyn Clock>,
    pub sqs: aws_sdk_sqs::Client,
    /// The timer router (EventBridge Scheduler, SQS for near timers): only
    /// the `schedule` function has one.
    pub scheduler: Option<Arc<EventBridgeScheduler>>,
}

/// The scheduler port of `api` and `deliver`: nothing to do, because the
/// timers follow from the schedule and delivery items they write (the
/// table's stream is the outbox; `schedule` turns it into timers).
pub struct StreamTimers;

#[async_trait]
impl Scheduler for StreamTimers {
    async fn apply(&self, _changes: &[TimerChange]) -> Result<(), String> {
        Ok(())
    }
}

impl Runtime {
    pub fn new(sdk: &aws_config::SdkConfig, settings: Settings, clock: Arc<dyn Clock>) -> Self {
        let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let store = Arc::new(
            DynamoStore::new(dynamodb, settings.table.clone())
                .with_event_dedupe_days(settings.event_dedupe_days),
        );
        let scheduler = settings.scheduler.clone().map(|config| {
            let near: Arc<dyn NearTimers> = match &settings.timer_queue_url {
                Some(url) => Arc::new(SqsTimers {
                    client: sqs.clone(),
                    queue_url: url.clone(),
                    clock: clock.clone(),
                }),
                None => Arc::new(NoQueue),
            };
            Arc::new(EventBridgeScheduler::new(
                aws_sdk_scheduler::Client::new(sdk),
                config,
                near,
                clock.clone(),
            ))
        });
        Runtime {
            settings,
            store,
            clock,
            sqs,
            scheduler,
        }
    }

    /// From the function's environment (the template's variables), with the
    /// system clock.
    pub async fn from_env() -> Result<Self, String> {
        let settings = Settings::from_env()?;
        let sdk = aws_config::load_from_env().await;
        Ok(Self::new(&sdk, settings, Arc::new(SystemClock)))
    }

    fn config(&self) -> Config {
        let defaults = Config::default();
        Config {
            retry: self.settings.retry.clone(),
            allow_http: self.settings.allow_http,
            default_catch_up: (self.settings.default_catch_up.clone())
                .unwrap_or(defaults.default_catch_up.clone()),
            ..defaults
        }
    }

    fn sender(&self) -> Arc<HttpSender> {
        Arc::new(HttpSender::with(
            self.settings.destinations.clone(),
            Duration::from_secs(SEND_TIMEOUT_SECS as u64),
        ))
    }

    /// The `api` function's service: notification fan-outs deferred to the
    /// stream, timers left to the stream.
    pub fn api_service(&self) -> Service {
        let store: Arc<dyn Store> = self.store.clone();
        Service::new(
            Arc::new(DeferredFanOut(store)),
            Arc::new(StreamTimers),
            self.sender(),
            self.clock.clone(),
            self.config(),
        )
    }

    /// The `deliver` (and `schedule`) function's service: timers left to the stream.
    pub fn service(&self) -> Service {
        Service::new(
            self.store.clone(),
            Arc::new(StreamTimers),
            self.sender(),
            self.clock.clone(),
            self.config(),
        )
    }
}

/// The API key: `API_KEY` when set (tests, local tools), otherwise the
/// Secrets Manager secret `API_KEY_SECRET_ARN` names (the template's way:
/// the key never sits in the function configuration).
pub async fn api_key(sdk: &aws_config::SdkConfig) -> Result<String, String> {
    if let Ok(key) = std::env::var("API_KEY") {
        if !key.is_empty() {
            return Ok(key);
        }
    }
    let arn = std::env::var("API_KEY_SECRET_ARN")
        .map_err(|_| "neither API_KEY nor API_KEY_SECRET_ARN is set".to_string())?;
    let secret = aws_sdk_secretsmanager::Client::new(sdk)
        .get_secret_value()
        .secret_id(&arn)
        .send()
        .await
        .map_err(|e| format!("reading the API key secret: {e:?}"))?;
    secret
        .secret_string()
        .map(str::to_string)
        .ok_or_else(|| "the API key secret has no string value".into())
}
