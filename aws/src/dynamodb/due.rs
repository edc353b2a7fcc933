//! The `due` index and the ticks that read it.
//!
//! Every pending schedule and delivery is in the sparse `due` index under
//! `DUE#<hour>#<shard>` / `<due time>#<timer id>`. A tick is the work of one
//! minute: when it runs, it reads that minute's timers from the index, shard
//! by shard, and hands them on (the `deliver` function puts them on the timer
//! queue). Its item `TICK#<minute>` makes each tick run once per generation:
//! a duplicate invocation finds the generation taken and does nothing, and
//! each shard's cursor (`TICK#<minute>#<shard>`) is saved conditionally, so
//! a retried page cannot fork a second chain over the rest of the shard.

use super::keys::{shard_of, time_key};
use super::reads::Query;
use super::{key, n, s, text, unavailable, DynamoStore, Item};
use chrono::{Duration, DurationRound};
use lifecycle_core::ports::StoreResult;
use lifecycle_core::time::{parse_time, Time};
use std::collections::BTreeSet;

/// Shards of each hour of the due index. At a month boundary every moment
/// writes its hour's index three times within the minute it fires (the
/// schedule leaves, its delivery comes in leased, then leaves), and a
/// partition key takes 1,000 writes a second: 256 keys take 2,000,000
/// moments in about 23 s.
pub const DUE_SHARDS: u16 = 256;

/// A timer the index holds: its id (`sch_...` or `dlv_...`), due time and
/// the base key of its item (the index is keys-only, so its entries carry
/// the table's keys: the deliverer reads the item without a lookup).
#[derive(Clone, Debug, PartialEq)]
pub struct Due {
    pub timer: String,
    pub at: Time,
    pub key: Option<(String, String)>,
}

/// A page of one shard; `next` continues it.
#[derive(Debug, Default)]
pub struct DuePage {
    pub timers: Vec<Due>,
    pub next: Option<String>,
}

fn hour(at: Time) -> Time {
    at.duration_trunc(Duration::hours(1))
        .expect("an hour divides any time")
}

/// The minute a time falls in.
pub fn minute_of(at: Time) -> Time {
    at.duration_trunc(Duration::minutes(1))
        .expect("a minute divides any time")
}

fn bucket(at: Time, shard: u16) -> String {
    format!("DUE#{}#{shard:02x}", at.format("%Y-%m-%dT%H"))
}

/// The due-index partition of a timer due at `at`.
pub(crate) fn due_pk(at: Time, id: &str) -> String {
    bucket(at, shard_of(id, DUE_SHARDS))
}

fn parse_sort(sort: &str) -> Option<Due> {
    let (at, timer) = sort.split_once('#')?;
    Some(Due {
        timer: timer.to_string(),
        at: parse_time(at)?,
        key: None,
    })
}

fn tick_key(minute: Time) -> Item {
    key(format!("TICK#{}", time_key(minute)), "T")
}

/// The item of one shard's cursor in a minute's tick.
fn cursor_key(minute: Time, shard: u16) -> Item {
    key(format!("TICK#{}#{shard:02x}", time_key(minute)), "C")
}

impl DynamoStore {
    /// Up to `limit` timers of one shard due in [from, to), after `cursor`
    /// (a `next` of an earlier page).
    pub async fn due_page(
        &self,
        shard: u16,
        from: Time,
        to: Time,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<DuePage> {
        let after = cursor.and_then(parse_sort);
        let mut start = after.as_ref().map_or(from, |d| d.at.max(from));
        let mut page = DuePage::default();
        while start < to && page.timers.len() < limit {
            let end = (hour(start) + Duration::hours(1)).min(to);
            let low = match (&after, cursor) {
                (Some(d), Some(c)) if hour(d.at) == hour(start) => c.to_string(),
                _ => time_key(start),
            };
            // Ids follow the time after `#` and sort below `~`: the high
            // bound takes every id due at `end - 1 ms`.
            let high = format!("{}#~", time_key(end - Duration::milliseconds(1)));
            let mut query = Query::new(Some("due"), "g2pk = :pk AND g2sk BETWEEN :low AND :high")
                .value(":pk", bucket(start, shard))
                .value(":low", &low)
                .value(":high", high);
            // One more than needed: the cursor's own entry comes back first.
            query.limit = Some(limit - page.timers.len() + 1);
            for item in self.query_all(query).await? {
                let sort = text(&item, "g2sk")?;
                if Some(sort) == cursor {
                    continue;
                }
                if let Some(mut due) = parse_sort(sort).filter(|d| d.at < to) {
                    if let (Ok(pk), Ok(sk)) = (text(&item, "pk"), text(&item, "sk")) {
                        due.key = Some((pk.to_string(), sk.to_string()));
                    }
                    page.timers.push(due);
                }
            }
            start = end;
        }
        page.timers.truncate(limit);
        if page.timers.len() == limit {
            page.next = page
                .timers
                .last()
                .map(|d| format!("{}#{}", time_key(d.at), d.timer));
        }
        Ok(page)
    }

    /// The minutes in [from, to) that have a due timer: per shard one
    /// query per such minute and hour (`Limit 1`), whatever the number of
    /// timers in them, so finding a boundary of millions costs as much as
    /// finding one timer.
    pub async fn due_minutes(&self, from: Time, to: Time) -> StoreResult<BTreeSet<Time>> {
        use futures::stream::{self, StreamExt, TryStreamExt};
        let per_shard: Vec<Vec<Time>> = stream::iter(0..DUE_SHARDS)
            .map(|shard| self.shard_minutes(shard, from, to))
            .buffer_unordered(16)
            .try_collect()
            .await?;
        Ok(per_shard.into_iter().flatten().collect())
    }

    async fn shard_minutes(&self, shard: u16, from: Time, to: Time) -> StoreResult<Vec<Time>> {
        let mut found = Vec::new();
        let mut start = from;
        while start < to {
            let page = self.due_page(shard, start, to, None, 1).await?;
            let Some(first) = page.timers.first() else {
                break;
            };
            let minute = minute_of(first.at);
            found.push(minute);
            start = minute + Duration::minutes(1);
        }
        Ok(found)
    }

    /// Takes generation `gen` of a minute's tick: true for the first taker
    /// of a generation above every earlier one, false for a duplicate.
    pub async fn take_tick(&self, minute: Time, gen: u32) -> StoreResult<bool> {
        let taken = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(tick_key(minute)))
            // `TTL` is a reserved word of expressions.
            .update_expression("SET gen = :gen, t = :t, #ttl = :ttl")
            .expression_attribute_names("#ttl", "ttl")
            .condition_expression("attribute_not_exists(gen) OR gen < :gen")
            .expression_attribute_values(":gen", n(gen))
            .expression_attribute_values(":t", s("TCK"))
            .expression_attribute_values(":ttl", n((minute + Duration::days(3)).timestamp()))
            .send()
            .await;
        conditional(taken.map(drop))
    }

    /// The generation a minute's tick has run at, if any.
    pub async fn tick_generation(&self, minute: Time) -> StoreResult<Option<u32>> {
        let item = self.get(format!("TICK#{}", time_key(minute)), "T").await?;
        Ok(item.and_then(|item| super::number(&item, "gen")))
    }

    /// Moves a shard's cursor of tick generation `gen` from `from` to `to`
    /// (None: the shard is done): false if another step already moved it.
    /// Each shard's cursor is an item of its own: a boundary of millions
    /// moves thousands of cursors, which on one item would be one
    /// partition's 1,000 writes a second, each billed at the whole item's size.
    pub async fn advance_tick(
        &self,
        minute: Time,
        gen: u32,
        shard: u16,
        from: Option<&str>,
        to: Option<&str>,
    ) -> StoreResult<bool> {
        // A cursor per generation: a re-woken tick starts every shard afresh.
        let field = format!("c{gen}");
        let (update, mut values) = match to {
            Some(to) => (format!("SET {field} = :to"), vec![(":to", s(to))]),
            None => (format!("SET {field} = :done"), vec![(":done", s("~"))]),
        };
        let condition = match from {
            Some(from) => {
                values.push((":from", s(from)));
                format!("{field} = :from")
            }
            None => format!("attribute_not_exists({field})"),
        };
        values.push((":t", s("TCC")));
        values.push((":ttl", n((minute + Duration::days(3)).timestamp())));
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(cursor_key(minute, shard)))
            .update_expression(format!("{update}, t = :t, #ttl = :ttl"))
            .expression_attribute_names("#ttl", "ttl")
            .condition_expression(condition);
        for (name, value) in values {
            request = request.expression_attribute_values(name, value);
        }
        conditional(request.send().await.map(drop))
    }
}

/// A conditional write: Ok(false) when its condition failed.
fn conditional<E>(result: Result<(), aws_sdk_dynamodb::error::SdkError<E>>) -> StoreResult<bool>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::fmt::Debug,
{
    match result {
        Ok(()) => Ok(true),
        Err(e)
            if e.as_service_error().and_then(|e| e.code())
                == Some("ConditionalCheckFailedException") =>
        {
            Ok(false)
        }
        Err(e) => Err(unavailable(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_sort_keys() {
        let at = parse_time("2027-01-01T00:00:00Z").unwrap();
        let pk = due_pk(at, "sch_1");
        assert!(pk.starts_with("DUE#2027-01-01T00#"), "{pk}");
        assert_eq!(pk.len(), "DUE#2027-01-01T00#".len() + 2);
        let due = parse_sort("2027-01-01T00:00:00.000Z#sch_1").unwrap();
        assert_eq!(due.at, at);
        assert_eq!(due.timer, "sch_1");
        assert_eq!(minute_of(at + Duration::seconds(59)), at);
    }
}
