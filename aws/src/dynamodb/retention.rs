//! How long the delivery log is kept: messages, deliveries and attempts
//! carry `ttl` (the table's TTL attribute) when the deployment sets a
//! retention (`DeliveryRetentionDays`, 90 by default in the template), so
//! the table holds a few months of webhooks instead of growing for ever.
//! DynamoDB deletes expired items within days of their time, at no cost.

use super::{n, DynamoStore, Item};
use chrono::Duration;
use lifecycle_core::time::Time;

impl DynamoStore {
    /// Keeps messages, deliveries and attempts `days` after they were made
    /// (0: for ever).
    pub fn with_delivery_retention_days(mut self, days: i64) -> Self {
        self.retention_days = (days > 0).then_some(days);
        self
    }

    /// The item, expiring `retention_days` after `from`.
    pub(super) fn expiring(&self, mut item: Item, from: Time) -> Item {
        if let Some(days) = self.retention_days {
            item.insert("ttl".into(), n((from + Duration::days(days)).timestamp()));
        }
        item
    }
}
