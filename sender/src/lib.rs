//! The HTTP sender both runtimes use (the `Sender` port on reqwest): signed
//! webhooks with a 15 s timeout, no redirects followed, destinations
//! checked against the policy in the DNS resolver (so rebinding cannot
//! reach an internal address). A crate of its own so that the Lambda
//! functions build without the local runtime and its SQLite.

use async_trait::async_trait;
use lifecycle_core::destination::DestinationPolicy;
use lifecycle_core::ports::{OutgoingWebhook, SendResult, Sender};
use lifecycle_core::service::SEND_TIMEOUT_SECS;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Response bodies are kept up to this many bytes in the attempt log.
const EXCERPT_BYTES: usize = 4096;
/// Requests in flight at once, whatever the endpoints.
pub const MAX_IN_FLIGHT: usize = 64;

pub struct HttpSender {
    client: reqwest::Client,
    policy: Arc<DestinationPolicy>,
    timeout: Duration,
    in_flight: tokio::sync::Semaphore,
}

impl HttpSender {
    pub fn new() -> Self {
        Self::with(
            DestinationPolicy::default(),
            Duration::from_secs(SEND_TIMEOUT_SECS as u64),
        )
    }

    /// A sender that refuses destinations the policy refuses, and gives up
    /// on an answer after `timeout`.
    pub fn with(policy: DestinationPolicy, timeout: Duration) -> Self {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(CheckedResolver(policy.clone())))
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!(
                "lifecycle-notifications/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .expect("the HTTP client builds");
        Self {
            client,
            policy,
            timeout,
            in_flight: tokio::sync::Semaphore::new(MAX_IN_FLIGHT),
        }
    }

    /// The URL to send to. Hosts given as IP addresses skip the resolver, so
    /// they are checked here.
    fn checked_url(&self, url: &str) -> Result<reqwest::Url, String> {
        let url = reqwest::Url::parse(url).map_err(|e| format!("bad URL: {e}"))?;
        let host = url.host_str().unwrap_or_default();
        if let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            self.policy.check(ip)?;
        }
        Ok(url)
    }
}

/// Resolves names, then drops addresses the policy refuses, so a name that
/// points inside the network cannot be used to reach it.
struct CheckedResolver(Arc<DestinationPolicy>);

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refusal = None;
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| policy.check(a.ip()).map_err(|e| refusal = Some(e)).is_ok())
                .collect();
            if allowed.is_empty() {
                let why = refusal.unwrap_or_else(|| format!("{host} resolves to no address"));
                return Err(why.into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
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
        let _permit = self
            .in_flight
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let started = Instant::now();
        let url = match self.checked_url(&webhook.url) {
            Ok(url) => url,
            Err(refused) => {
                return SendResult {
                    error: Some(refused),
                    ..SendResult::default()
                }
            }
        };
        let sent = self
            .client
            .post(url)
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
                    format!("no answer within {} ms", self.timeout.as_millis())
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
