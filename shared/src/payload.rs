//! The webhook body of a fired schedule.

use crate::entity::EntityRecord;
use crate::schedule::Schedule;
use serde_json::{json, Value};

/// Builds the body: `{"id", "type", "timestamp", "data": {...}}`. Time-based
/// events show the entity as it is when they fire; write events show it as
/// the write left it.
pub fn build(schedule: &Schedule, record: Option<&EntityRecord>, late: bool) -> Value {
    let kind = schedule.entity.kind;
    let mut data = json!({
        "customer_id": schedule.customer_id,
        "event_time": schedule.event_time,
        "offset": schedule.offset,
        "scheduled_for": schedule.fire_at,
        "notification_id": schedule.notification_id,
        "late": late,
    });
    data[kind.id_field()] = json!(schedule.entity.id);
    let (snapshot, version) = match (&schedule.write, record) {
        (Some(write), _) => {
            data["occurred_at"] = json!(write.occurred_at);
            (write.snapshot.clone(), Some(write.version))
        }
        (None, Some(record)) => (record.entity.snapshot(), Some(record.version)),
        (None, None) => (Value::Null, None),
    };
    if let Some(contract_id) = snapshot.get("contract_id").filter(|v| !v.is_null()) {
        data["contract_id"] = contract_id.clone();
    }
    data["custom_fields"] = snapshot
        .get("custom_fields")
        .cloned()
        .unwrap_or_else(|| json!({}));
    data["version"] = json!(version);
    if let Some(segment) = &schedule.segment {
        // Index and count as the entity is now: segments may have been added.
        let items = snapshot["access_schedule"].as_array();
        let position = items.and_then(|items| {
            items
                .iter()
                .position(|item| item["id"] == json!(segment.id))
        });
        let (index, count, item) = match (items, position) {
            (Some(items), Some(i)) => (i, items.len(), items[i].clone()),
            _ => (segment.index, segment.count, Value::Null),
        };
        data["segment_id"] = json!(segment.id);
        data["segment_index"] = json!(index);
        data["segment_count"] = json!(count);
        data["segment"] = item;
    }
    data[kind.as_str()] = snapshot;
    json!({
        "id": schedule.webhook_id(),
        "type": schedule.event_type,
        "timestamp": schedule.fire_at,
        "data": data,
    })
}
