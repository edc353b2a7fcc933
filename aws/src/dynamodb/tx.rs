//! Requests shared by the item modules: transactions whose "insert if
//! absent" items may be dropped (INSERT OR IGNORE, which a transaction cannot
//! express), batched reads and paged queries.

use super::{key, s, unavailable, DynamoStore, Item};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, KeysAndAttributes, Put, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use lifecycle_core::ports::{StoreError, StoreResult};
use std::collections::HashMap;

/// The most actions one `TransactWriteItems` takes.
pub(crate) const MAX_ACTIONS: usize = 100;

/// What a failed condition of an action means.
#[derive(Clone, Debug)]
pub(crate) enum OnFail {
    /// The whole write is refused with `Conflict(reason)`.
    Conflict(String),
    /// The item is already there: write the rest without it.
    Ignore,
}

#[derive(Clone, Debug)]
pub(crate) struct Action {
    pub item: TransactWriteItem,
    pub on_fail: OnFail,
    /// (pk, sk) of the item it writes or checks.
    target: (String, String),
    /// A put only if absent: of two actions on one item, the first one counts.
    insert_once: bool,
}

fn target_of(key: &Item) -> (String, String) {
    let part = |name: &str| match key.get(name) {
        Some(AttributeValue::S(text)) => text.clone(),
        _ => String::new(),
    };
    (part("pk"), part("sk"))
}

/// One action per item, as a transaction requires: for upserts the last
/// one wins (as sequential SQL statements would leave it), for insert-once
/// items the first.
fn one_per_item(actions: Vec<Action>) -> Vec<Action> {
    let mut kept: Vec<Action> = Vec::with_capacity(actions.len());
    let mut at: HashMap<(String, String), usize> = HashMap::new();
    for action in actions {
        match at.get(&action.target) {
            Some(_) if action.insert_once => {}
            Some(&i) => kept[i] = action,
            None => {
                at.insert(action.target.clone(), kept.len());
                kept.push(action);
            }
        }
    }
    kept
}

impl Action {
    /// An unconditional put (upsert).
    pub fn put(table: &str, item: Item) -> StoreResult<Self> {
        Self::put_if(table, item, None, vec![], OnFail::Ignore)
    }

    /// A put of an item that is written at most once.
    pub fn insert(table: &str, item: Item, on_fail: OnFail) -> StoreResult<Self> {
        Self::put_if(
            table,
            item,
            Some("attribute_not_exists(pk)"),
            vec![],
            on_fail,
        )
    }

    pub fn put_if(
        table: &str,
        item: Item,
        condition: Option<&str>,
        values: Vec<(&str, AttributeValue)>,
        on_fail: OnFail,
    ) -> StoreResult<Self> {
        let target = target_of(&item);
        let insert_once = condition == Some("attribute_not_exists(pk)");
        let put = Put::builder()
            .table_name(table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_string))
            .set_expression_attribute_values(values_of(values))
            .build()
            .map_err(unavailable)?;
        Ok(Action {
            item: TransactWriteItem::builder().put(put).build(),
            on_fail,
            target,
            insert_once,
        })
    }

    pub fn delete(table: &str, key: Item) -> StoreResult<Self> {
        let target = target_of(&key);
        let delete = Delete::builder()
            .table_name(table)
            .set_key(Some(key))
            .build()
            .map_err(unavailable)?;
        Ok(Action {
            item: TransactWriteItem::builder().delete(delete).build(),
            on_fail: OnFail::Ignore,
            target,
            insert_once: false,
        })
    }

    pub fn update(
        table: &str,
        key: Item,
        expression: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> StoreResult<Self> {
        let target = target_of(&key);
        let update = Update::builder()
            .table_name(table)
            .set_key(Some(key))
            .update_expression(expression)
            .set_expression_attribute_values(values_of(values))
            .build()
            .map_err(unavailable)?;
        Ok(Action {
            item: TransactWriteItem::builder().update(update).build(),
            on_fail: OnFail::Ignore,
            target,
            insert_once: false,
        })
    }

    pub fn check(
        table: &str,
        key: Item,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
        reason: String,
    ) -> StoreResult<Self> {
        let target = target_of(&key);
        let check = ConditionCheck::builder()
            .table_name(table)
            .set_key(Some(key))
            .condition_expression(condition)
            .set_expression_attribute_values(values_of(values))
            .build()
            .map_err(unavailable)?;
        Ok(Action {
            item: TransactWriteItem::builder().condition_check(check).build(),
            on_fail: OnFail::Conflict(reason),
            target,
            insert_once: false,
        })
    }

    /// The configuration version bump that goes with every notification or endpoint write.
    pub fn bump_config(table: &str) -> StoreResult<Self> {
        Self::update(
            table,
            key("CFG", "V"),
            "ADD v :one SET t = :t",
            vec![(":one", super::n(1)), (":t", s("CFG"))],
        )
    }
}

fn values_of(values: Vec<(&str, AttributeValue)>) -> Option<HashMap<String, AttributeValue>> {
    (!values.is_empty()).then(|| {
        values
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    })
}

/// What a cancelled transaction said, per action.
enum Outcome {
    Done,
    /// Indexes of actions whose condition failed.
    Failed(Vec<usize>),
    /// Cancelled for another reason (a concurrent transaction on the same items).
    Busy,
}

impl DynamoStore {
    async fn try_transact(&self, actions: &[Action]) -> StoreResult<Outcome> {
        if actions.is_empty() {
            return Ok(Outcome::Done);
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(actions.iter().map(|a| a.item.clone()).collect()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Outcome::Done),
            Err(SdkError::ServiceError(e)) => match e.into_err() {
                TransactWriteItemsError::TransactionCanceledException(cancelled) => {
                    let reasons = cancelled.cancellation_reasons();
                    let failed: Vec<usize> = reasons
                        .iter()
                        .enumerate()
                        .filter(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
                        .map(|(i, _)| i)
                        .collect();
                    if !failed.is_empty() {
                        return Ok(Outcome::Failed(failed));
                    }
                    // Worth another try: a concurrent transaction on the same
                    // items, or throttling. Anything else (a validation error) is not.
                    let transient = [
                        "None",
                        "TransactionConflict",
                        "ThrottlingError",
                        "ProvisionedThroughputExceeded",
                    ];
                    let codes: Vec<&str> = reasons.iter().filter_map(|r| r.code()).collect();
                    if codes.iter().all(|c| transient.contains(c)) {
                        Ok(Outcome::Busy)
                    } else {
                        Err(StoreError::Unavailable(format!(
                            "transaction cancelled: {codes:?} {:?}",
                            cancelled.message()
                        )))
                    }
                }
                other => Err(unavailable(other)),
            },
            Err(other) => Err(unavailable(other)),
        }
    }

    /// Runs the actions as one transaction. A failed condition of a
    /// `Conflict` action refuses the whole with `Conflict`; failed `Ignore`
    /// actions are dropped and the rest is tried again.
    pub(crate) async fn transact(&self, actions: Vec<Action>) -> StoreResult<()> {
        let mut actions = one_per_item(actions);
        let mut busy = 0;
        loop {
            match self.try_transact(&actions).await? {
                Outcome::Done => return Ok(()),
                Outcome::Busy => {
                    busy += 1;
                    if busy > 5 {
                        // Not a failed condition: report it as the store being
                        // busy, so that a fire is not taken for stale.
                        return Err(StoreError::Unavailable(
                            "concurrent transactions kept cancelling this one".into(),
                        ));
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20 * busy)).await;
                }
                Outcome::Failed(failed) => {
                    for &i in &failed {
                        if let Some(OnFail::Conflict(reason)) = actions.get(i).map(|a| &a.on_fail) {
                            return Err(StoreError::Conflict(reason.clone()));
                        }
                    }
                    let mut index = 0;
                    actions.retain(|_| {
                        index += 1;
                        !failed.contains(&(index - 1))
                    });
                }
            }
        }
    }

    /// Runs the actions in transactions of at most 100, in order: only for
    /// writes whose parts stand on their own (upserts, inserts at most once).
    pub(crate) async fn transact_chunks(&self, actions: Vec<Action>) -> StoreResult<()> {
        let mut actions = one_per_item(actions).into_iter().peekable();
        while actions.peek().is_some() {
            let chunk: Vec<Action> = actions.by_ref().take(MAX_ACTIONS).collect();
            self.transact(chunk).await?;
        }
        Ok(())
    }

    /// Strongly consistent reads of these keys; the items found, in no order.
    pub(crate) async fn batch_get(&self, keys: Vec<Item>) -> StoreResult<Vec<Item>> {
        let mut found = Vec::with_capacity(keys.len());
        let mut unique = Vec::with_capacity(keys.len());
        for k in keys {
            if !unique.contains(&k) {
                unique.push(k);
            }
        }
        for chunk in unique.chunks(100) {
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.to_vec()))
                    .consistent_read(true)
                    .build()
                    .map_err(unavailable)?,
            );
            let mut rounds = 0;
            while let Some(request) = pending.take() {
                let answer = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(unavailable)?;
                if let Some(items) = answer.responses.and_then(|mut r| r.remove(&self.table)) {
                    found.extend(items);
                }
                pending = answer
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .filter(|k| !k.keys.is_empty());
                rounds += 1;
                if pending.is_some() {
                    tokio::time::sleep(std::time::Duration::from_millis(10 * rounds)).await;
                }
            }
        }
        Ok(found)
    }

    pub(crate) async fn get(&self, pk: String, sk: &str) -> StoreResult<Option<Item>> {
        Ok(self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?
            .item)
    }

    /// Every item of a query (all pages). `index` None: the table, read consistently.
    pub(crate) async fn query_all(&self, query: Query<'_>) -> StoreResult<Vec<Item>> {
        query_all(&self.client, &self.table, &query).await
    }

    /// Several queries at once (at most 16 in flight); the answers in order.
    pub(crate) async fn query_many(
        &self,
        queries: Vec<Query<'static>>,
    ) -> StoreResult<Vec<Vec<Item>>> {
        let mut answers: Vec<Vec<Item>> = vec![Vec::new(); queries.len()];
        let mut pending = queries.into_iter().enumerate();
        let mut running = tokio::task::JoinSet::new();
        loop {
            while running.len() < 16 {
                let Some((i, query)) = pending.next() else {
                    break;
                };
                let (client, table) = (self.client.clone(), self.table.clone());
                running.spawn(async move { (i, query_all(&client, &table, &query).await) });
            }
            match running.join_next().await {
                Some(done) => {
                    let (i, items) = done.map_err(unavailable)?;
                    answers[i] = items?;
                }
                None => return Ok(answers),
            }
        }
    }
}

async fn query_all(client: &Client, table: &str, query: &Query<'_>) -> StoreResult<Vec<Item>> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let (page, next) = query_page(client, table, query, start).await?;
        items.extend(page);
        match next {
            Some(next) if query.limit.is_none_or(|l| items.len() < l) => start = Some(next),
            _ => return Ok(items),
        }
    }
}

async fn query_page(
    client: &Client,
    table: &str,
    query: &Query<'_>,
    start: Option<Item>,
) -> StoreResult<(Vec<Item>, Option<Item>)> {
    let mut values = HashMap::new();
    for (name, value) in &query.values {
        values.insert(name.to_string(), s(value.clone()));
    }
    let answer = client
        .query()
        .table_name(table)
        .set_index_name(query.index.map(str::to_string))
        .consistent_read(query.index.is_none())
        .key_condition_expression(&query.condition)
        .set_filter_expression(query.filter.clone())
        .set_expression_attribute_values(Some(values))
        .scan_index_forward(!query.descending)
        .set_limit(query.limit.map(|l| l.min(1000) as i32))
        .set_exclusive_start_key(start)
        .send()
        .await
        .map_err(unavailable)?;
    Ok((answer.items.unwrap_or_default(), answer.last_evaluated_key))
}

/// A query: a key condition with text values, an optional filter.
#[derive(Clone, Debug)]
pub(crate) struct Query<'a> {
    pub index: Option<&'a str>,
    pub condition: String,
    pub filter: Option<String>,
    pub values: Vec<(String, String)>,
    pub descending: bool,
    /// Stop reading pages once this many items are in (a page may bring more).
    pub limit: Option<usize>,
}

impl<'a> Query<'a> {
    pub fn new(index: Option<&'a str>, condition: impl Into<String>) -> Self {
        Query {
            index,
            condition: condition.into(),
            filter: None,
            values: Vec::new(),
            descending: false,
            limit: None,
        }
    }

    pub fn value(mut self, name: &str, value: impl Into<String>) -> Self {
        self.values.push((name.to_string(), value.into()));
        self
    }

    /// The items of one partition of the table.
    pub fn partition(pk: impl Into<String>) -> Self {
        Query::new(None, "pk = :pk").value(":pk", pk)
    }

    pub fn partition_prefix(pk: impl Into<String>, prefix: impl Into<String>) -> Self {
        Query::new(None, "pk = :pk AND begins_with(sk, :prefix)")
            .value(":pk", pk)
            .value(":prefix", prefix)
    }
}
