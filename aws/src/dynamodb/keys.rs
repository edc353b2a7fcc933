//! Keys and items of the single-table design: one function per item type
//! builds the whole item, index attributes included, so that a put always
//! leaves the indexes in step with the record.

use super::{key, n, s, to_json, Item};
use lifecycle_core::entity::{EntityKey, EntityKind, EntityRecord};
use lifecycle_core::schedule::{Attempt, Delivery, DeliveryStatus, Schedule};
use lifecycle_core::threshold::AlertState;
use lifecycle_core::time::Time;
use sha2::{Digest, Sha256};

/// RFC 3339 UTC with milliseconds: sorts as text. Every time in a key, an
/// index or a timer message has this form.
pub fn time_key(time: Time) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The first hex digit of SHA-256: 16 shards.
pub(crate) fn shard(text: &str) -> u8 {
    Sha256::digest(text.as_bytes())[0] >> 4
}

/// One of `count` shards (at most 65,536), from the first two bytes of SHA-256.
pub(crate) fn shard_of(text: &str, count: u16) -> u16 {
    let digest = Sha256::digest(text.as_bytes());
    u16::from_be_bytes([digest[0], digest[1]]) % count
}

/// Shards of the delivery timeline index. A month boundary creates every
/// delivery within a minute with rising sort keys, which split-for-heat
/// cannot spread: each shard is a partition key taking 1,000 writes a second,
/// and a delivery writes its entry twice (made, then its status). 128 keys
/// take 2,000,000 deliveries in about 31 s.
pub(crate) const TIMELINE_SHARDS: u16 = 128;

/// Shards of an endpoint's pending deliveries in the endpoint index: one
/// endpoint taking every type gets every delivery of a boundary, each
/// entered and removed (with 16 shards the aws-storm benchmark found this
/// the hottest key: 1 % of a boundary's writes).
pub(crate) const ENDPOINT_SHARDS: u16 = 128;

/// The record of an entity, schedule, delivery or attempt: gzipped JSON.
/// These are the items a boundary writes and the table holds by the
/// million, and their JSON of ids and field names shrinks by a third to a
/// half: a pending delivery with its index keys goes from just over 1 KB
/// (two write units a write) to about 830 bytes, a commit of twelve
/// segments from about 3 KB to 1 KB. Configuration items (notifications,
/// endpoints, fan-out jobs) stay text: the stream handler reads them.
fn packed(record: &impl serde::Serialize) -> aws_sdk_dynamodb::types::AttributeValue {
    super::compressed::pack(&to_json(record))
}

pub(crate) fn entity_pk(key: &EntityKey) -> String {
    format!("E#{}#{}", key.kind.as_str(), key.id)
}

pub(crate) fn kind_lookup(kind: EntityKind) -> String {
    format!("K#{}", kind.as_str())
}

pub(crate) const ENTITY_SK: &str = "#";

/// The prefix of an entity's sort key in the `customer` index: a customer's
/// entities, read for the moments they defer (`deferrals.rs`).
pub(crate) const CUSTOMER_ENTITY_PREFIX: &str = "E#";

/// Shards of the deferred entities in the `due` index (`deferrals.rs`), the
/// 16 of `shard`: they are written at ingest's pace, not a boundary's, and
/// the sweep reads every shard each period.
pub(crate) const DEFERRED_SHARDS: u8 = 16;

/// A `due`-index partition of deferred entities, apart from the timers'
/// `DUE#` buckets.
pub(crate) fn deferred_shard_pk(shard: u8) -> String {
    format!("DF#{shard:x}")
}

pub(crate) fn deferred_pk(entity: &EntityKey) -> String {
    deferred_shard_pk(shard(&entity_pk(entity)))
}

pub(crate) fn deferred_sk(at: Time, entity: &EntityKey) -> String {
    format!("{}#{}", time_key(at), entity_pk(entity))
}

/// An entity item; `deferred`: the fire time of its earliest deferred
/// moment, which enters it in the `due` index.
pub(crate) fn entity_item(record: &EntityRecord, deferred: Option<Time>) -> Item {
    let entity_key = record.key();
    let mut item = key(entity_pk(&entity_key), ENTITY_SK);
    item.insert("g3pk".into(), s(customer_pk(record.entity.customer_id())));
    item.insert(
        "g3sk".into(),
        s(format!(
            "{CUSTOMER_ENTITY_PREFIX}{}",
            entity_pk(&entity_key)
        )),
    );
    if let Some(at) = deferred {
        item.insert("g2pk".into(), s(deferred_pk(&entity_key)));
        item.insert("g2sk".into(), s(deferred_sk(at, &entity_key)));
    }
    item.insert("t".into(), s("ENT"));
    item.insert("r".into(), packed(record));
    item.insert("v".into(), n(record.version));
    item.insert("cust".into(), s(record.entity.customer_id()));
    item.insert("oa".into(), s(time_key(record.occurred_at)));
    if let Some(archived) = record.archived_at {
        item.insert("arch".into(), s(time_key(archived)));
    }
    item.insert("g1pk".into(), s(kind_lookup(entity_key.kind)));
    item.insert("g1sk".into(), s(entity_key.id));
    item
}

pub(crate) fn schedule_sk(notification_id: &str, id: &str) -> String {
    format!("S#{notification_id}#{id}")
}

pub(crate) fn schedule_lookup(id: &str) -> String {
    format!("SID#{id}")
}

pub(crate) fn schedule_key(schedule: &Schedule) -> Item {
    key(
        entity_pk(&schedule.entity),
        schedule_sk(&schedule.notification_id, &schedule.id),
    )
}

pub(crate) fn customer_schedule_sk(state: &str, fire_at: &str, id: &str) -> String {
    format!("S#{state}#{fire_at}#{id}")
}

pub(crate) fn schedule_item(schedule: &Schedule) -> Item {
    let mut item = schedule_key(schedule);
    let state = schedule.state.as_str();
    let fire_at = time_key(schedule.fire_at);
    item.insert("t".into(), s("SCH"));
    item.insert("r".into(), packed(schedule));
    item.insert("st".into(), s(state));
    item.insert("fa".into(), s(&fire_at));
    item.insert("et".into(), s(schedule.event_type.as_str()));
    item.insert("g1pk".into(), s(schedule_lookup(&schedule.id)));
    item.insert("g1sk".into(), s("-"));
    if schedule.write.is_some() {
        item.insert(
            "w".into(),
            aws_sdk_dynamodb::types::AttributeValue::Bool(true),
        );
    }
    if state == "pending" {
        item.insert(
            "g2pk".into(),
            s(super::due::due_pk(schedule.fire_at, &schedule.id)),
        );
        item.insert("g2sk".into(), s(format!("{fire_at}#{}", schedule.id)));
    }
    if schedule.write.is_none() {
        item.insert("g3pk".into(), s(customer_pk(&schedule.customer_id)));
        item.insert(
            "g3sk".into(),
            s(customer_schedule_sk(state, &fire_at, &schedule.id)),
        );
    }
    item
}

pub(crate) fn customer_pk(customer_id: &str) -> String {
    format!("C#{customer_id}")
}

pub(crate) fn notification_item(pk: &str, id: &str, record: String, t: &str) -> Item {
    let mut item = key(pk, id);
    item.insert("t".into(), s(t));
    item.insert("r".into(), s(record));
    item
}

pub(crate) fn message_pk(id: &str) -> String {
    format!("M#{id}")
}

pub(crate) fn message_item(id: &str, body: &str) -> Item {
    let mut item = key(message_pk(id), "M");
    item.insert("t".into(), s("MSG"));
    item.insert("bz".into(), super::compressed::pack(body));
    item
}

pub fn delivery_pk(id: &str) -> String {
    format!("D#{id}")
}

pub const DELIVERY_SK: &str = "D";

/// The sort key suffix of a delivery in every listing index: newest first
/// when read descending.
pub(crate) fn delivery_order(d: &Delivery) -> String {
    format!("{}#{}", time_key(d.created_at), d.id)
}

pub(crate) fn timeline_day(created_at: Time) -> String {
    created_at.format("%Y-%m-%d").to_string()
}

pub(crate) fn timeline_pk(day: &str, shard: u16) -> String {
    format!("T#{day}#{shard}")
}

pub(crate) fn endpoint_pk(endpoint_id: &str, status: &str, shard: u16) -> String {
    format!("EP#{endpoint_id}#{status}#{shard:x}")
}

pub(crate) fn delivery_item(d: &Delivery) -> Item {
    let mut item = key(delivery_pk(&d.id), DELIVERY_SK);
    let status = d.status.as_str();
    let order = delivery_order(d);
    item.insert("t".into(), s("DLV"));
    item.insert("r".into(), packed(d));
    item.insert("st".into(), s(status));
    item.insert("et".into(), s(d.event_type.as_str()));
    item.insert("n".into(), n(d.attempt_count));
    item.insert("cust".into(), s(&d.customer_id));
    if let Some(endpoint) = &d.endpoint_id {
        item.insert("ep".into(), s(endpoint));
    }
    if let Some(next) = d.next_attempt_at {
        item.insert("nxt".into(), s(time_key(next)));
        if d.status == DeliveryStatus::Pending {
            item.insert("g2pk".into(), s(super::due::due_pk(next, &d.id)));
            item.insert("g2sk".into(), s(format!("{}#{}", time_key(next), d.id)));
        }
    }
    if !d.customer_id.is_empty() {
        item.insert("g3pk".into(), s(customer_pk(&d.customer_id)));
        item.insert("g3sk".into(), s(format!("D#{order}")));
    }
    item.insert(
        "g4pk".into(),
        s(timeline_pk(
            &timeline_day(d.created_at),
            shard_of(&d.id, TIMELINE_SHARDS),
        )),
    );
    item.insert("g4sk".into(), s(&order));
    if let (Some(endpoint), DeliveryStatus::Pending | DeliveryStatus::Failed) =
        (&d.endpoint_id, d.status)
    {
        let shard = shard_of(&d.id, ENDPOINT_SHARDS);
        item.insert("g5pk".into(), s(endpoint_pk(endpoint, status, shard)));
        item.insert("g5sk".into(), s(&order));
    }
    item
}

pub(crate) fn attempt_item(a: &Attempt) -> Item {
    let mut item = key(delivery_pk(&a.delivery_id), format!("A#{:04}", a.number));
    item.insert("t".into(), s("ATT"));
    item.insert("r".into(), packed(a));
    item
}

pub(crate) fn event_pk(id: &str) -> String {
    format!("W#{id}")
}

pub(crate) fn alert_item(alert: &AlertState) -> Item {
    let mut item = key(
        customer_pk(&alert.customer_id),
        format!("A#{}", alert.notification_id),
    );
    item.insert("t".into(), s("ALR"));
    item.insert("r".into(), s(to_json(alert)));
    item
}

/// `M#BAL#<shard>` and friends: the customers having a measure.
pub(crate) fn measure_lookup(prefix: &str, shard: u8) -> String {
    format!("{prefix}#{shard:x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifecycle_core::event_type::EventType;
    use lifecycle_core::schedule::DeliveryStatus;

    /// What DynamoDB bills by: attribute names plus values.
    fn size(item: &Item) -> usize {
        use aws_sdk_dynamodb::types::AttributeValue as V;
        let value = |v: &V| match v {
            V::S(text) | V::N(text) => text.len(),
            V::B(blob) => blob.as_ref().len(),
            _ => 8,
        };
        item.iter().map(|(k, v)| k.len() + value(v)).sum()
    }

    #[test]
    fn a_pending_delivery_with_its_index_keys_costs_one_write_unit() {
        let at = lifecycle_core::time::parse_time("2027-01-01T00:00:00Z").unwrap();
        let hex = "0123456789abcdef0123456789abcdef";
        let delivery = Delivery {
            id: format!("dlv_{hex}"),
            webhook_id: format!("msg_{hex}"),
            schedule_id: format!("sch_{hex}"),
            notification_id: Some("ntf_system_commit_segment_end".into()),
            event_type: EventType::CommitSegmentEnd,
            customer_id: "cust_000123".into(),
            entity: Some(EntityKey {
                kind: EntityKind::Commit,
                id: "commit_000123".into(),
            }),
            endpoint_id: Some(format!("ep_{hex}")),
            status: DeliveryStatus::Pending,
            reason: None,
            scheduled_for: at,
            attempt_count: 0,
            next_attempt_at: Some(at),
            manual: false,
            created_at: at,
            updated_at: at,
        };
        let item = delivery_item(&delivery);
        assert!(size(&item) <= 1024, "{} bytes", size(&item));
        let back: Delivery = super::super::record(&item).unwrap();
        assert_eq!(back.id, delivery.id);
    }
}
