//! Deferred moments (`lifecycle_core::horizon`): an entity's earliest one is
//! its entry in the `due` index (`DF#<shard>`, sorted by fire time), where
//! the sweep finds the entities to plan again as their moments come within
//! the horizon. The moments themselves are never written: the customer view
//! derives them from the customer's entities, which the `customer` index
//! lists.

use super::keys::{
    customer_pk, deferred_pk, deferred_shard_pk, deferred_sk, entity_pk, time_key,
    CUSTOMER_ENTITY_PREFIX, DEFERRED_SHARDS, ENTITY_SK,
};
use super::reads::Query;
use super::tx::Action;
use super::{condition_held, key, record, s, text, unavailable, DynamoStore, Item};
use lifecycle_core::entity::{EntityKey, EntityKind, EntityRecord};
use lifecycle_core::horizon::{deferred_moments, Deferral};
use lifecycle_core::ports::StoreResult;
use lifecycle_core::schedule::Schedule;
use lifecycle_core::time::{parse_time, Time};
use std::collections::HashSet;

/// Conditional updates of `defer_sooner` in flight at once.
const IN_FLIGHT: usize = 32;

/// The entity an `E#<kind>#<id>` partition key names.
fn entity_of(pk: &str) -> StoreResult<EntityKey> {
    let (kind, id) = pk
        .strip_prefix("E#")
        .and_then(|rest| rest.split_once('#'))
        .ok_or_else(|| unavailable(format!("`{pk}` is not an entity key")))?;
    let kind = EntityKind::parse(kind)
        .ok_or_else(|| unavailable(format!("unknown entity kind `{kind}` in the store")))?;
    Ok(EntityKey {
        kind,
        id: id.to_string(),
    })
}

/// The earliest deferred moment an entity item records, if any.
fn deferred_at(item: &Item) -> Option<Time> {
    let sort = text(item, "g2sk").ok()?;
    parse_time(sort.split_once('#')?.0)
}

impl DynamoStore {
    /// The updates that record the deferrals of entities planned under
    /// every notification (`whole`: the earliest replaces what the entity
    /// had, or is removed), but for the entities in `written`, whose put in
    /// the same write carries it. They go in the plan's transactions, after
    /// its schedules: an earliest moved on never leaves moments unstored.
    pub(super) fn deferral_actions(
        &self,
        deferred: &[Deferral],
        written: &HashSet<EntityKey>,
    ) -> StoreResult<Vec<(Option<EntityKey>, Action)>> {
        let mut actions = Vec::new();
        for deferral in deferred
            .iter()
            .filter(|d| d.whole && !written.contains(&d.entity))
        {
            let entity = &deferral.entity;
            let item_key = key(entity_pk(entity), ENTITY_SK);
            let action = match deferral.earliest {
                Some(at) => Action::update_if(
                    &self.table,
                    item_key,
                    "SET g2pk = :p, g2sk = :s",
                    "attribute_exists(pk)",
                    vec![
                        (":p", s(deferred_pk(entity))),
                        (":s", s(deferred_sk(at, entity))),
                    ],
                )?,
                None => Action::update_if(
                    &self.table,
                    item_key,
                    "REMOVE g2pk, g2sk",
                    "attribute_exists(pk)",
                    vec![],
                )?,
            };
            actions.push((Some(entity.clone()), action));
        }
        Ok(actions)
    }

    /// Brings the earliest deferred moment of entities sooner, as one
    /// notification's fan-out defers them (not `whole`): one conditional
    /// update each, before the plan's transactions (an earliest too soon
    /// only plans an entity again early), and outside them, where a
    /// condition that often fails would cancel every item with it.
    pub(super) async fn defer_sooner(&self, deferred: &[Deferral]) -> StoreResult<()> {
        use futures::stream::{self, StreamExt, TryStreamExt};
        // Owned: a closure over references trips async-trait's lifetimes.
        let sooner: Vec<(EntityKey, Time)> = (deferred.iter())
            .filter(|d| !d.whole)
            .filter_map(|d| Some((d.entity.clone(), d.earliest?)))
            .collect();
        stream::iter(sooner)
            .map(|(entity, at)| async move {
                let sent = (self.client.update_item())
                    .table_name(&self.table)
                    .set_key(Some(key(entity_pk(&entity), ENTITY_SK)))
                    .update_expression("SET g2pk = :p, g2sk = :s")
                    .condition_expression(
                        "attribute_exists(pk) AND (attribute_not_exists(g2sk) OR g2sk > :s)",
                    )
                    .expression_attribute_values(":p", s(deferred_pk(&entity)))
                    .expression_attribute_values(":s", s(deferred_sk(at, &entity)))
                    .send()
                    .await;
                condition_held(sent).map(drop)
            })
            .buffer_unordered(IN_FLIGHT)
            .try_collect::<Vec<()>>()
            .await
            .map(drop)
    }

    /// Entities whose earliest deferred moment fires by `until`, soonest first.
    pub(super) async fn load_deferred_entities(
        &self,
        until: Time,
        limit: usize,
    ) -> StoreResult<Vec<EntityKey>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let high = format!("{}#~", time_key(until));
        let queries = (0..DEFERRED_SHARDS)
            .map(|shard| {
                let mut query = Query::new(Some("due"), "g2pk = :pk AND g2sk <= :high")
                    .value(":pk", deferred_shard_pk(shard))
                    .value(":high", &high);
                query.limit = Some(limit);
                query
            })
            .collect();
        let mut found: Vec<(String, String)> = Vec::new();
        for items in self.query_many(queries).await? {
            for item in items {
                found.push((
                    text(&item, "g2sk")?.to_string(),
                    text(&item, "pk")?.to_string(),
                ));
            }
        }
        found.sort();
        found.truncate(limit);
        found.iter().map(|(_, pk)| entity_of(pk)).collect()
    }

    /// A customer's deferred moments due by `until` and after the cursor
    /// position `after` (fire time key, schedule id), in no order.
    pub(super) async fn deferred_of_customer(
        &self,
        customer_id: &str,
        until: Option<Time>,
        after: Option<(&str, &str)>,
    ) -> StoreResult<Vec<Schedule>> {
        let listed = self
            .query_all(
                Query::new(
                    Some("customer"),
                    "g3pk = :pk AND begins_with(g3sk, :prefix)",
                )
                .value(":pk", customer_pk(customer_id))
                .value(":prefix", CUSTOMER_ENTITY_PREFIX),
            )
            .await?;
        let keys = listed
            .iter()
            .map(|item| Ok(key(text(item, "pk")?, ENTITY_SK)))
            .collect::<StoreResult<Vec<Item>>>()?;
        let mut deferring: Vec<(EntityRecord, Time)> = Vec::new();
        for item in self.batch_get(keys).await? {
            if let Some(at) = deferred_at(&item) {
                deferring.push((record(&item)?, at));
            }
        }
        if deferring.is_empty() {
            return Ok(Vec::new());
        }
        let notifications = self.cached_notifications().await?;
        let stored = self
            .query_many(
                deferring
                    .iter()
                    .map(|(r, _)| Query::partition_prefix(entity_pk(&r.key()), "S#"))
                    .collect(),
            )
            .await?;
        let now = chrono::Utc::now();
        let mut found = Vec::new();
        for ((entity, from), items) in deferring.iter().zip(stored) {
            let ids: HashSet<String> = items
                .iter()
                .filter_map(|item| Some(text(item, "sk").ok()?.rsplit_once('#')?.1.to_string()))
                .collect();
            found.extend(
                deferred_moments(entity, &notifications, *from, &ids, now)
                    .into_iter()
                    .filter(|s| until.is_none_or(|until| s.fire_at <= until))
                    .filter(|s| {
                        after.is_none_or(|(time, id)| {
                            let at = time_key(s.fire_at);
                            at.as_str() > time || (at == time && s.id.as_str() > id)
                        })
                    }),
            );
        }
        Ok(found)
    }
}
