//! The fan-out job of a notification change: one `JOB#<notification>` item
//! holding the generation (the notification's `updated_at`, or the
//! deletion), the notification as recorded and the cursor. Each change of
//! the item is a stream record that runs the next pages (the `schedule`
//! function); a newer generation makes the older job's conditional writes
//! fail, so it stops.

use super::{condition_held, s, to_json, unavailable, DynamoStore, Item};
use aws_sdk_dynamodb::types::AttributeValue;
use lifecycle_core::notification::Notification;
use lifecycle_core::ports::StoreResult;
use lifecycle_core::time::Time;
use std::collections::HashMap;

fn job_key(notification_id: &str) -> Item {
    HashMap::from([
        ("pk".to_string(), s(format!("JOB#{notification_id}"))),
        ("sk".to_string(), s("J")),
    ])
}

fn generation_is(gen: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([(":gen".to_string(), s(gen))])
}

impl DynamoStore {
    /// Starts (or restarts, superseding a running one) the fan-out of a
    /// notification change: writes its job item at generation `gen`.
    pub async fn start_fan_out(
        &self,
        notification: &Notification,
        exists: bool,
        gen: &str,
        now: Time,
    ) -> StoreResult<()> {
        let mut item = job_key(&notification.id);
        item.insert("t".into(), s("JOB"));
        item.insert("ntf".into(), s(&notification.id));
        item.insert("gen".into(), s(gen));
        item.insert("exists".into(), AttributeValue::Bool(exists));
        item.insert("r".into(), s(to_json(notification)));
        item.insert("start".into(), s(now.to_rfc3339()));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map(drop)
            .map_err(unavailable)
    }

    /// Saves the job's cursor, if the job is still at generation `gen`
    /// (false: a newer change took over).
    pub async fn continue_fan_out(
        &self,
        notification_id: &str,
        gen: &str,
        after: &str,
        now: Time,
    ) -> StoreResult<bool> {
        let mut values = generation_is(gen);
        values.insert(":after".into(), s(after));
        values.insert(":beat".into(), s(now.to_rfc3339()));
        let saved = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(job_key(notification_id)))
            .update_expression("SET #after = :after, beat = :beat")
            .expression_attribute_names("#after", "after")
            .condition_expression("gen = :gen")
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        condition_held(saved)
    }

    /// Deletes the finished job, if it is still at generation `gen` (false:
    /// a newer change took over).
    pub async fn finish_fan_out(&self, notification_id: &str, gen: &str) -> StoreResult<bool> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(job_key(notification_id)))
            .condition_expression("gen = :gen")
            .set_expression_attribute_values(Some(generation_is(gen)))
            .send()
            .await;
        condition_held(deleted)
    }
}
