//! The `Sender` of the AWS kinds of endpoint: each notification one
//! EventBridge `PutEvents` entry (`Source` `lifecycle.notifications`,
//! `DetailType` its event type, `Detail` the webhook body, whose `id` is the
//! webhook id) or one SQS message (the webhook id as the deduplication id on
//! a FIFO queue, and as the `webhook_id` attribute on every queue).
//!
//! Sends that arrive together are batched as the services allow (ten entries
//! to a `PutEvents`, ten messages to a queue's `SendMessageBatch`, each call
//! under 256 KB, one bus or queue to a call); every notification keeps its own entry, its own result and
//! its own attempt. A batch waits `LINGER` from its first send for company,
//! then the first of its sends awake sends it; a send that fills one sends
//! it at once.

use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use lifecycle_core::endpoint_kind::EndpointKind;
use lifecycle_core::ports::{OutgoingWebhook, SendResult, Sender};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Entries of one `PutEvents`, messages of one `SendMessageBatch`.
pub const BATCH: usize = 10;
/// Bytes of one call's entries, under both services' 256 KB.
const BATCH_BYTES: usize = 240 * 1024;
/// How long a send waits for others to join its batch before sending it.
const LINGER: Duration = Duration::from_millis(5);
pub const SOURCE: &str = "lifecycle.notifications";

/// Sends of one call: one bus or one queue (a call to a bus that is gone
/// fails whole, and must not fail another endpoint's notifications).
#[derive(Clone, PartialEq, Eq, Hash)]
enum Target {
    Bus(String),
    Queue(String),
}

struct Waiting {
    webhook: OutgoingWebhook,
    answer: oneshot::Sender<SendResult>,
}

#[derive(Default)]
struct Group {
    /// Bumped whenever the group is taken, so a lingering first send knows
    /// whether its batch already left.
    generation: u64,
    waiting: Vec<Waiting>,
    bytes: usize,
}

pub struct AwsSender {
    events: aws_sdk_eventbridge::Client,
    sqs: aws_sdk_sqs::Client,
    groups: Mutex<HashMap<Target, Group>>,
}

impl AwsSender {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self::with_clients(
            aws_sdk_eventbridge::Client::new(config),
            aws_sdk_sqs::Client::new(config),
        )
    }

    pub fn with_clients(events: aws_sdk_eventbridge::Client, sqs: aws_sdk_sqs::Client) -> Self {
        Self {
            events,
            sqs,
            groups: Mutex::new(HashMap::new()),
        }
    }

    /// The SDK's configuration chain, if the environment or the profile
    /// gives a region and the chain gives credentials: the local runtime's
    /// AWS sender, with the allow-list its endpoints are checked against
    /// (that account's). Without a region nothing is probed (no instance
    /// metadata), so a laptop without AWS starts at once.
    pub async fn from_environment() -> Option<aws_config::SdkConfig> {
        use aws_config::meta::region::ProvideRegion;
        let from_env = aws_config::environment::EnvironmentVariableRegionProvider::new();
        let from_profile = aws_config::profile::ProfileFileRegionProvider::new();
        let region = match from_env.region().await {
            Some(region) => region,
            None => from_profile.region().await?,
        };
        let config = aws_config::from_env().region(region).load().await;
        let credentials = config.credentials_provider()?;
        aws_credential_types::provider::ProvideCredentials::provide_credentials(&credentials)
            .await
            .ok()?;
        Some(config)
    }

    /// Adds the send to its target's group: the batch to send now, if this
    /// send filled it, or else the generation it joined, to send after
    /// lingering unless another send of it took it first.
    fn join(&self, target: &Target, waiting: Waiting) -> (Option<Vec<Waiting>>, Option<u64>) {
        let mut groups = self.groups.lock().expect("the groups' lock");
        let group = groups.entry(target.clone()).or_default();
        let size = waiting.webhook.body.len() + waiting.webhook.url.len();
        let mut full = None;
        if !group.waiting.is_empty() && group.bytes + size > BATCH_BYTES {
            full = Some(take(group));
        }
        let joined = Some(group.generation);
        group.bytes += size;
        group.waiting.push(waiting);
        if group.waiting.len() >= BATCH {
            let batch = take(group);
            return (
                Some(full.into_iter().flatten().chain(batch).collect()),
                None,
            );
        }
        (full, joined)
    }

    fn take_if(&self, target: &Target, generation: u64) -> Option<Vec<Waiting>> {
        let mut groups = self.groups.lock().expect("the groups' lock");
        let group = groups.get_mut(target)?;
        (group.generation == generation && !group.waiting.is_empty()).then(|| take(group))
    }

    async fn flush(&self, target: &Target, batch: Vec<Waiting>) {
        for chunk in chunks(batch) {
            let started = Instant::now();
            let webhooks: Vec<&OutgoingWebhook> = chunk.iter().map(|w| &w.webhook).collect();
            let results = match target {
                Target::Bus(_) => self.put_events(&webhooks).await,
                Target::Queue(url) => self.send_messages(url, &webhooks).await,
            };
            let latency_ms = started.elapsed().as_millis() as u64;
            for (waiting, error) in chunk.into_iter().zip(results) {
                let result = match error {
                    None => SendResult {
                        status: Some(200),
                        latency_ms,
                        ..SendResult::default()
                    },
                    Some(error) => SendResult {
                        error: Some(error),
                        latency_ms,
                        ..SendResult::default()
                    },
                };
                // The sender may have gone (its invocation timed out): nothing to tell.
                let _ = waiting.answer.send(result);
            }
        }
    }

    /// One error (the service's code and message) or None per webhook, in order.
    async fn put_events(&self, webhooks: &[&OutgoingWebhook]) -> Vec<Option<String>> {
        let entries: Vec<PutEventsRequestEntry> = webhooks
            .iter()
            .map(|w| {
                PutEventsRequestEntry::builder()
                    .source(SOURCE)
                    .detail_type(w.event_type.as_str())
                    .detail(&w.body)
                    .event_bus_name(&w.url)
                    .build()
            })
            .collect();
        match self
            .events
            .put_events()
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(put) => {
                let entries = put.entries();
                (0..webhooks.len())
                    .map(|i| match entries.get(i) {
                        Some(entry) => entry.error_code().map(|code| {
                            format!("{code}: {}", entry.error_message().unwrap_or_default())
                        }),
                        None => Some("PutEvents answered no entry for it".into()),
                    })
                    .collect()
            }
            Err(e) => vec![Some(error_text(&e)); webhooks.len()],
        }
    }

    async fn send_messages(&self, url: &str, webhooks: &[&OutgoingWebhook]) -> Vec<Option<String>> {
        let fifo = url.ends_with(".fifo");
        let entries = webhooks.iter().enumerate().map(|(i, w)| {
            let mut entry = SendMessageBatchRequestEntry::builder()
                .id(format!("m{i}"))
                .message_body(&w.body)
                .message_attributes("webhook_id", text_attribute(&w.webhook_id)?)
                .message_attributes("event_type", text_attribute(w.event_type.as_str())?);
            if fifo {
                entry = entry
                    .message_deduplication_id(&w.webhook_id)
                    .message_group_id(&w.webhook_id);
            }
            entry.build().map_err(|e| e.to_string())
        });
        let entries = match entries.collect::<Result<Vec<_>, String>>() {
            Ok(entries) => entries,
            Err(e) => return vec![Some(e); webhooks.len()],
        };
        let sent = self
            .sqs
            .send_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await;
        match sent {
            Ok(sent) => {
                let failed: HashMap<&str, String> = sent
                    .failed()
                    .iter()
                    .map(|f| {
                        let message = f.message().unwrap_or_default();
                        (f.id(), format!("{}: {message}", f.code()))
                    })
                    .collect();
                (0..webhooks.len())
                    .map(|i| failed.get(format!("m{i}").as_str()).cloned())
                    .collect()
            }
            Err(e) => vec![Some(error_text(&e)); webhooks.len()],
        }
    }
}

/// The service's error code and message, or what kept the call from it.
fn error_text<E, R>(error: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match error.as_service_error() {
        Some(service) => format!(
            "{}: {}",
            service.code().unwrap_or("Unknown"),
            service.message().unwrap_or_default()
        ),
        None => DisplayErrorContext(error).to_string(),
    }
}

fn take(group: &mut Group) -> Vec<Waiting> {
    group.generation += 1;
    group.bytes = 0;
    std::mem::take(&mut group.waiting)
}

/// At most `BATCH` sends and `BATCH_BYTES` to a call (a batch can hold one
/// more than that when a big send joined a full group).
fn chunks(batch: Vec<Waiting>) -> Vec<Vec<Waiting>> {
    let mut out: Vec<Vec<Waiting>> = Vec::new();
    let mut bytes = 0;
    for waiting in batch {
        let size = waiting.webhook.body.len() + waiting.webhook.url.len();
        match out.last_mut() {
            Some(last) if last.len() < BATCH && bytes + size <= BATCH_BYTES => {
                bytes += size;
                last.push(waiting);
            }
            _ => {
                bytes = size;
                out.push(vec![waiting]);
            }
        }
    }
    out
}

#[async_trait]
impl Sender for AwsSender {
    async fn send(&self, webhook: &OutgoingWebhook) -> SendResult {
        let target = match webhook.kind {
            EndpointKind::Eventbridge => Target::Bus(webhook.url.clone()),
            EndpointKind::Sqs => Target::Queue(webhook.url.clone()),
            EndpointKind::Webhook => {
                return SendResult {
                    error: Some("the AWS sender sends no HTTP webhooks".into()),
                    ..SendResult::default()
                }
            }
        };
        let (answer, result) = oneshot::channel();
        let waiting = Waiting {
            webhook: webhook.clone(),
            answer,
        };
        let (now, joined) = self.join(&target, waiting);
        if let Some(batch) = now {
            self.flush(&target, batch).await;
        }
        // Every send of a batch lingers and the first awake sends it, so a
        // batch never waits on one send whose caller went away.
        if let Some(generation) = joined {
            tokio::time::sleep(LINGER).await;
            if let Some(batch) = self.take_if(&target, generation) {
                self.flush(&target, batch).await;
            }
        }
        result.await.unwrap_or_else(|_| SendResult {
            error: Some("the batch holding this send was dropped".into()),
            ..SendResult::default()
        })
    }
}

/// An SQS message attribute of type `String`.
pub fn text_attribute(value: impl Into<String>) -> Result<MessageAttributeValue, String> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| e.to_string())
}
