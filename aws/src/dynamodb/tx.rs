//! Transactions: one action per item, insert-once items that may be dropped
//! (INSERT OR IGNORE, which a transaction cannot express), chunks of 100
//! where the semantics allow.

use super::{key, s, unavailable, DynamoStore, Item};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem, Update,
};
use lifecycle_core::ports::{StoreError, StoreResult};
use std::collections::HashMap;

/// The most actions one `TransactWriteItems` takes.
pub(crate) const MAX_ACTIONS: usize = 100;

/// Transactions of one write in flight at once (`transact_side_by_side`).
const TRANSACTIONS_IN_FLIGHT: usize = 16;

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
        Self::update_when(table, key, expression, None, values)
    }

    /// An update made only if `condition` holds on the stored item; dropped otherwise.
    pub fn update_if(
        table: &str,
        key: Item,
        expression: &str,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> StoreResult<Self> {
        Self::update_when(table, key, expression, Some(condition), values)
    }

    fn update_when(
        table: &str,
        key: Item,
        expression: &str,
        condition: Option<&str>,
        values: Vec<(&str, AttributeValue)>,
    ) -> StoreResult<Self> {
        let target = target_of(&key);
        let update = Update::builder()
            .table_name(table)
            .set_key(Some(key))
            .update_expression(expression)
            .set_condition_expression(condition.map(str::to_string))
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
        for chunk in chunks(actions) {
            self.transact(chunk).await?;
        }
        Ok(())
    }

    /// Runs transactions that stand on their own side by side, a few at a
    /// time, and answers the first failure once all have ended: a full ingest batch of 500 makes hundreds, which one after
    /// another would not finish inside API Gateway's 29 s. Two that meet
    /// on an item cancel each other (`TransactionConflict`) and are tried
    /// again (`transact`).
    pub(crate) async fn transact_side_by_side(
        &self,
        transactions: Vec<Vec<Action>>,
    ) -> StoreResult<()> {
        use futures::stream::{self, StreamExt};
        // Every one runs to its end, even after another failed: one dropped
        // in flight could still commit after the write was answered (and
        // after a retry of it had read the table).
        let outcomes: Vec<StoreResult<()>> = stream::iter(transactions)
            .map(|actions| self.transact(actions))
            .buffer_unordered(TRANSACTIONS_IN_FLIGHT)
            .collect()
            .await;
        outcomes.into_iter().collect()
    }
}

/// Transactions of at most 100 actions, one per item.
pub(crate) fn chunks(actions: Vec<Action>) -> Vec<Vec<Action>> {
    let actions = one_per_item(actions);
    actions
        .chunks(MAX_ACTIONS)
        .map(<[Action]>::to_vec)
        .collect()
}
