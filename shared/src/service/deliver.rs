//! Attempting deliveries: signing, sending, recording, retrying, endpoint
//! health, resend and recovery.

use super::Service;
use crate::endpoint::Endpoint;
use crate::error::ApiError;
use crate::event_type::EventType;
use crate::ids::hashed_id;
use crate::planner::TimerChange;
use crate::ports::DeliveryFilter;
use crate::ports::{AttemptCommit, Message, OutgoingWebhook};
use crate::retry::Outcome;
use crate::schedule::{Attempt, Delivery, DeliveryStatus};
use crate::signing::signature_header;
use crate::time::{format_time, Time};
use serde_json::json;

impl Service {
    /// Runs a timer: `sch_` fires a schedule, `dlv_` attempts a delivery.
    pub async fn run_timer(&self, id: &str) -> Result<(), ApiError> {
        if id.starts_with("dlv_") {
            self.attempt(id).await
        } else {
            for delivery in self.fire(id).await? {
                self.attempt(&delivery).await?;
            }
            Ok(())
        }
    }

    /// One attempt of a due delivery, its outcome recorded and its retry timed.
    pub async fn attempt(&self, delivery_id: &str) -> Result<(), ApiError> {
        let now = self.clock.now();
        let claimed = self
            .store
            .claim_delivery(delivery_id, now, now + Self::attempt_lease())
            .await?;
        let Some((mut delivery, message)) = claimed else {
            return Ok(());
        };
        let endpoint_id = delivery.endpoint_id.clone().unwrap_or_default();
        let endpoint: Endpoint = match self.store.endpoint(&endpoint_id).await? {
            Some(endpoint) if endpoint.enabled => endpoint,
            gone => {
                let why = if gone.is_some() {
                    "endpoint disabled"
                } else {
                    "endpoint deleted"
                };
                return self
                    .finish(&mut delivery, DeliveryStatus::Failed, Some(why), now)
                    .await;
            }
        };
        let timestamp = now.timestamp();
        let signature = signature_header(
            &endpoint.signing_secrets(now),
            &message.id,
            timestamp,
            message.body.as_bytes(),
        )
        .map_err(|e| ApiError::internal(format!("endpoint {endpoint_id} has a bad secret: {e}")))?;
        let webhook = OutgoingWebhook {
            url: endpoint.url.clone(),
            webhook_id: message.id,
            timestamp,
            signature,
            body: message.body,
        };
        let sent = self.sender.send(&webhook).await;
        let outcome = Outcome {
            status: sent.status,
            timed_out: sent.timed_out,
            retry_after: sent.retry_after,
        };
        delivery.attempt_count += 1;
        let attempt = Attempt {
            delivery_id: delivery.id.clone(),
            number: delivery.attempt_count,
            at: now,
            endpoint_id,
            status_code: sent.status,
            latency_ms: sent.latency_ms,
            error: sent.error.clone(),
            response: sent.body_excerpt.clone(),
            manual: delivery.manual,
        };
        let after = self.clock.now();
        let retry = if outcome.is_success() || delivery.manual {
            None
        } else {
            self.config
                .retry
                .next_delay(delivery.attempt_count, &outcome, &mut rand::thread_rng())
        };
        delivery.updated_at = after;
        delivery.manual = false;
        let gone = outcome.status == Some(410);
        match (outcome.is_success(), retry) {
            (true, _) => {
                delivery.status = DeliveryStatus::Delivered;
                delivery.reason = None;
                delivery.next_attempt_at = None;
            }
            (false, Some(delay)) if !gone => {
                delivery.status = DeliveryStatus::Pending;
                delivery.reason = sent.error.or(sent.status.map(|s| format!("HTTP {s}")));
                delivery.next_attempt_at = Some(after + delay);
            }
            (false, _) => {
                delivery.status = DeliveryStatus::Failed;
                delivery.reason = Some(match gone {
                    true => "the endpoint answered 410 Gone and was disabled".to_string(),
                    false => format!("gave up after attempt {}", delivery.attempt_count),
                });
                delivery.next_attempt_at = None;
            }
        }
        self.store
            .commit_attempt(&AttemptCommit {
                delivery: delivery.clone(),
                attempt,
            })
            .await?;
        self.track_health(endpoint, outcome.is_success(), gone, now)
            .await?;
        if let Some(at) = delivery.next_attempt_at {
            self.set_timers(&[TimerChange::Set {
                id: delivery.id.clone(),
                at,
            }])
            .await;
        }
        Ok(())
    }

    /// Keeps an endpoint's failure window: a success closes it; a failure
    /// opens it, and one open for `disable_after` (or a 410) disables the endpoint.
    /// `now` is when the attempt started, so the window covers the delivery it began with.
    async fn track_health(
        &self,
        mut endpoint: Endpoint,
        success: bool,
        gone: bool,
        now: Time,
    ) -> Result<(), ApiError> {
        let before = (endpoint.failing_since, endpoint.enabled);
        if success {
            endpoint.failing_since = None;
        } else {
            let since = *endpoint.failing_since.get_or_insert(now);
            if gone {
                endpoint.disabled_reason = Some("the endpoint answered 410 Gone".into());
            } else if now - since >= self.config.disable_after {
                endpoint.disabled_reason =
                    Some(format!("every attempt failed since {}", format_time(since)));
            }
            if endpoint.disabled_reason.is_some() {
                endpoint.enabled = false;
            }
        }
        if (endpoint.failing_since, endpoint.enabled) != before {
            // Re-read so a concurrent edit of the endpoint is kept.
            if let Some(mut current) = self.store.endpoint(&endpoint.id).await? {
                current.failing_since = endpoint.failing_since;
                current.enabled &= endpoint.enabled;
                let disabled_now = !endpoint.enabled && before.1;
                if disabled_now {
                    current.disabled_reason = endpoint.disabled_reason.clone();
                    tracing::warn!(endpoint = %endpoint.id, reason = ?endpoint.disabled_reason, "endpoint disabled");
                }
                current.updated_at = now;
                self.store.put_endpoint(&current).await?;
                if disabled_now {
                    self.announce_disabled(&current, now).await?;
                }
            }
        }
        Ok(())
    }

    /// Tells the other endpoints that one was disabled (`webhook_endpoint.disabled`).
    async fn announce_disabled(&self, disabled: &Endpoint, now: Time) -> Result<(), ApiError> {
        let event_type = EventType::WebhookEndpointDisabled;
        let id = hashed_id(
            "msg",
            &[event_type.as_str(), &disabled.id, &format_time(now)],
        );
        let body = json!({
            "id": id, "type": event_type, "timestamp": now,
            "data": {
                "endpoint_id": disabled.id, "url": disabled.url, "description": disabled.description,
                "reason": disabled.disabled_reason, "failing_since": disabled.failing_since, "disabled_at": now,
            },
        });
        let deliveries: Vec<_> = self
            .store
            .endpoints()
            .await?
            .iter()
            .filter(|e| e.id != disabled.id && e.accepts(event_type))
            .map(|e| Delivery::direct(&id, event_type, &e.id, "", None, now))
            .collect();
        if deliveries.is_empty() {
            return Ok(());
        }
        let message = Message {
            id,
            body: body.to_string(),
        };
        self.store.add_message(&message, &deliveries).await?;
        self.wake_deliveries(&deliveries, now).await;
        Ok(())
    }

    /// Sends again, once each, every delivery of an endpoint that failed
    /// since a time (by when it failed, not when it was made).
    pub async fn recover_endpoint(
        &self,
        endpoint_id: &str,
        since: Time,
    ) -> Result<usize, ApiError> {
        let endpoint = self.endpoint(endpoint_id).await?;
        if !endpoint.enabled {
            return Err(ApiError::conflict(
                "enable the endpoint before recovering its deliveries",
            ));
        }
        let filter = DeliveryFilter {
            endpoint_id: Some(endpoint_id.to_string()),
            status: Some(DeliveryStatus::Failed),
            ..Default::default()
        };
        let mut failed = Vec::new();
        let mut cursor = None;
        loop {
            let page = self
                .store
                .deliveries(&filter, cursor.as_deref(), 500)
                .await?;
            failed.extend(
                page.data
                    .into_iter()
                    .map(|(d, _)| d)
                    .filter(|d| d.updated_at >= since)
                    .map(|d| d.id),
            );
            cursor = page.next_cursor;
            if cursor.is_none() {
                break;
            }
        }
        for id in &failed {
            self.resend(id).await?;
        }
        Ok(failed.len())
    }

    async fn finish(
        &self,
        delivery: &mut Delivery,
        status: DeliveryStatus,
        reason: Option<&str>,
        now: crate::time::Time,
    ) -> Result<(), ApiError> {
        delivery.status = status;
        delivery.reason = reason.map(str::to_string);
        delivery.next_attempt_at = None;
        delivery.manual = false;
        delivery.updated_at = now;
        Ok(self.store.put_delivery(delivery).await?)
    }

    /// Sends a delivery once more, same webhook id, one attempt.
    pub async fn resend(&self, delivery_id: &str) -> Result<Delivery, ApiError> {
        let (mut delivery, _) = self
            .store
            .delivery(delivery_id)
            .await?
            .ok_or_else(|| ApiError::not_found("delivery", delivery_id))?;
        match delivery.status {
            DeliveryStatus::Skipped => {
                return Err(ApiError::conflict(
                    "a skipped delivery was never sent and has nothing to resend",
                ))
            }
            DeliveryStatus::Pending => {
                return Err(ApiError::conflict("the delivery is already pending"))
            }
            _ => {}
        }
        let now = self.clock.now();
        delivery.status = DeliveryStatus::Pending;
        delivery.manual = true;
        delivery.reason = None;
        delivery.next_attempt_at = Some(now);
        delivery.updated_at = now;
        self.store.put_delivery(&delivery).await?;
        self.set_timers(&[TimerChange::Set {
            id: delivery.id.clone(),
            at: now,
        }])
        .await;
        Ok(delivery)
    }
}
