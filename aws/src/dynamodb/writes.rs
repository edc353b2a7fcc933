//! Entities, write events, notifications and endpoints.

use super::keys::{entity_item, entity_pk, event_pk, kind_lookup, notification_item, ENTITY_SK};
use super::reads::Query;
use super::tx::{chunks, Action, OnFail, MAX_ACTIONS};
use super::{key, n, record, s, text, DynamoStore, Item};
use lifecycle_core::entity::{EntityKey, EntityKind, EntityRecord};
use lifecycle_core::notification::Notification;
use lifecycle_core::ports::{StoreError, StoreResult, WriteCommit, WriteState};
use lifecycle_core::schedule::Schedule;
use lifecycle_core::time::Time;
use serde::de::DeserializeOwned;
use std::collections::{HashMap, HashSet};

/// DynamoDB's item size limit, attribute names included.
const MAX_ITEM_BYTES: usize = 400 * 1024;

/// An item's size as DynamoDB counts it, near enough: names and values in
/// bytes (numbers as their text, which is at least what DynamoDB counts).
fn item_bytes(item: &Item) -> usize {
    use aws_sdk_dynamodb::types::AttributeValue as V;
    fn value(v: &V) -> usize {
        match v {
            V::S(s) | V::N(s) => s.len(),
            V::B(b) => b.as_ref().len(),
            V::Ss(all) | V::Ns(all) => all.iter().map(String::len).sum(),
            V::Bs(all) => all.iter().map(|b| b.as_ref().len()).sum(),
            V::L(all) => 3 + all.iter().map(|v| 1 + value(v)).sum::<usize>(),
            V::M(map) => {
                3 + map
                    .iter()
                    .map(|(k, v)| 1 + k.len() + value(v))
                    .sum::<usize>()
            }
            _ => 1,
        }
    }
    item.iter().map(|(name, v)| name.len() + value(v)).sum()
}

impl DynamoStore {
    /// Puts the item unless its key exists: whether it was put.
    pub(super) async fn insert_once(&self, item: Item) -> StoreResult<bool> {
        self.put_when(item, "attribute_not_exists(pk)", Vec::new())
            .await
    }

    /// Puts the item if the condition holds on the stored one: whether it was put.
    pub(super) async fn put_when(
        &self,
        item: Item,
        condition: &str,
        values: Vec<(&str, aws_sdk_dynamodb::types::AttributeValue)>,
    ) -> StoreResult<bool> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition);
        for (name, value) in values {
            put = put.expression_attribute_values(name, value);
        }
        super::condition_held(put.send().await)
    }

    pub(super) async fn install_notifications(&self, defaults: &[Notification]) -> StoreResult<()> {
        let mut added = false;
        for notification in defaults {
            let item =
                notification_item("NTF", &notification.id, super::to_json(notification), "NTF");
            added |= self.insert_once(item).await?;
        }
        if added {
            self.transact(vec![Action::bump_config(&self.table)?])
                .await?;
        }
        self.config.invalidate();
        Ok(())
    }

    pub(super) async fn load_write_state(
        &self,
        event_ids: &[String],
        keys: &[EntityKey],
    ) -> StoreResult<WriteState> {
        let mut state = WriteState::default();
        let seen = self
            .batch_get(event_ids.iter().map(|id| key(event_pk(id), "W")).collect())
            .await?;
        for item in &seen {
            if let Some(id) = text(item, "pk")?.strip_prefix("W#") {
                state.seen_events.insert(id.to_string());
            }
        }
        let partitions = self
            .query_many(
                keys.iter()
                    .map(|k| Query::partition(entity_pk(k)))
                    .collect(),
            )
            .await?;
        for (entity_key, items) in keys.iter().zip(partitions) {
            let mut schedules = Vec::new();
            for item in &items {
                match text(item, "t")? {
                    "ENT" => {
                        state
                            .records
                            .insert(entity_key.clone(), record::<EntityRecord>(item)?);
                    }
                    "SCH" if !item.contains_key("w") => schedules.push(record::<Schedule>(item)?),
                    _ => {}
                }
            }
            state.schedules.insert(entity_key.clone(), schedules);
        }
        Ok(state)
    }

    /// One transaction when it fits in 100 actions (atomic, as in SQLite).
    /// Beyond that, in order: the plan and signal items (upserts and
    /// insert-once items, each with the entity versions they were planned
    /// from checked), then the entities, then the write-event records. The
    /// usage totals then keep the events they count until a later write
    /// finds their records, so a retry does not count them again.
    pub(super) async fn commit_write_batch(&self, commit: &WriteCommit) -> StoreResult<()> {
        let table = &self.table;
        let ttl = chrono::Utc::now().timestamp() + self.event_dedupe_days * 86_400;
        let mut events = Vec::new();
        for (id, status) in &commit.events {
            let mut item = key(event_pk(id), "W");
            item.insert("t".into(), s("EVT"));
            item.insert("status".into(), s(*status));
            item.insert("ttl".into(), n(ttl));
            events.push(Action::insert(
                table,
                item,
                OnFail::Conflict(format!("write event {id} was applied concurrently")),
            )?);
        }
        // An entity planned under every notification is put with its
        // earliest deferred moment, so recording it is not a second write.
        let deferred: HashMap<EntityKey, Option<Time>> = (commit.plan.deferred.iter())
            .filter(|d| d.whole)
            .map(|d| (d.entity.clone(), d.earliest))
            .collect();
        let mut entities = Vec::new();
        for (entity, expected) in &commit.records {
            let at = deferred.get(&entity.key()).copied().flatten();
            entities.push(self.entity_put(entity, *expected, at)?);
        }
        self.note_timeline(commit.plan.skipped.iter().chain(&commit.signals.deliveries))
            .await?;
        let written: HashSet<EntityKey> = (commit.records.iter())
            .map(|(r, _)| r.key())
            .filter(|k| deferred.contains_key(k))
            .collect();
        self.defer_sooner(&commit.plan.deferred).await?;
        let plan = self.plan_actions(&commit.plan, &written)?;
        let remembered: HashSet<&str> = commit.events.iter().map(|(id, _)| id.as_str()).collect();
        let signals = self.signal_actions(&commit.signals, &remembered)?;
        if events.len() + entities.len() + plan.len() + signals.len() <= MAX_ACTIONS {
            let mut all = events;
            all.extend(entities);
            all.extend(plan.into_iter().map(|(_, a)| a));
            all.extend(signals);
            return self.transact(all).await;
        }
        // Too big for one transaction: each entity's plan items go first, with
        // a check that the entity is still at the version planned from; then
        // the signals, the entities and last the event records.
        let expected: HashMap<EntityKey, Option<u64>> =
            commit.records.iter().map(|(r, v)| (r.key(), *v)).collect();
        let mut groups: Vec<(Option<EntityKey>, Vec<Action>)> = Vec::new();
        let mut group_of: HashMap<Option<EntityKey>, usize> = HashMap::new();
        for (owner, action) in plan {
            let at = *group_of.entry(owner.clone()).or_insert_with(|| {
                groups.push((owner, Vec::new()));
                groups.len() - 1
            });
            groups[at].1.push(action);
        }
        // Several entities' groups share a transaction, each with its own
        // check: one that fails refuses the write whole either way, and a
        // full batch makes tens of transactions instead of one per entity.
        let mut transactions: Vec<Vec<Action>> = vec![Vec::new()];
        for (owner, actions) in groups {
            let check = match owner
                .as_ref()
                .and_then(|k| expected.get(k).map(|v| (k, *v)))
            {
                Some((k, version)) => Some(self.version_check(k, version)?),
                None => None,
            };
            for chunk in actions.chunks(MAX_ACTIONS - 1) {
                let mut part = chunk.to_vec();
                part.extend(check.clone());
                let last = transactions.last_mut().expect("one at least");
                if last.len() + part.len() <= MAX_ACTIONS {
                    last.extend(part);
                } else {
                    transactions.push(part);
                }
            }
        }
        self.transact_side_by_side(transactions).await?;
        // The totals keep the events they count until their records are
        // stored: a retry after a failure in between counts them once. In
        // order, since a crossing's message precedes its deliveries.
        let signals = self.signal_actions(&commit.signals, &HashSet::new())?;
        self.transact_chunks(signals).await?;
        self.transact_side_by_side(chunks(entities)).await?;
        self.transact_side_by_side(chunks(events)).await
    }

    /// That an entity is still at a version (None: still absent).
    fn version_check(&self, entity: &EntityKey, version: Option<u64>) -> StoreResult<Action> {
        let reason = format!(
            "{} {} changed concurrently",
            entity.kind.as_str(),
            entity.id
        );
        let key = key(entity_pk(entity), ENTITY_SK);
        match version {
            None => Action::check(&self.table, key, "attribute_not_exists(pk)", vec![], reason),
            Some(v) => Action::check(&self.table, key, "v = :v", vec![(":v", n(v))], reason),
        }
    }

    /// The put of a new entity state, replacing the expected version (None: a create).
    fn entity_put(
        &self,
        entity: &EntityRecord,
        expected: Option<u64>,
        deferred: Option<Time>,
    ) -> StoreResult<Action> {
        let entity_key = entity.key();
        let reason = format!(
            "{} {} changed concurrently",
            entity_key.kind.as_str(),
            entity_key.id
        );
        let item = entity_item(entity, deferred);
        let bytes = item_bytes(&item);
        if bytes > MAX_ITEM_BYTES {
            // Before anything is written: DynamoDB would refuse the whole
            // transaction with a ValidationException, a 500 a client retries.
            return Err(StoreError::TooLarge {
                entity: entity_key,
                bytes,
                limit: MAX_ITEM_BYTES,
            });
        }
        match expected {
            None => Action::insert(&self.table, item, OnFail::Conflict(reason)),
            Some(version) => Action::put_if(
                &self.table,
                item,
                Some("v = :expected"),
                vec![(":expected", n(version))],
                OnFail::Conflict(reason),
            ),
        }
    }

    pub(super) async fn load_entity(&self, key: &EntityKey) -> StoreResult<Option<EntityRecord>> {
        self.get(entity_pk(key), ENTITY_SK)
            .await?
            .map(|item| record(&item))
            .transpose()
    }

    pub(super) async fn load_entities(&self, keys: &[EntityKey]) -> StoreResult<Vec<EntityRecord>> {
        let items = self
            .batch_get(keys.iter().map(|k| key(entity_pk(k), ENTITY_SK)).collect())
            .await?;
        let mut found: Vec<EntityRecord> = items.iter().map(record).collect::<StoreResult<_>>()?;
        // In the order asked, as SQLite answers.
        let order: std::collections::HashMap<&EntityKey, usize> =
            keys.iter().enumerate().map(|(i, k)| (k, i)).collect();
        found.sort_by_key(|r| order.get(&r.key()).copied());
        Ok(found)
    }

    pub(super) async fn load_entities_after(
        &self,
        kind: EntityKind,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<EntityRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut query = match after {
            // Key values cannot be empty strings: no lower bound, no condition.
            None | Some("") => Query::new(Some("lookup"), "g1pk = :pk"),
            Some(after) => {
                Query::new(Some("lookup"), "g1pk = :pk AND g1sk > :after").value(":after", after)
            }
        }
        .value(":pk", kind_lookup(kind));
        query.limit = Some(limit);
        let mut ids: Vec<String> = Vec::new();
        for item in self.query_all(query).await? {
            ids.push(text(&item, "g1sk")?.to_string());
        }
        ids.truncate(limit);
        let keys: Vec<EntityKey> = ids.into_iter().map(|id| EntityKey { kind, id }).collect();
        self.load_entities(&keys).await
    }

    /// Every record of a partition (`NTF`, `EP`).
    pub(super) async fn load_partition<T: DeserializeOwned>(
        &self,
        pk: &str,
    ) -> StoreResult<Vec<T>> {
        let items: Vec<Item> = self.query_all(Query::partition(pk)).await?;
        items.iter().map(record).collect()
    }

    pub(super) async fn load_one<T: DeserializeOwned>(
        &self,
        pk: &str,
        id: &str,
    ) -> StoreResult<Option<T>> {
        self.get(pk.to_string(), id)
            .await?
            .map(|item| record(&item))
            .transpose()
    }

    /// A notification or endpoint put, with the configuration version bump.
    pub(super) async fn put_config_record(
        &self,
        pk: &str,
        id: &str,
        record: String,
        t: &str,
    ) -> StoreResult<()> {
        let written = self
            .transact(vec![
                Action::put(&self.table, notification_item(pk, id, record, t))?,
                Action::bump_config(&self.table)?,
            ])
            .await;
        self.config.invalidate();
        written
    }

    pub(super) async fn delete_config_record(&self, pk: &str, id: &str) -> StoreResult<()> {
        let written = self
            .transact(vec![
                Action::delete(&self.table, key(pk, id))?,
                Action::bump_config(&self.table)?,
            ])
            .await;
        self.config.invalidate();
        written
    }
}
