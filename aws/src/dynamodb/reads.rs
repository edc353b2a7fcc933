//! Reads: batched consistent gets and paged queries, several side by side.

use super::{key, s, unavailable, DynamoStore, Item};
use aws_sdk_dynamodb::types::KeysAndAttributes;
use aws_sdk_dynamodb::Client;
use lifecycle_core::ports::StoreResult;
use std::collections::HashMap;

impl DynamoStore {
    /// Strongly consistent reads of these keys; the items found, in no order.
    pub(crate) async fn batch_get(&self, keys: Vec<Item>) -> StoreResult<Vec<Item>> {
        let mut found = Vec::with_capacity(keys.len());
        // A set of the keys' text: `Vec::contains` made large reads quadratic.
        let mut seen = std::collections::HashSet::with_capacity(keys.len());
        let unique: Vec<Item> = keys
            .into_iter()
            .filter(|k| seen.insert(key_text(k)))
            .collect();
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

/// The base key of an item as text (`pk` and `sk` cannot hold a NUL).
pub(super) fn key_text(item: &Item) -> String {
    let part = |name: &str| match item.get(name) {
        Some(aws_sdk_dynamodb::types::AttributeValue::S(text)) => text.as_str(),
        _ => "",
    };
    format!("{}\0{}", part("pk"), part("sk"))
}
