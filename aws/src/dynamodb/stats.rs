//! The per-minute figures of `GET /v1/stats`: each flush (one per Lambda
//! invocation that counted something) adds its counts to an item of its
//! minute with `ADD`, which needs no read and no condition. A minute has
//! `STATS_SHARDS` items, one picked by each flush's own id, so a boundary's
//! thousands of invocations do not queue on one item; a day's items share
//! a partition, read in one query.

use super::keys::{shard_of, time_key};
use super::reads::Query;
use super::{key, n, s, unavailable, DynamoStore, Item};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Duration;
use lifecycle_core::ports::StoreResult;
use lifecycle_core::stats::{minute_of, MinuteStats, KEPT_DAYS};
use lifecycle_core::time::{parse_time, Time};
use std::collections::BTreeMap;

/// Items per minute: one update on one item at a time (about 1,000 a
/// second per item at most); 16 take a boundary's flushes.
const STATS_SHARDS: u16 = 16;

fn day_pk(minute: Time) -> String {
    format!("STATS#{}", &time_key(minute)[..10])
}

/// `<minute>#<shard>`: the minute sorts as text.
fn minute_sk(minute: Time, shard: u16) -> String {
    format!("{}#{shard:02}", time_key(minute))
}

impl DynamoStore {
    pub(super) async fn add_minute_stats(&self, figures: &[MinuteStats]) -> StoreResult<()> {
        let flush = lifecycle_core::ids::random_id("flush");
        let shard = shard_of(&flush, STATS_SHARDS);
        for figure in figures {
            let mut adds = vec!["f :f".to_string(), "d :d".into(), "x :x".into()];
            let mut request = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(
                    day_pk(figure.minute),
                    minute_sk(figure.minute, shard),
                )))
                .expression_attribute_values(":f", n(figure.fired))
                .expression_attribute_values(":d", n(figure.delivered))
                .expression_attribute_values(":x", n(figure.failed))
                .expression_attribute_values(":t", s("STA"))
                .expression_attribute_values(":m", s(time_key(figure.minute)))
                .expression_attribute_values(
                    ":ttl",
                    n((figure.minute + Duration::days(KEPT_DAYS)).timestamp()),
                )
                // `TTL` is a reserved word of expressions.
                .expression_attribute_names("#ttl", "ttl");
            for (bucket, count) in &figure.lag.0 {
                adds.push(format!("b{bucket} :b{bucket}"));
                request = request.expression_attribute_values(format!(":b{bucket}"), n(count));
            }
            request
                .update_expression(format!(
                    "ADD {} SET t = :t, m = :m, #ttl = :ttl",
                    adds.join(", ")
                ))
                .send()
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    pub(super) async fn load_stats(
        &self,
        since: Time,
        until: Time,
    ) -> StoreResult<Vec<MinuteStats>> {
        let mut day = minute_of(since).date_naive();
        let mut figures: BTreeMap<Time, MinuteStats> = BTreeMap::new();
        while day <= until.date_naive() {
            let pk = format!("STATS#{day}");
            let query = Query::new(None, "pk = :pk AND sk BETWEEN :from AND :to")
                .value(":pk", pk)
                .value(":from", time_key(minute_of(since)))
                .value(":to", time_key(until));
            for item in self.query_all(query).await? {
                let figure = from_item(&item)?;
                if figure.minute < until {
                    lifecycle_core::stats::add_into(&mut figures, &figure);
                }
            }
            day = day.succ_opt().expect("a day after");
        }
        Ok(figures.into_values().collect())
    }
}

fn from_item(item: &Item) -> StoreResult<MinuteStats> {
    let number = |value: &AttributeValue| match value {
        AttributeValue::N(text) => text.parse::<u64>().unwrap_or(0),
        _ => 0,
    };
    let minute = parse_time(super::text(item, "m")?)
        .ok_or_else(|| unavailable("a stats item with an unreadable minute"))?;
    let mut figure = MinuteStats::empty(minute);
    for (name, value) in item {
        match name.as_str() {
            "f" => figure.fired = number(value),
            "d" => figure.delivered = number(value),
            "x" => figure.failed = number(value),
            bucket => {
                if let Some(index) = bucket.strip_prefix('b').and_then(|b| b.parse().ok()) {
                    figure.lag.0.insert(index, number(value));
                }
            }
        }
    }
    Ok(figure)
}
