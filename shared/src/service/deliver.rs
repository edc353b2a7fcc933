//! Attempting deliveries: signing, sending, recording, retrying, endpoint
//! health, resend and recovery.

use super::Service;
use crate::endpoint::Endpoint;
use crate::error::ApiError;
use crate::event_type::EventType;
use crate::ids::hashed_id;
use crate::planner::TimerChange;
use crate::ports::DeliveryFilter;
use crate::ports::{AttemptCommit, Message, OutgoingWebhook, SendResult};
use crate::retry::Outcome;
use crate::schedule::{Attempt, Delivery, DeliveryStatus};
use crate::signing::signature_header;
use crate::time::{format_time, Time};
use serde_json::json;
use std::collections::{HashMap, VecDeque};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::task::JoinSet;

/// Sends one `run_timer` makes side by side (a fire's deliveries, one per endpoint).
pub const ATTEMPTS_IN_FLIGHT: usize = 8;

/// Sends' worth of deliveries claimed in one store call, per send in
/// flight. Each wave of sends may take the whole send timeout, so the lease
/// covers this many.
const CLAIM_WAVES: usize = 32;

/// Outcomes recorded in one store call at most.
const RECORD_BATCH: usize = 256;

/// How long an outcome waits for others to share its store call: a commit
/// has a cost of its own (the page cache is swept at each), and a storm's
/// outcomes come in by the thousand a second.
const RECORD_LINGER: std::time::Duration = std::time::Duration::from_millis(10);

/// Endpoints disabled while an `attempt_many` runs: what it claimed for
/// them before is not sent.
#[derive(Default)]
struct Disabled(std::sync::Mutex<std::collections::HashSet<String>>);

impl Disabled {
    fn add(&self, endpoint_id: &str) {
        let mut ids = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        ids.insert(endpoint_id.to_string());
    }

    fn has(&self, endpoint_id: &Option<String>) -> bool {
        let ids = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        endpoint_id.as_ref().is_some_and(|id| ids.contains(id))
    }
}

/// A claimed delivery with its signed webhook, ready to send.
struct Prepared {
    delivery: Delivery,
    webhook: OutgoingWebhook,
    started_at: Time,
}

impl Service {
    /// Runs a timer: `sch_` fires a schedule, `dlv_` attempts a delivery.
    pub async fn run_timer(&self, id: &str) -> Result<(), ApiError> {
        if id.starts_with("dlv_") {
            self.attempt(id).await
        } else {
            let deliveries = self.fire(id).await?;
            self.attempt_many(&deliveries, ATTEMPTS_IN_FLIGHT).await
        }
    }

    /// One attempt of a due delivery, its outcome recorded and its retry timed.
    pub async fn attempt(&self, delivery_id: &str) -> Result<(), ApiError> {
        self.attempt_many(&[delivery_id.to_string()], 1).await
    }

    /// Attempts the due deliveries among `ids`, `in_flight` sends at a time.
    /// They are claimed `CLAIM_WAVES` sends' worth at a time, under a lease
    /// that covers that many waves of timeouts. Outcomes are recorded while
    /// the next sends go on, each store call taking every outcome that came
    /// in during the one before: a storm costs the store a few transactions
    /// per hundred webhooks, and sending never waits for them.
    pub async fn attempt_many(&self, ids: &[String], in_flight: usize) -> Result<(), ApiError> {
        self.attempt_from(ids, Vec::new(), in_flight).await
    }

    /// Attempts deliveries whose lease the caller already holds (a fire
    /// wrote them leased, see `Service::fire_and_attempt`): sent without a claim.
    pub async fn attempt_leased(
        &self,
        leased: Vec<(Delivery, Message)>,
        in_flight: usize,
    ) -> Result<(), ApiError> {
        if leased.is_empty() {
            return Ok(());
        }
        let endpoints = self.endpoints_by_id().await?;
        let ready = self.prepare(leased, &endpoints, self.clock.now()).await?;
        self.attempt_from(&[], ready, in_flight).await
    }

    async fn attempt_from(
        &self,
        ids: &[String],
        ready: Vec<Prepared>,
        in_flight: usize,
    ) -> Result<(), ApiError> {
        let (outcomes, received) = tokio::sync::mpsc::unbounded_channel();
        let disabled = Disabled::default();
        let (sent, recorded) = tokio::join!(
            self.send_all(ids, ready, in_flight.max(1), outcomes, &disabled),
            self.record_all(received, &disabled)
        );
        sent.and(recorded)
    }

    /// Claims, signs and sends (`ready` first: already claimed and signed);
    /// each outcome goes to `outcomes` as it comes.
    async fn send_all(
        &self,
        ids: &[String],
        ready: Vec<Prepared>,
        in_flight: usize,
        outcomes: UnboundedSender<(Prepared, SendResult)>,
        disabled: &Disabled,
    ) -> Result<(), ApiError> {
        let chunk = in_flight * CLAIM_WAVES;
        let mut unclaimed = ids.chunks(chunk);
        let mut ready: VecDeque<Prepared> = ready.into();
        let mut sends: JoinSet<(Prepared, SendResult)> = JoinSet::new();
        let mut claiming = None;
        loop {
            // The next chunk is claimed while the last half of this one is
            // sent, under a lease that also covers the sends ahead of it.
            if claiming.is_none() && ready.len() <= chunk / 2 {
                if let Some(ids) = unclaimed.next() {
                    let waves = (ready.len() + sends.len() + ids.len()).div_ceil(in_flight);
                    claiming = Some(Box::pin(self.claim(ids, waves)));
                }
            }
            while sends.len() < in_flight {
                let Some(mut prepared) = ready.pop_front() else {
                    break;
                };
                prepared.started_at = self.clock.now();
                if disabled.has(&prepared.delivery.endpoint_id) {
                    let why = Some("endpoint disabled");
                    self.finish(
                        &mut prepared.delivery,
                        DeliveryStatus::Failed,
                        why,
                        prepared.started_at,
                    )
                    .await?;
                    continue;
                }
                let sender = self.sender.clone();
                sends.spawn(async move {
                    let result = sender.send(&prepared.webhook).await;
                    (prepared, result)
                });
            }
            if sends.is_empty() && claiming.is_none() {
                return Ok(());
            }
            tokio::select! {
                claimed = async { claiming.as_mut().expect("guarded").await }, if claiming.is_some() => {
                    claiming = None;
                    ready.extend(claimed?);
                }
                done = sends.join_next(), if !sends.is_empty() => match done {
                    // A recorder that stopped leaves the delivery claimed: it
                    // is retried after the lease.
                    Some(Ok(done)) => outcomes.send(done).unwrap_or_default(),
                    Some(Err(error)) => {
                        // Its delivery stays claimed and is retried after the lease.
                        tracing::error!(%error, "a send task failed");
                    }
                    None => {}
                },
            }
        }
    }

    /// Records outcomes as they come, as many at a time as came in meanwhile.
    async fn record_all(
        &self,
        mut received: UnboundedReceiver<(Prepared, SendResult)>,
        disabled: &Disabled,
    ) -> Result<(), ApiError> {
        let mut endpoints = self.endpoints_by_id().await?;
        let mut batch = Vec::with_capacity(RECORD_BATCH);
        while received.recv_many(&mut batch, RECORD_BATCH).await > 0 {
            let linger = tokio::time::sleep(RECORD_LINGER);
            tokio::pin!(linger);
            while batch.len() < RECORD_BATCH {
                let room = RECORD_BATCH - batch.len();
                tokio::select! {
                    _ = &mut linger => break,
                    more = received.recv_many(&mut batch, room) => {
                        if more == 0 { break }
                    }
                }
            }
            self.record(std::mem::take(&mut batch), &mut endpoints, disabled)
                .await?;
        }
        Ok(())
    }

    async fn endpoints_by_id(&self) -> Result<HashMap<String, Endpoint>, ApiError> {
        let endpoints = self.store.endpoints().await?;
        Ok(endpoints.into_iter().map(|e| (e.id.clone(), e)).collect())
    }

    /// Claims deliveries for `waves` waves of sends and signs their
    /// webhooks, with their endpoints as they are now. One whose endpoint is
    /// gone or disabled fails at once.
    async fn claim(&self, ids: &[String], waves: usize) -> Result<Vec<Prepared>, ApiError> {
        let endpoints = self.endpoints_by_id().await?;
        let now = self.clock.now();
        let claimed = self
            .store
            .claim_deliveries(ids, now, now + Self::attempt_lease(waves))
            .await?;
        self.prepare(claimed, &endpoints, now).await
    }

    /// Signs claimed deliveries' webhooks with their endpoints as they are
    /// now. One whose endpoint is gone or disabled fails at once.
    async fn prepare(
        &self,
        claimed: Vec<(Delivery, Message)>,
        endpoints: &HashMap<String, Endpoint>,
        now: Time,
    ) -> Result<Vec<Prepared>, ApiError> {
        let mut prepared = Vec::with_capacity(claimed.len());
        for (mut delivery, message) in claimed {
            let endpoint_id = delivery.endpoint_id.clone().unwrap_or_default();
            let endpoint = match endpoints.get(&endpoint_id) {
                Some(endpoint) if endpoint.enabled => endpoint,
                gone => {
                    let why = match gone {
                        Some(_) => "endpoint disabled",
                        None => "endpoint deleted",
                    };
                    self.finish(&mut delivery, DeliveryStatus::Failed, Some(why), now)
                        .await?;
                    continue;
                }
            };
            let timestamp = now.timestamp();
            let signature = match signature_header(
                &endpoint.signing_secrets(now),
                &message.id,
                timestamp,
                message.body.as_bytes(),
            ) {
                Ok(signature) => signature,
                Err(error) => {
                    // Left claimed: retried after the lease, once the secret is fixed.
                    tracing::error!(endpoint = %endpoint_id, %error, "endpoint has a bad secret");
                    continue;
                }
            };
            let webhook = OutgoingWebhook {
                kind: endpoint.kind,
                url: endpoint.url.clone(),
                event_type: delivery.event_type,
                webhook_id: message.id,
                timestamp,
                signature,
                body: message.body,
            };
            prepared.push(Prepared {
                delivery,
                webhook,
                started_at: now,
            });
        }
        Ok(prepared)
    }

    /// Records sent attempts in one store call, then keeps each endpoint's
    /// health and times the retries.
    async fn record(
        &self,
        sent: Vec<(Prepared, SendResult)>,
        endpoints: &mut HashMap<String, Endpoint>,
        disabled: &Disabled,
    ) -> Result<(), ApiError> {
        if sent.is_empty() {
            return Ok(());
        }
        let after = self.clock.now();
        let (commits, outcomes): (Vec<_>, Vec<_>) = sent
            .into_iter()
            .map(|(prepared, result)| self.attempt_outcome(prepared, result, after))
            .unzip();
        self.store.commit_attempts(&commits).await?;
        let counted: Vec<_> = commits.into_iter().zip(outcomes).collect();
        self.count_attempts(&counted);
        for (commit, outcome) in &counted {
            let endpoint_id = &commit.attempt.endpoint_id;
            let Some(endpoint) = endpoints.remove(endpoint_id) else {
                continue;
            };
            let endpoint = self
                .track_health(
                    endpoint,
                    outcome.is_success(),
                    outcome.is_gone(),
                    commit.attempt.at,
                )
                .await?;
            if !endpoint.enabled {
                disabled.add(endpoint_id);
            }
            endpoints.insert(endpoint_id.clone(), endpoint);
        }
        let retries: Vec<TimerChange> = counted
            .iter()
            .filter_map(|(c, _)| {
                c.delivery.next_attempt_at.map(|at| TimerChange::Set {
                    id: c.delivery.id.clone(),
                    at,
                })
            })
            .collect();
        self.set_timers(&retries).await;
        Ok(())
    }

    /// What one send comes to: the attempt, and the delivery delivered,
    /// retried at its next time, or failed.
    fn attempt_outcome(
        &self,
        prepared: Prepared,
        sent: SendResult,
        after: Time,
    ) -> (AttemptCommit, Outcome) {
        let Prepared {
            mut delivery,
            started_at,
            ..
        } = prepared;
        let outcome = Outcome {
            status: sent.status,
            timed_out: sent.timed_out,
            retry_after: sent.retry_after,
        };
        // A claimed delivery's next attempt time is its lease.
        let leased_until = delivery.next_attempt_at;
        delivery.attempt_count += 1;
        let attempt = Attempt {
            delivery_id: delivery.id.clone(),
            number: delivery.attempt_count,
            at: started_at,
            endpoint_id: delivery.endpoint_id.clone().unwrap_or_default(),
            status_code: sent.status,
            latency_ms: sent.latency_ms,
            error: sent.error.clone(),
            response: sent.body_excerpt.clone(),
            manual: delivery.manual,
        };
        let retry = if outcome.is_success() || delivery.manual {
            None
        } else {
            self.config
                .retry
                .next_delay(delivery.attempt_count, &outcome, &mut rand::thread_rng())
        };
        delivery.updated_at = after;
        delivery.manual = false;
        let gone = outcome.is_gone();
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
        (
            AttemptCommit {
                delivery,
                attempt,
                leased_until,
            },
            outcome,
        )
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
    ) -> Result<Endpoint, ApiError> {
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
                return Ok(current);
            }
        }
        Ok(endpoint)
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
        self.count_fired(&deliveries, now);
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
