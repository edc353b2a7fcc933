//! The `ingest` function: write events and usage signals from the
//! deployment's ingest queue, one event or `{"events": [...]}` per message,
//! through the same `Service::ingest` as `POST /v1/events` (same
//! validation, same webhooks; a redelivered message is a duplicate).
//!
//! A message the core refuses (a 4xx: malformed, invalid, a conflict) is
//! moved to the ingest dead-letter queue with the error as its `error`
//! attribute and is not retried; one that fails for a passing reason (the
//! store unavailable) is reported as a batch item failure, so SQS retries
//! it and only it (the event source's `ReportBatchItemFailures`).

use crate::Runtime;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lifecycle_aws_sender::text_attribute;
use lifecycle_core::error::ApiError;
use serde::Serialize;

/// What a batch came to.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct IngestOutcome {
    /// Messages whose events were taken (accepted, stale or duplicate).
    pub ingested: usize,
    /// Messages refused and moved to the dead-letter queue.
    pub refused: usize,
    /// Messages left to SQS to retry.
    pub retried: usize,
}

/// Where refused messages go: the ingest queue's dead-letter queue.
pub struct DeadLetters {
    pub client: aws_sdk_sqs::Client,
    pub url: String,
}

impl DeadLetters {
    /// The message, with the API's error body (`{"error": {...}}`) as its `error` attribute.
    async fn put(&self, body: &str, error: &ApiError) -> Result<(), String> {
        let attribute = text_attribute(serde_json::json!({ "error": error }).to_string())?;
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .message_attributes("error", attribute)
            .send()
            .await
            .map(drop)
            .map_err(|e| format!("the ingest dead-letter queue refused: {e:?}"))
    }
}

/// Ingests the batch's messages one after another (the order they were
/// sent in matters to a write's `occurred_at` checks only per entity, which
/// the core decides); answers the messages SQS must retry.
pub async fn handle(
    rt: &Runtime,
    dead_letters: &DeadLetters,
    event: SqsEvent,
) -> (IngestOutcome, SqsBatchResponse) {
    let mut outcome = IngestOutcome::default();
    let mut response = SqsBatchResponse::default();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let body = message.body.clone().unwrap_or_default();
        let refusal = match serde_json::from_str::<serde_json::Value>(&body) {
            Err(e) => Some(ApiError::malformed(format!("the message is not JSON: {e}"))),
            Ok(value) => match rt.api_service.ingest(&value).await {
                Ok(_) => None,
                Err(error) if error.status < 500 => Some(error),
                Err(error) => {
                    tracing::warn!(message = %id, error = %error.message, "ingest failed; retried");
                    outcome.retried += 1;
                    response.batch_item_failures.push(failure(&id));
                    continue;
                }
            },
        };
        match refusal {
            None => outcome.ingested += 1,
            Some(error) => match dead_letters.put(&body, &error).await {
                Ok(()) => {
                    tracing::info!(message = %id, error = %error, "message refused; moved to the dead-letter queue");
                    outcome.refused += 1;
                }
                Err(e) => {
                    tracing::error!(message = %id, error = %e, "could not move a refused message");
                    outcome.retried += 1;
                    response.batch_item_failures.push(failure(&id));
                }
            },
        }
    }
    (outcome, response)
}

fn failure(id: &str) -> BatchItemFailure {
    let mut failure = BatchItemFailure::default();
    failure.item_identifier = id.to_string();
    failure
}
