//! What each function builds once per execution environment: the AWS
//! clients, the store, the timer queue, one HTTP client, the metrics and one
//! core `Service` (the Lambda runtime's examples build their clients in
//! `main`, not per invocation: connections and TLS sessions are reused); and
//! what ends every invocation (`Runtime::end_invocation`).

use crate::emf::EmfMetrics;
use crate::near::{NoQueue, SqsTimers};
use crate::settings::Settings;
use async_trait::async_trait;
use lifecycle_aws::{DynamoStore, EventBridgeScheduler, NearTimers, TimerQueue};
use lifecycle_aws_sender::AwsSender;
use lifecycle_core::planner::TimerChange;
use lifecycle_core::ports::{Scheduler, Sender, Store};
use lifecycle_core::sending::SenderByKind;
use lifecycle_core::service::{Config, Service, SEND_TIMEOUT_SECS};
use lifecycle_core::time::{Clock, SystemClock};
use lifecycle_http::HttpSender;
use std::sync::Arc;
use std::time::Duration;

/// Attempts of one AWS call, the first included, before its error is the
/// handler's: a throttled boundary must not hold an invocation in backoff
/// until its timeout, and the work's own retry (the SQS message, the stream
/// batch) comes after.
pub const SDK_MAX_ATTEMPTS: u32 = 4;

/// Adaptive retries: after a throttle the client also slows its own rate,
/// instead of every concurrent invocation retrying at full speed.
pub fn retry_config() -> aws_config::retry::RetryConfig {
    aws_config::retry::RetryConfig::adaptive()
        .with_max_attempts(SDK_MAX_ATTEMPTS)
        .with_max_backoff(Duration::from_secs(2))
}

/// The SDK configuration of a function: the environment's, with `retry_config`.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::from_env()
        .retry_config(retry_config())
        .load()
        .await
}

/// What every function holds for the life of its execution environment.
pub struct Runtime {
    pub settings: Settings,
    pub store: Arc<DynamoStore>,
    pub clock: Arc<dyn Clock>,
    /// The SQS timer queue (`TIMER_QUEUE_URL`), if configured.
    pub queue: Option<TimerQueue>,
    /// The tick scheduler (EventBridge Scheduler, SQS for near timers): only
    /// the `schedule` function has one.
    pub scheduler: Option<Arc<EventBridgeScheduler>>,
    /// The core over this store, for `deliver` and `schedule`.
    pub service: Arc<Service>,
    /// The core for `api`: notification fan-outs and threshold evaluations
    /// deferred to the stream (`Config::defer_fan_outs`).
    pub api_service: Arc<Service>,
    /// What both services count, written as CloudWatch metrics (EMF lines on
    /// standard output) at the end of each invocation.
    pub metrics: Arc<EmfMetrics>,
    /// The SQS client of this execution environment (the timer queue's,
    /// the AWS sender's, and the ingest function's dead letters).
    pub sqs: aws_sdk_sqs::Client,
}

/// What ends an invocation, apart from the runtime (the api's router holds one).
#[derive(Clone)]
pub struct InvocationEnd {
    services: [Arc<Service>; 2],
    metrics: Arc<EmfMetrics>,
    clock: Arc<dyn Clock>,
}

impl InvocationEnd {
    /// The per-minute figures the services counted moved to the table
    /// (`Service::flush_stats`; on an error they are kept for the next
    /// invocation and the error logged, the invocation unaffected), then
    /// the metrics written.
    pub async fn run(&self) {
        for service in &self.services {
            if let Err(error) = service.flush_stats().await {
                tracing::warn!(
                    ?error,
                    "could not store the per-minute figures; kept for the next invocation"
                );
            }
        }
        self.metrics.emit(self.clock.now().timestamp_millis());
    }
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

/// The AWS clients a runtime uses (tools and benchmarks give their own,
/// with interceptors).
#[derive(Clone, Debug)]
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub scheduler: aws_sdk_scheduler::Client,
    /// The `eventbridge` endpoints' (PutEvents).
    pub eventbridge: aws_sdk_eventbridge::Client,
}

impl Clients {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Clients {
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
            scheduler: aws_sdk_scheduler::Client::new(sdk),
            eventbridge: aws_sdk_eventbridge::Client::new(sdk),
        }
    }
}

impl Runtime {
    pub fn new(sdk: &aws_config::SdkConfig, settings: Settings, clock: Arc<dyn Clock>) -> Self {
        Self::with_clients(Clients::new(sdk), settings, clock)
    }

    pub fn with_clients(clients: Clients, settings: Settings, clock: Arc<dyn Clock>) -> Self {
        let Clients {
            dynamodb,
            sqs,
            scheduler: scheduler_client,
            eventbridge,
        } = clients;
        let aws_sender: Arc<dyn Sender> =
            Arc::new(AwsSender::with_clients(eventbridge, sqs.clone()));
        let sealed = |store: DynamoStore| match &settings.main_key {
            Some(key) => store.with_main_key(key.clone()),
            None => store,
        };
        let store = Arc::new(sealed(
            DynamoStore::new(dynamodb, settings.table.clone())
                .with_event_dedupe_days(settings.event_dedupe_days)
                .with_delivery_retention_days(settings.delivery_retention_days)
                .with_config_cache(settings.config_ttl),
        ));
        // `api` answers right after its own writes and reads config rarely:
        // it reads the partitions every time, from a store of its own.
        let api_store: Arc<dyn Store> = Arc::new(sealed(
            DynamoStore::new(store.client().clone(), settings.table.clone())
                .with_event_dedupe_days(settings.event_dedupe_days)
                .with_delivery_retention_days(settings.delivery_retention_days),
        ));
        let queue = (settings.timer_queue_url.clone()).map(|url| TimerQueue {
            client: sqs.clone(),
            url,
        });
        let scheduler = settings.scheduler.clone().map(|config| {
            let near: Arc<dyn NearTimers> = match &queue {
                Some(queue) => Arc::new(SqsTimers {
                    queue: queue.clone(),
                    clock: clock.clone(),
                }),
                None => Arc::new(NoQueue),
            };
            Arc::new(EventBridgeScheduler::new(
                scheduler_client,
                config,
                near,
                clock.clone(),
            ))
        });
        let sender: Arc<dyn Sender> = Arc::new(SenderByKind {
            webhook: Arc::new(HttpSender::with(
                settings.destinations.clone(),
                Duration::from_secs(SEND_TIMEOUT_SECS as u64),
            )),
            aws: Some(aws_sender),
        });
        let config = config(&settings);
        let metrics = Arc::new(EmfMetrics::stdout(settings.metrics_namespace.clone()));
        let service = Arc::new(
            Service::new(
                store.clone(),
                Arc::new(StreamTimers),
                sender.clone(),
                clock.clone(),
                config.clone(),
            )
            .with_metrics(metrics.clone()),
        );
        let api_service = Arc::new(
            Service::new(
                api_store,
                Arc::new(StreamTimers),
                sender,
                clock.clone(),
                Config {
                    defer_fan_outs: true,
                    ..config
                },
            )
            .with_metrics(metrics.clone()),
        );
        Runtime {
            settings,
            store,
            clock,
            queue,
            scheduler,
            service,
            api_service,
            metrics,
            sqs,
        }
    }

    /// What ends an invocation of this runtime.
    pub fn invocation_end(&self) -> InvocationEnd {
        InvocationEnd {
            services: [self.service.clone(), self.api_service.clone()],
            metrics: self.metrics.clone(),
            clock: self.clock.clone(),
        }
    }

    /// Ends an invocation: the per-minute figures flushed to the table, the
    /// metrics written (`InvocationEnd::run`).
    pub async fn end_invocation(&self) {
        self.invocation_end().run().await
    }

    /// Runs one invocation's work, then ends it (`end_invocation`): what the
    /// `schedule` and `deliver` binaries do with each event.
    pub async fn invocation<T>(&self, work: impl std::future::Future<Output = T>) -> T {
        let out = work.await;
        self.end_invocation().await;
        out
    }

    /// From the function's environment (the template's variables), with the
    /// system clock.
    /// The main key is checked against the table's before anything runs
    /// (`DynamoStore::check_main_key`): a wrong one stops the cold start.
    pub async fn from_env() -> Result<Self, String> {
        let mut settings = Settings::from_env()?;
        let sdk = sdk_config().await;
        settings.main_key = main_key(&sdk).await?;
        let rt = Self::new(&sdk, settings, Arc::new(SystemClock));
        rt.store
            .check_main_key()
            .await
            .map_err(|e| format!("{e}"))?;
        Ok(rt)
    }

    /// The timer queue, or the error a handler that needs it answers.
    pub fn queue(&self) -> Result<&TimerQueue, String> {
        self.queue
            .as_ref()
            .ok_or_else(|| "TIMER_QUEUE_URL is not set".to_string())
    }
}

fn config(settings: &Settings) -> Config {
    let defaults = Config::default();
    Config {
        retry: settings.retry.clone(),
        allow_http: settings.allow_http,
        aws_destinations: Some(settings.aws_destinations.clone()),
        default_catch_up: (settings.default_catch_up.clone())
            .unwrap_or(defaults.default_catch_up.clone()),
        // In the write's transaction a webhook's message and deliveries
        // would bill twice; fired by the stream's path they do not.
        fire_writes_at_ingest: false,
        // Moments beyond the registration horizon are not stored: the
        // sweep plans their entities again as they come within it.
        horizon: Some(settings.horizon),
        ..defaults
    }
}

/// A secret's text: the variable `plain` when set (tests, local tools),
/// otherwise the Secrets Manager secret the variable `arn` names (the
/// template's way: secrets never sit in the function configuration); None
/// when neither is set.
async fn secret_text(
    sdk: &aws_config::SdkConfig,
    plain: &str,
    arn: &str,
) -> Result<Option<String>, String> {
    if let Ok(text) = std::env::var(plain) {
        if !text.is_empty() {
            return Ok(Some(text));
        }
    }
    let Ok(arn_value) = std::env::var(arn) else {
        return Ok(None);
    };
    let secret = aws_sdk_secretsmanager::Client::new(sdk)
        .get_secret_value()
        .secret_id(&arn_value)
        .send()
        .await
        .map_err(|e| format!("reading the secret {arn}: {e:?}"))?;
    match secret.secret_string() {
        Some(text) => Ok(Some(text.to_string())),
        None => Err(format!("the secret {arn} has no string value")),
    }
}

/// The API keys: `API_KEY` or the secret `API_KEY_SECRET_ARN` names, one
/// key per line (several while one is rotated).
pub async fn api_key(sdk: &aws_config::SdkConfig) -> Result<String, String> {
    secret_text(sdk, "API_KEY", "API_KEY_SECRET_ARN")
        .await?
        .ok_or_else(|| "neither API_KEY nor API_KEY_SECRET_ARN is set".to_string())
}

/// The main key that seals endpoint secrets: `MAIN_KEY` or the secret
/// `MAIN_KEY_SECRET_ARN` names (64 hex digits, or a generated password of
/// at least 32 characters).
pub async fn main_key(
    sdk: &aws_config::SdkConfig,
) -> Result<Option<lifecycle_core::sealing::MainKey>, String> {
    let Some(text) = secret_text(sdk, "MAIN_KEY", "MAIN_KEY_SECRET_ARN").await? else {
        return Ok(None);
    };
    lifecycle_core::sealing::MainKey::from_secret(&text)
        .map(Some)
        .map_err(|e| format!("the main key: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_config::retry::RetryMode;

    #[test]
    fn clients_retry_adaptively_a_few_times() {
        let sdk = aws_config::SdkConfig::builder()
            .retry_config(retry_config())
            .build();
        let dynamodb = aws_sdk_dynamodb::Config::new(&sdk);
        let retry = dynamodb
            .retry_config()
            .expect("the client has the retry config");
        assert_eq!(retry.mode(), RetryMode::Adaptive);
        assert_eq!(retry.max_attempts(), SDK_MAX_ATTEMPTS);
        assert_eq!(retry.max_backoff(), Duration::from_secs(2));
    }
}
