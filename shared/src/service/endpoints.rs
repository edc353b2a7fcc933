//! `/v1/webhook-endpoints`.

use super::Service;
use crate::endpoint::Endpoint;
use crate::error::ApiError;
use crate::event_type::EventType;
use crate::ids::random_id;
use crate::ports::{DeliveryFilter, Message};
use crate::schedule::{Delivery, DeliveryStatus};
use serde_json::{json, Value};

impl Service {
    pub async fn create_endpoint(&self, body: &Value) -> Result<Endpoint, ApiError> {
        let endpoint = Endpoint::create(body, &self.config.endpoint_rules(), self.clock.now())?;
        self.store.put_endpoint(&endpoint).await?;
        Ok(endpoint)
    }

    pub async fn endpoint(&self, id: &str) -> Result<Endpoint, ApiError> {
        self.store
            .endpoint(id)
            .await?
            .ok_or_else(|| ApiError::not_found("webhook endpoint", id))
    }

    pub async fn list_endpoints(&self) -> Result<Vec<Endpoint>, ApiError> {
        let mut all = self.store.endpoints().await?;
        all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(all)
    }

    pub async fn update_endpoint(&self, id: &str, body: &Value) -> Result<Endpoint, ApiError> {
        let mut endpoint = self.endpoint(id).await?;
        endpoint.patch(body, &self.config.endpoint_rules(), self.clock.now())?;
        self.store.put_endpoint(&endpoint).await?;
        Ok(endpoint)
    }

    /// Deletes an endpoint; what was still pending for it fails, so nothing waits forever.
    pub async fn delete_endpoint(&self, id: &str) -> Result<(), ApiError> {
        self.endpoint(id).await?;
        self.store.delete_endpoint(id).await?;
        let pending = DeliveryFilter {
            endpoint_id: Some(id.to_string()),
            status: Some(DeliveryStatus::Pending),
            ..Default::default()
        };
        let now = self.clock.now();
        loop {
            let page = self.store.deliveries(&pending, None, 500).await?;
            for (mut delivery, _) in page.data.clone() {
                delivery.status = DeliveryStatus::Failed;
                delivery.reason = Some("endpoint deleted".into());
                delivery.next_attempt_at = None;
                delivery.updated_at = now;
                self.store.put_delivery(&delivery).await?;
            }
            if page.next_cursor.is_none() {
                return Ok(());
            }
        }
    }

    /// A new secret; the old one keeps signing beside it for 24 hours.
    pub async fn rotate_secret(&self, id: &str) -> Result<Endpoint, ApiError> {
        let mut endpoint = self.endpoint(id).await?;
        endpoint.rotate_secret(self.clock.now());
        self.store.put_endpoint(&endpoint).await?;
        Ok(endpoint)
    }

    /// Sends a `webhook_endpoint.test` event to this endpoint alone, whatever
    /// its event-type filter; it is delivered, retried and logged like any other.
    pub async fn send_test_event(&self, id: &str) -> Result<Delivery, ApiError> {
        let endpoint = self.endpoint(id).await?;
        if !endpoint.enabled {
            return Err(ApiError::conflict(
                "enable the endpoint before sending it a test event",
            ));
        }
        let now = self.clock.now();
        let event_type = EventType::WebhookEndpointTest;
        let webhook_id = random_id("msg");
        let body = json!({
            "id": webhook_id, "type": event_type, "timestamp": now,
            "data": { "endpoint_id": endpoint.id, "url": endpoint.url, "description": endpoint.description },
        });
        let delivery = Delivery::direct(&webhook_id, event_type, &endpoint.id, "", None, now);
        let message = Message {
            id: webhook_id,
            body: body.to_string(),
        };
        self.store
            .add_message(&message, std::slice::from_ref(&delivery))
            .await?;
        self.count_fired([&delivery], now);
        self.wake_deliveries(std::slice::from_ref(&delivery), now)
            .await;
        Ok(delivery)
    }
}
