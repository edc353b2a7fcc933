//! Counting the AWS calls that really go over the wire: an SDK interceptor
//! on every client the functions build, recording each attempt by service
//! and operation, the partition keys it touches (base table and index keys,
//! read from the request body) and the DynamoDB request units it costs,
//! estimated from item sizes as DynamoDB bills them (writes: 1 unit per KB
//! per item and per index entry written, twice inside a transaction; reads:
//! 1 unit per 4 KB, half for an eventually consistent read).

use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// What the interceptor saw since the last `reset`.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// `"dynamodb.PutItem"` -> attempts.
    pub calls: BTreeMap<String, u64>,
    pub write_units: f64,
    pub read_units: f64,
    /// Write units by what was written: a base item as its key class and
    /// sort key kind (`D#<id> A`), an index entry as its index key class.
    pub write_units_by_class: HashMap<String, f64>,
    /// Partition key (as `index:key` for index keys) -> (reads, writes).
    pub partitions: HashMap<String, (u64, u64)>,
    /// Bytes of the request bodies sent, by service.
    pub bytes: BTreeMap<String, u64>,
    /// Seconds from sending to the answer, by operation (on moto: where a
    /// run's time goes, not what AWS would take).
    pub seconds: BTreeMap<String, f64>,
    /// Bytes of the items added for good: inserts (`attribute_not_exists`)
    /// and attempts (`A#...`), with an index entry's keys for each index
    /// key they carry. Overwrites of existing items add nothing at rest.
    pub added_bytes: u64,
    /// What each item last put showed each index (by a hash of its base
    /// key), so an overwrite is billed the index writes DynamoDB makes: none
    /// where the entry did not change, one where it appears, goes or its
    /// projected attributes change, two where its key moves. Kept across
    /// `reset`: the table does not forget its items.
    seen: HashMap<u64, [Entry; 5]>,
    /// Index partition keys by their hash, to name the partition of an
    /// entry that is removed.
    names: HashMap<u64, String>,
}

/// An item's entry in one index: hashes of its key and projected attributes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Entry {
    key: Option<u64>,
    /// The hash of the entry's partition key (`Tally::names` has its text).
    partition: u64,
    projected: u64,
}

fn hash(parts: &[&str]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    parts.hash(&mut hasher);
    hasher.finish()
}

/// The index writes of an entry going from `old` to `new`.
fn index_writes(old: Entry, new: Entry) -> u32 {
    match (old.key, new.key) {
        (None, None) => 0,
        (Some(a), Some(b)) if a == b => u32::from(old.projected != new.projected),
        (Some(_), Some(_)) => 2,
        _ => 1,
    }
}

/// The hottest partition key of a tally.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Hottest {
    pub key_class: String,
    pub key: String,
    pub writes: u64,
    pub reads: u64,
    pub share_of_reads: f64,
    pub share_of_writes: f64,
}

impl Tally {
    /// The partition that a boundary of any size loads most, with its
    /// class (the key with its ids, times and shards replaced by their kind).
    ///
    /// Only classes with fewer keys than `contracts` count: their keys are a
    /// fixed set (shards of an index, the one endpoint), so their load grows
    /// with the moments and is what the projection scales. A class with a key
    /// per contract or more (a customer, an entity, a delivery) keeps the same
    /// few writes per key whatever the size. Within a class the mean per key
    /// is taken: the keys are hash shards, which even out at a million
    /// moments while a sample of a thousand leaves some twice the mean. A
    /// tick's own item (`TICK#<minute>`: its generation and each shard's
    /// cursor) is left out: its writes are per tick and per page of a
    /// shard, not per moment (`tick_writes`).
    pub fn hottest(&self, contracts: usize) -> Option<Hottest> {
        let (reads, writes) = self
            .partitions
            .values()
            .fold((0, 0), |(r, w), (kr, kw)| (r + kr, w + kw));
        let mut classes: HashMap<String, (u64, u64, usize, String)> = HashMap::new();
        for (key, (r, w)) in self
            .partitions
            .iter()
            .filter(|(k, _)| !k.starts_with("TICK#"))
        {
            let class = classes
                .entry(key_class(key))
                .or_insert((0, 0, 0, key.clone()));
            class.0 += r;
            class.1 += w;
            class.2 += 1;
        }
        let share = |part: u64, all: u64| {
            if all == 0 {
                0.0
            } else {
                part as f64 / all as f64
            }
        };
        (classes.into_iter())
            .filter(|(_, (_, _, keys, _))| *keys < contracts)
            .map(|(class, (r, w, keys, key))| {
                let (r, w) = (r.div_ceil(keys as u64), w.div_ceil(keys as u64));
                (class, r, w, key)
            })
            .max_by(|a, b| (a.2, a.1, &b.0).cmp(&(b.2, b.1, &a.0)))
            .map(|(key_class, r, w, key)| Hottest {
                key_class,
                key,
                writes: w,
                reads: r,
                share_of_reads: share(r, reads),
                share_of_writes: share(w, writes),
            })
    }

    /// The busiest key classes: (class, reads, writes), most written first.
    pub fn by_class(&self, top: usize) -> Vec<(String, u64, u64)> {
        let mut classes: HashMap<String, (u64, u64)> = HashMap::new();
        for (key, (r, w)) in &self.partitions {
            let class = classes.entry(key_class(key)).or_default();
            class.0 += r;
            class.1 += w;
        }
        let mut classes: Vec<(String, u64, u64)> =
            classes.into_iter().map(|(c, (r, w))| (c, r, w)).collect();
        classes.sort_by(|a, b| (b.2, b.1, &a.0).cmp(&(a.2, a.1, &b.0)));
        classes.truncate(top);
        classes
    }

    /// Writes on the ticks' own items.
    pub fn tick_writes(&self) -> u64 {
        (self.partitions.iter())
            .filter(|(key, _)| key.starts_with("TICK#"))
            .map(|(_, (_, w))| w)
            .sum()
    }

    pub fn calls_of(&self, service: &str) -> u64 {
        let prefix = format!("{service}.");
        (self.calls.iter())
            .filter(|(name, _)| name.starts_with(&prefix))
            .map(|(_, n)| n)
            .sum()
    }
}

/// `E#contract#k_17` -> `E#contract#<id>`, `DUE#2027-01-01T00#0a` ->
/// `DUE#<hour>#<shard>`, `NTF` -> `NTF`.
pub fn key_class(key: &str) -> String {
    let (index, key) = key.split_once(':').unwrap_or(("", key));
    let mut parts: Vec<String> = key.split('#').map(str::to_string).collect();
    for (i, part) in parts.iter_mut().enumerate() {
        let is_time = part.len() >= 10 && part.as_bytes()[4] == b'-';
        if i == 0 {
            continue;
        } else if is_time {
            *part = "<time>".into();
        } else if part.len() <= 2 && part.chars().all(|c| c.is_ascii_hexdigit()) {
            *part = "<shard>".into();
        } else if part.contains('_') || part.chars().any(|c| c.is_ascii_digit()) {
            *part = "<id>".into();
        }
    }
    let class = parts.join("#");
    if index.is_empty() {
        class
    } else {
        format!("{index}:{class}")
    }
}

/// The interceptor; clones share one tally.
#[derive(Clone, Debug, Default)]
pub struct Counter(Arc<Mutex<Tally>>);

impl Counter {
    pub fn tally(&self) -> Tally {
        self.0.lock().unwrap().clone()
    }

    pub fn reset(&self) {
        let mut tally = self.0.lock().unwrap();
        let (seen, names) = (
            std::mem::take(&mut tally.seen),
            std::mem::take(&mut tally.names),
        );
        *tally = Tally {
            seen,
            names,
            ..Tally::default()
        };
    }

    fn with(&self, update: impl FnOnce(&mut Tally)) {
        update(&mut self.0.lock().unwrap());
    }
}

/// When an attempt was sent, kept in its config bag.
#[derive(Clone, Debug)]
struct Sent(std::time::Instant);

impl aws_smithy_types::config_bag::Storable for Sent {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

fn operation(cfg: &ConfigBag) -> (String, String) {
    match cfg.load::<Metadata>() {
        Some(meta) => (meta.service().to_lowercase(), meta.name().to_string()),
        None => ("unknown".into(), "unknown".into()),
    }
}

impl Intercept for Counter {
    fn name(&self) -> &'static str {
        "aws-storm call counter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, op) = operation(cfg);
        let body = context.request().body().bytes().unwrap_or_default();
        let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        cfg.interceptor_state()
            .store_put(Sent(std::time::Instant::now()));
        self.with(|tally| {
            *tally.calls.entry(format!("{service}.{op}")).or_default() += 1;
            *tally.bytes.entry(service.clone()).or_default() += body.len() as u64;
            if service == "dynamodb" {
                count_request(tally, &op, &request);
            }
        });
        Ok(())
    }

    /// After deserialization: only then is a large body (a batch of items)
    /// read whole; before it, such a body is still streaming.
    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, op) = operation(cfg);
        if let Some(Sent(sent)) = cfg.load::<Sent>() {
            let seconds = sent.elapsed().as_secs_f64();
            self.with(|t| *t.seconds.entry(format!("{service}.{op}")).or_default() += seconds);
        }
        if service != "dynamodb" {
            return Ok(());
        }
        let body = context.response().body().bytes().unwrap_or_default();
        let response: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        self.with(|tally| tally.read_units += read_units(&op, &response));
        Ok(())
    }
}

/// An item's size as DynamoDB counts it: attribute names plus values.
fn item_size(item: &Value) -> usize {
    let Some(fields) = item.as_object() else {
        return 0;
    };
    fields
        .iter()
        .map(|(name, value)| {
            name.len()
                + match value {
                    // Binary counts its bytes, not their base64 on the wire.
                    Value::Object(typed) if typed.contains_key("B") => {
                        typed["B"].as_str().map_or(0, |b| b.len() * 3 / 4)
                    }
                    Value::Object(typed) => typed.values().map(value_size).sum(),
                    other => value_size(other),
                }
        })
        .sum()
}

fn value_size(value: &Value) -> usize {
    match value {
        Value::String(text) => text.len(),
        Value::Bool(_) => 1,
        Value::Array(values) => values.iter().map(value_size).sum(),
        Value::Object(_) => item_size(value),
        _ => 8,
    }
}

fn units(bytes: usize, per: usize) -> f64 {
    bytes.div_ceil(per).max(1) as f64
}

fn key_of(item: &Value, name: &str) -> Option<String> {
    item.get(name)?.get("S")?.as_str().map(str::to_string)
}

/// The index each key attribute belongs to, with the attributes it
/// projects (`lifecycle_aws::dynamodb::INDEXES`, the one description of the indexes).
fn entries(item: &Value, names: &mut HashMap<u64, String>) -> [Entry; 5] {
    let mut entries = [Entry::default(); 5];
    for (slot, (index, pk, sk, projected)) in
        entries.iter_mut().zip(lifecycle_aws::dynamodb::INDEXES)
    {
        let (Some(pk), Some(sk)) = (key_of(item, pk), key_of(item, sk)) else {
            continue;
        };
        let values: Vec<String> = (projected.unwrap_or(&[]).iter())
            .map(|name| item.get(*name).map(|v| v.to_string()).unwrap_or_default())
            .collect();
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        let partition = format!("{index}:{pk}");
        let partition_hash = hash(&[&partition]);
        names.entry(partition_hash).or_insert(partition);
        *slot = Entry {
            key: Some(hash(&[&pk, &sk])),
            partition: partition_hash,
            projected: hash(&values),
        };
    }
    entries
}

fn write(tally: &mut Tally, key: Option<String>, units: f64) {
    write_item(tally, key, None, units)
}

/// A write of a base item (with its sort key) or of an index entry.
fn write_item(tally: &mut Tally, key: Option<String>, sk: Option<&str>, units: f64) {
    tally.write_units += units;
    let mut class = key.as_deref().map(key_class).unwrap_or_default();
    if let Some(sk) = sk {
        class = format!("{class} {}", sk.split('#').next().unwrap_or_default());
    }
    *tally.write_units_by_class.entry(class).or_default() += units;
    if let Some(key) = key {
        tally.partitions.entry(key).or_default().1 += 1;
    }
}

fn read(tally: &mut Tally, key: Option<String>) {
    if let Some(key) = key {
        tally.partitions.entry(key).or_default().0 += 1;
    }
}

/// A put: the item, and the index writes its change of each index entry
/// makes (see `Tally::seen`); a transaction's are counted twice, an upper
/// bound (AWS documents the doubling for the items).
fn put(tally: &mut Tally, item: &Value, factor: f64) {
    let size = item_size(item);
    let (pk, sk) = (
        key_of(item, "pk").unwrap_or_default(),
        key_of(item, "sk").unwrap_or_default(),
    );
    let new = entries(item, &mut tally.names);
    let old = tally.seen.insert(hash(&[&pk, &sk]), new);
    if old.is_none() || sk.starts_with("A#") {
        let indexed = new.iter().filter(|e| e.key.is_some()).count();
        // An index entry holds its keys and the base keys: about 100 bytes here.
        tally.added_bytes += (size + indexed * 100) as u64;
    }
    write_item(tally, Some(pk), Some(&sk), units(size, 1024) * factor);
    let old = old.unwrap_or_default();
    for (old, new) in old.into_iter().zip(new) {
        let writes = index_writes(old, new);
        // A removal or a move writes the old partition; an entry made, the new.
        let partitions = match (old.key, new.key) {
            (Some(_), Some(_)) if writes == 2 => vec![old.partition, new.partition],
            (Some(_), None) => vec![old.partition],
            _ => vec![new.partition; writes as usize],
        };
        for partition in partitions {
            let name = tally.names.get(&partition).cloned();
            write(tally, name, factor);
        }
    }
}

/// An update or delete of a base item, by its key: one unit (its size is
/// not in the request), times `factor`.
fn write_base(tally: &mut Tally, key: &Value, factor: f64) {
    let sk = key_of(key, "sk");
    write_item(tally, key_of(key, "pk"), sk.as_deref(), factor);
}

fn count_request(tally: &mut Tally, op: &str, request: &Value) {
    match op {
        "PutItem" => put(tally, &request["Item"], 1.0),
        "UpdateItem" | "DeleteItem" => write_base(tally, &request["Key"], 1.0),
        "GetItem" => read(tally, key_of(&request["Key"], "pk")),
        "TransactWriteItems" => {
            for action in request["TransactItems"].as_array().into_iter().flatten() {
                if let Some(item) = action.get("Put").map(|p| &p["Item"]) {
                    put(tally, item, 2.0);
                } else if let Some(update) = action.get("Update").or(action.get("Delete")) {
                    write_base(tally, &update["Key"], 2.0);
                } else if let Some(check) = action.get("ConditionCheck") {
                    // A check is billed as a write inside a transaction.
                    tally.write_units += 2.0;
                    read(tally, key_of(&check["Key"], "pk"));
                }
            }
        }
        "BatchWriteItem" => {
            for table in request["RequestItems"].as_object().into_iter().flatten() {
                for write in table.1.as_array().into_iter().flatten() {
                    if let Some(item) = write.get("PutRequest").map(|p| &p["Item"]) {
                        put(tally, item, 1.0);
                    } else if let Some(key) = write.get("DeleteRequest").map(|d| &d["Key"]) {
                        write_base(tally, key, 1.0);
                    }
                }
            }
        }
        "BatchGetItem" => {
            for table in request["RequestItems"].as_object().into_iter().flatten() {
                for key in table.1["Keys"].as_array().into_iter().flatten() {
                    read(tally, key_of(key, "pk"));
                }
            }
        }
        "Query" => {
            let values = &request["ExpressionAttributeValues"];
            let key = key_of(values, ":pk");
            let index = request["IndexName"].as_str();
            read(
                tally,
                key.map(|k| index.map_or(k.clone(), |i| format!("{i}:{k}"))),
            );
        }
        _ => {}
    }
}

/// Read units from a response: items' sizes, per 4 KB (per item for gets,
/// over the whole page for a query), halved for eventual consistency (index
/// queries always are; the store's other reads are consistent).
fn read_units(op: &str, response: &Value) -> f64 {
    match op {
        "GetItem" => units(item_size(&response["Item"]), 4096),
        "BatchGetItem" => response["Responses"]
            .as_object()
            .into_iter()
            .flatten()
            .flat_map(|(_, items)| items.as_array().into_iter().flatten())
            .map(|item| units(item_size(item), 4096))
            .sum(),
        "Query" => {
            let bytes: usize = response["Items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(item_size)
                .sum();
            units(bytes, 4096) * 0.5
        }
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn classes_hide_ids_times_and_shards() {
        assert_eq!(key_class("E#contract#k_17"), "E#contract#<id>");
        assert_eq!(
            key_class("due:DUE#2027-01-01T00#0a"),
            "due:DUE#<time>#<shard>"
        );
        assert_eq!(key_class("NTF"), "NTF");
        assert_eq!(key_class("D#dlv_0123"), "D#<id>");
    }

    #[test]
    fn a_fire_transaction_counts_its_items_and_index_entries() {
        let mut tally = Tally::default();
        let schedule = |state: &str| {
            json!({"pk": {"S": "E#contract#k_1"}, "sk": {"S": "S#n#sch_1"},
                   "g1pk": {"S": "SID#sch_1"}, "g1sk": {"S": "-"},
                   "g3pk": {"S": "C#c_1"}, "g3sk": {"S": format!("S#{state}#t#sch_1")}, "st": {"S": state}})
        };
        count_request(&mut tally, "PutItem", &json!({"Item": schedule("pending")}));
        // The item and its two new index entries.
        assert_eq!(tally.write_units, 3.0);
        let request = json!({"TransactItems": [
            {"Put": {"Item": schedule("fired"), "ConditionExpression": "st = :pending"}},
            {"Put": {"Item": {"pk": {"S": "D#dlv_1"}, "sk": {"S": "D"},
                              "g4pk": {"S": "T#2027-01-01#3"}, "g4sk": {"S": "x"}},
                     "ConditionExpression": "attribute_not_exists(pk)"}}
        ]});
        count_request(&mut tally, "TransactWriteItems", &request);
        // 2 items x 2; the schedule's customer entry moves (2 x 2), its
        // lookup entry stays (0); the delivery's timeline entry (1 x 2).
        assert_eq!(tally.write_units, 3.0 + 10.0);
        let hottest = tally.hottest(10).unwrap();
        // The customer entry: made, then moved (a delete and a put).
        assert_eq!(hottest.key, "customer:C#c_1");
        assert_eq!(hottest.writes, 3);
        assert!(
            tally.hottest(1).is_none(),
            "a key per contract is no fixed set"
        );
    }

    #[test]
    fn a_batch_write_bills_each_put_once_and_binary_by_its_bytes() {
        let mut tally = Tally::default();
        let body = "A".repeat(2000 * 4 / 3);
        let request = json!({"RequestItems": {"t": [
            {"PutRequest": {"Item": {"pk": {"S": "D#dlv_1"}, "sk": {"S": "A#0001"}}}},
            {"PutRequest": {"Item": {"pk": {"S": "M#msg_1"}, "sk": {"S": "M"}, "bz": {"B": body}}}}
        ]}});
        count_request(&mut tally, "BatchWriteItem", &request);
        // One unit for the attempt, two for 2,000 bytes of binary.
        assert_eq!(tally.write_units, 3.0);
        assert_eq!(tally.write_units_by_class["M#<id> M"], 2.0);
    }
}
