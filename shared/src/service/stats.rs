//! Counting what the service does, for `GET /metrics` and `GET /v1/stats`:
//! every fire and attempt goes to the runtime's counters and to the
//! per-minute figures, which the runtime flushes to the store now and then.

use super::Service;
use crate::error::ApiError;
use crate::metrics::{AttemptOutcome, EndpointState, Gauges};
use crate::ports::AttemptCommit;
use crate::retry::Outcome;
use crate::schedule::Delivery;
use crate::stats::{self, MinuteStats};
use crate::time::Time;
use chrono::Duration;
use std::collections::{BTreeMap, HashSet};

impl Service {
    /// Counts the webhooks these deliveries carry (one per webhook id, however
    /// many endpoints it goes to), made at `now`.
    pub(super) fn count_fired<'a>(
        &self,
        deliveries: impl IntoIterator<Item = &'a Delivery>,
        now: Time,
    ) {
        let mut seen = HashSet::new();
        let mut by_type = BTreeMap::new();
        for delivery in deliveries {
            if seen.insert(delivery.webhook_id.as_str()) {
                *by_type.entry(delivery.event_type).or_insert(0u64) += 1;
            }
        }
        for (event_type, count) in by_type {
            self.metrics.webhooks_fired(event_type, count);
        }
        if !seen.is_empty() {
            self.stats.fired(now, seen.len() as u64);
        }
    }

    /// Counts the events of a committed batch that were accepted, by type.
    pub(super) fn count_ingested(
        &self,
        events: &[crate::write_event::Event],
        results: &[(usize, super::WriteResult)],
    ) {
        let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
        for (i, result) in results {
            if result.status == "accepted" {
                *by_type.entry(events[*i].type_name()).or_default() += 1;
            }
        }
        for (type_name, count) in by_type {
            self.metrics.events_ingested(&type_name, count);
        }
    }

    /// Counts recorded attempts and writes one log line each, so that a
    /// webhook can be followed through the logs by its id.
    pub(super) fn count_attempts(&self, attempts: &[(AttemptCommit, Outcome)]) {
        for (commit, outcome) in attempts {
            let kind = if outcome.is_success() {
                AttemptOutcome::Success
            } else if outcome.timed_out {
                AttemptOutcome::Timeout
            } else {
                AttemptOutcome::Failure
            };
            let at = commit.attempt.at;
            let lag = outcome
                .is_success()
                .then(|| seconds(at - commit.delivery.scheduled_for));
            self.metrics.delivery_attempt(kind, lag);
            self.stats.attempted(at, lag);
            tracing::info!(
                webhook_id = %commit.delivery.webhook_id,
                delivery_id = %commit.delivery.id,
                endpoint_id = %commit.attempt.endpoint_id,
                attempt = commit.attempt.number,
                outcome = kind.as_str(),
                status_code = commit.attempt.status_code,
                latency_ms = commit.attempt.latency_ms,
                delivery_status = commit.delivery.status.as_str(),
                "delivery attempt"
            );
        }
    }

    /// Moves the figures counted since the last flush to the store (kept
    /// for the next one if the store fails).
    pub async fn flush_stats(&self) -> Result<(), ApiError> {
        let figures = self.stats.take();
        if figures.is_empty() {
            return Ok(());
        }
        if let Err(error) = self.store.add_stats(&figures).await {
            self.stats.restore(figures);
            return Err(error.into());
        }
        Ok(())
    }

    /// Every minute of [since, until) with its figures, those not flushed yet included.
    pub async fn stats(&self, since: Time, until: Time) -> Result<Vec<MinuteStats>, ApiError> {
        if until <= since {
            return Err(ApiError::invalid("until", "`until` must be after `since`"));
        }
        if until - since > Duration::days(stats::MAX_SPAN_DAYS) {
            return Err(ApiError::invalid(
                "since",
                format!(
                    "at most {} days from `since` to `until`",
                    stats::MAX_SPAN_DAYS
                ),
            ));
        }
        let mut stored = self.store.stats(since, until).await?;
        stored.extend(self.stats.unflushed(since, until));
        Ok(stats::series(since, until, stored))
    }

    /// The deliveries waiting for an attempt, where the store counts them
    /// cheaply (`GET /v1/stats`).
    pub async fn backlog(&self) -> Result<Option<crate::metrics::Backlog>, ApiError> {
        Ok(self.store.backlog().await?)
    }

    /// The gauges of `GET /metrics`: the backlog (where the store counts it
    /// cheaply) and the endpoints by health.
    pub async fn gauges(&self) -> Result<Gauges, ApiError> {
        let backlog = self.backlog().await?.unwrap_or_default();
        let endpoints = self.store.endpoints().await?;
        let endpoints = EndpointState::ALL
            .into_iter()
            .map(|state| {
                let count = endpoints
                    .iter()
                    .filter(|e| EndpointState::of(e) == state)
                    .count();
                (state, count as u64)
            })
            .collect();
        Ok(Gauges { backlog, endpoints })
    }
}

fn seconds(duration: Duration) -> f64 {
    duration.num_milliseconds().max(0) as f64 / 1000.0
}
