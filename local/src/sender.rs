//! Sends signed webhooks with reqwest: 15 s timeout, no redirects followed.

use async_trait::async_trait;
use lifecycle_core::ports::{OutgoingWebhook, SendResult, Sender};
use lifecycle_core::service::SEND_TIMEOUT_SECS;
use std::time::{Duration, Instant};

/// Response bodies are kept up to this many bytes in the attempt log.
const EXCERPT_BYTES: usize = 4096;

pub struct HttpSender {
    client: reqwest::Client,
}

impl HttpSender {
    pub fn new() -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(SEND_TIMEOUT_SECS as u64))
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!(
                "lifecycle-notifications/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .expect("the HTTP client builds");
        Self { client }
    }
}

impl Default for HttpSender {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Sender for HttpSender {
    async fn send(&self, webhook: &OutgoingWebhook) -> SendResult {
        let started = Instant::now();
        let sent = self
            .client
            .post(&webhook.url)
            .header("content-type", "application/json")
            .header("webhook-id", &webhook.webhook_id)
            .header("webhook-timestamp", webhook.timestamp.to_string())
            .header("webhook-signature", &webhook.signature)
            .body(webhook.body.clone())
            .send()
            .await;
        let mut result = SendResult::default();
        match sent {
            Ok(response) => {
                result.status = Some(response.status().as_u16());
                result.retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse().ok());
                match response.bytes().await {
                    Ok(bytes) => {
                        let end = bytes.len().min(EXCERPT_BYTES);
                        result.body_excerpt =
                            Some(String::from_utf8_lossy(&bytes[..end]).into_owned());
                    }
                    Err(error) => {
                        result.timed_out = error.is_timeout();
                        result.error = Some(format!("reading the response failed: {error}"));
                    }
                }
            }
            Err(error) => {
                result.timed_out = error.is_timeout();
                result.error = Some(if error.is_timeout() {
                    format!("no answer within {SEND_TIMEOUT_SECS} s")
                } else {
                    format!("request failed: {}", root_cause(&error))
                });
            }
        }
        result.latency_ms = started.elapsed().as_millis() as u64;
        result
    }
}

fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
