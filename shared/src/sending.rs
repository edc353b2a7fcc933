//! A runtime's one `Sender`: each webhook goes to the sender of its
//! endpoint's kind (HTTP for webhooks; the AWS sender, where the runtime
//! has one, for EventBridge buses and SQS queues).

use crate::endpoint_kind::EndpointKind;
use crate::ports::{OutgoingWebhook, SendResult, Sender};
use async_trait::async_trait;
use std::sync::Arc;

pub struct SenderByKind {
    pub webhook: Arc<dyn Sender>,
    /// None where the runtime has no AWS credentials.
    pub aws: Option<Arc<dyn Sender>>,
}

#[async_trait]
impl Sender for SenderByKind {
    async fn send(&self, webhook: &OutgoingWebhook) -> SendResult {
        match (webhook.kind, &self.aws) {
            (EndpointKind::Webhook, _) => self.webhook.send(webhook).await,
            (_, Some(aws)) => aws.send(webhook).await,
            (kind, None) => SendResult {
                error: Some(format!(
                    "no AWS credentials in this runtime to deliver to a `{}` endpoint",
                    kind.as_str()
                )),
                ..SendResult::default()
            },
        }
    }
}
