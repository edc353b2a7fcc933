//! Deliveries, their messages and their attempts.

use super::keys::{
    attempt_item, customer_pk, delivery_item, delivery_order, delivery_pk, endpoint_pk,
    message_item, message_pk, time_key, timeline_day, timeline_pk, DELIVERY_SK, ENDPOINT_SHARDS,
    TIMELINE_SHARDS,
};
use super::reads::Query;
use super::tx::{Action, OnFail};
use super::{key, record, s, text, unavailable, DynamoStore, Item};
use lifecycle_core::ports::{
    AttemptCommit, DeliveryFilter, Message, Page, StoreError, StoreResult,
};
use lifecycle_core::schedule::{Attempt, Delivery, DeliveryStatus};
use lifecycle_core::time::{parse_time, Time};

/// The item recording the first and last day buckets of the timeline index.
const DAYS_PK: &str = "TL";
const DAYS_SK: &str = "DAYS";

impl DynamoStore {
    /// Makes sure the timeline's recorded day range covers these deliveries'
    /// days, before they are written (a range too wide only costs empty reads).
    pub(super) async fn note_timeline<'a>(
        &self,
        deliveries: impl Iterator<Item = &'a Delivery>,
    ) -> StoreResult<()> {
        let days: Vec<String> = deliveries.map(|d| timeline_day(d.created_at)).collect();
        let (Some(first), Some(last)) = (days.iter().min(), days.iter().max()) else {
            return Ok(());
        };
        let known = self.timeline_days.lock().unwrap().clone();
        if known
            .as_ref()
            .is_some_and(|(lo, hi)| lo <= first && hi >= last)
        {
            return Ok(());
        }
        for (attribute, day, test) in [("lo", first, ">"), ("hi", last, "<")] {
            let update = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(DAYS_PK, DAYS_SK)))
                .update_expression(format!("SET {attribute} = :d, t = :t"))
                .condition_expression(format!(
                    "attribute_not_exists({attribute}) OR {attribute} {test} :d"
                ))
                .expression_attribute_values(":d", s(day))
                .expression_attribute_values(":t", s("TLD"))
                .send()
                .await;
            match update {
                Ok(_) => {}
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                Err(e) => return Err(unavailable(e)),
            }
        }
        self.refresh_timeline_days().await.map(drop)
    }

    async fn refresh_timeline_days(&self) -> StoreResult<Option<(String, String)>> {
        // One bound may be missing if a process died between the two updates.
        let days = self.get(DAYS_PK.into(), DAYS_SK).await?.and_then(|item| {
            let (lo, hi) = (text(&item, "lo").ok(), text(&item, "hi").ok());
            match (lo.or(hi), hi.or(lo)) {
                (Some(lo), Some(hi)) => Some((lo.to_string(), hi.to_string())),
                _ => None,
            }
        });
        *self.timeline_days.lock().unwrap() = days.clone();
        Ok(days)
    }

    pub(super) async fn load_delivery(
        &self,
        id: &str,
    ) -> StoreResult<Option<(Delivery, Vec<Attempt>)>> {
        let items = self.query_all(Query::partition(delivery_pk(id))).await?;
        delivery_of(&items)
    }

    pub(super) async fn delivery_page(
        &self,
        filter: &DeliveryFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<(Delivery, Vec<Attempt>)>> {
        if let Some(cursor) = cursor {
            let valid = cursor
                .split_once('#')
                .is_some_and(|(time, id)| parse_time(time).is_some() && !id.is_empty());
            if !valid {
                return Err(StoreError::InvalidCursor);
            }
        }
        let want = limit + 1;
        // Sort-key bounds (inclusive) within a partition whose keys are `<created>#<id>`.
        // "!" sorts before any time; key values cannot be empty.
        let low = filter.since.map_or("!".to_string(), time_key);
        let mut high = filter
            .until
            .map_or("~".to_string(), |u| format!("{}#~", time_key(u)));
        if let Some(cursor) = cursor {
            high = high.min(cursor.to_string());
        }
        let mut orders: Vec<String> = Vec::new();
        if low <= high {
            let mut filters = Vec::new();
            let mut values = Vec::new();
            if let Some(status) = filter.status {
                filters.push("st = :st");
                values.push((":st", status.as_str().to_string()));
            }
            if let Some(event_type) = filter.event_type {
                filters.push("et = :et");
                values.push((":et", event_type.as_str().to_string()));
            }
            if let Some(endpoint) = &filter.endpoint_id {
                filters.push("ep = :ep");
                values.push((":ep", endpoint.clone()));
            }
            let by_endpoint = match (&filter.endpoint_id, filter.status) {
                (Some(ep), Some(st @ (DeliveryStatus::Pending | DeliveryStatus::Failed)))
                    if filter.customer_id.is_none() =>
                {
                    Some((ep.clone(), st.as_str()))
                }
                _ => None,
            };
            let build =
                |index: &'static str, pk_name: &str, sk_name: &str, pk: String, prefix: &str| {
                    let condition = format!("{pk_name} = :pk AND {sk_name} BETWEEN :low AND :high");
                    let mut query = Query::new(Some(index), condition)
                        .value(":pk", pk)
                        .value(":low", format!("{prefix}{low}"))
                        .value(":high", format!("{prefix}{high}"));
                    // The endpoint index holds one endpoint and status per partition
                    // and projects neither: only the event type is left to filter.
                    let keep = |f: &&str| index != "endpoint" || f.starts_with("et");
                    let used: Vec<&str> = filters.iter().copied().filter(keep).collect();
                    for (name, value) in &values {
                        if used.iter().any(|f| f.ends_with(name)) {
                            query = query.value(name, value.clone());
                        }
                    }
                    query.filter = (!used.is_empty()).then(|| used.join(" AND "));
                    query.descending = true;
                    query.limit = Some(want + 1);
                    query
                };
            if let Some(customer) = &filter.customer_id {
                let query = build("customer", "g3pk", "g3sk", customer_pk(customer), "D#");
                for item in self.query_all(query).await? {
                    orders.push(text(&item, "g3sk")?.trim_start_matches("D#").to_string());
                }
            } else if let Some((endpoint, status)) = by_endpoint {
                let queries = (0..ENDPOINT_SHARDS)
                    .map(|shard| {
                        let pk = endpoint_pk(&endpoint, status, shard);
                        build("endpoint", "g5pk", "g5sk", pk, "")
                    })
                    .collect();
                for items in self.query_many(queries).await? {
                    for item in &items {
                        orders.push(text(item, "g5sk")?.to_string());
                    }
                }
            } else if let Some((first, last)) = self.refresh_timeline_days().await? {
                // Day buckets, newest first, each read on all its shards.
                let top = filter
                    .until
                    .map_or(last.clone(), |u| timeline_day(u).min(last));
                let top = match cursor {
                    Some(c) => top.min(c.get(..10).unwrap_or_default().to_string()),
                    None => top,
                };
                let bottom = filter
                    .since
                    .map_or(first.clone(), |s| timeline_day(s).max(first));
                let mut day =
                    chrono::NaiveDate::parse_from_str(&top, "%Y-%m-%d").map_err(unavailable)?;
                while orders.len() < want && day.format("%Y-%m-%d").to_string() >= bottom {
                    let name = day.format("%Y-%m-%d").to_string();
                    let queries = (0..TIMELINE_SHARDS)
                        .map(|shard| {
                            build("timeline", "g4pk", "g4sk", timeline_pk(&name, shard), "")
                        })
                        .collect();
                    let mut found = Vec::new();
                    for items in self.query_many(queries).await? {
                        for item in &items {
                            found.push(text(item, "g4sk")?.to_string());
                        }
                    }
                    // The cursor's own row must not count towards the page.
                    found.retain(|o| Some(o.as_str()) != cursor);
                    found.sort_unstable_by(|a, b| b.cmp(a));
                    orders.extend(found);
                    day = day
                        .pred_opt()
                        .ok_or_else(|| unavailable("day before year 0"))?;
                }
            }
        }
        orders.retain(|o| Some(o.as_str()) != cursor);
        orders.sort_unstable_by(|a, b| b.cmp(a));
        orders.dedup();
        let more = orders.len() > limit;
        orders.truncate(limit);
        let queries = orders
            .iter()
            .map(|order| {
                let id = order.split_once('#').map_or("", |(_, id)| id);
                Query::partition(delivery_pk(id))
            })
            .collect();
        let mut data = Vec::with_capacity(orders.len());
        for items in self.query_many(queries).await? {
            data.extend(delivery_of(&items)?);
        }
        let next_cursor = if more {
            data.last().map(|(d, _)| delivery_order(d))
        } else {
            None
        };
        Ok(Page { data, next_cursor })
    }

    pub(super) async fn claim(
        &self,
        id: &str,
        now: Time,
        lease_until: Time,
    ) -> StoreResult<Option<(Delivery, Message)>> {
        let Some(item) = self.get(delivery_pk(id), DELIVERY_SK).await? else {
            return Ok(None);
        };
        let delivery: Delivery = record(&item)?;
        if !due_by(&delivery, now) {
            return Ok(None);
        }
        self.lease(delivery, now, lease_until).await
    }

    /// Claims side by side, the deliveries read in batches of 100: most
    /// claims of a boundary are the lease wake-ups of deliveries already
    /// attempted, which then cost a share of one read, not a call each.
    pub(super) async fn claim_many(
        &self,
        ids: &[String],
        now: Time,
        lease_until: Time,
    ) -> StoreResult<Vec<(Delivery, Message)>> {
        use futures::stream::{self, StreamExt, TryStreamExt};
        let keys = ids
            .iter()
            .map(|id| key(delivery_pk(id), DELIVERY_SK))
            .collect();
        let mut due = Vec::new();
        for item in self.batch_get(keys).await? {
            let delivery: Delivery = record(&item)?;
            if due_by(&delivery, now) {
                due.push(delivery);
            }
        }
        let leased: Vec<Option<(Delivery, Message)>> = stream::iter(due)
            .map(|delivery| self.lease(delivery, now, lease_until))
            .buffered(CLAIMS_IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(leased.into_iter().flatten().collect())
    }

    /// Leases a due delivery read at `now` until `lease_until`, with its
    /// message: None if another claim took it (or it changed) since the read.
    async fn lease(
        &self,
        mut delivery: Delivery,
        now: Time,
        lease_until: Time,
    ) -> StoreResult<Option<(Delivery, Message)>> {
        let id = delivery.id.clone();
        let Some(message) = self.get(message_pk(&delivery.webhook_id), "M").await? else {
            return Err(StoreError::Unavailable(format!(
                "message {} of delivery {id} is missing",
                delivery.webhook_id
            )));
        };
        let body = match message.get("bz").or(message.get("body")) {
            Some(value) => super::compressed::unpack(value)?,
            None => {
                return Err(StoreError::Unavailable(format!(
                    "message {} has no body",
                    delivery.webhook_id
                )))
            }
        };
        let old_next = delivery.next_attempt_at.map(time_key).unwrap_or_default();
        delivery.next_attempt_at = Some(lease_until);
        // The lease: only if nobody took it (or changed the delivery) since the read.
        let item = self.expiring(delivery_item(&delivery), delivery.created_at);
        let values = vec![
            (":pending", s("pending")),
            (":old", s(old_next)),
            (":now", s(time_key(now))),
            (":n", super::n(delivery.attempt_count)),
        ];
        let leased = self
            .put_when(
                item,
                "st = :pending AND nxt = :old AND nxt <= :now AND n = :n",
                values,
            )
            .await?;
        Ok(leased.then(|| {
            let id = delivery.webhook_id.clone();
            (delivery, Message { id, body })
        }))
    }

    /// The attempts, then their deliveries: plain batched puts, not a
    /// transaction (which bills each item twice). A crash in between leaves
    /// an attempt logged whose delivery is still leased: it is attempted
    /// again after the lease, under the same attempt number, which then
    /// replaces the logged one. The webhook is sent at least once either way.
    ///
    /// Batched only while the lease clearly holds (`LEASE_MARGIN` before its
    /// end, as the commit's own time says): nobody else can have claimed the
    /// delivery then. An outcome recorded later is put on its own, only if
    /// the delivery is still under its lease at the same attempt count, and
    /// its attempt after it: an attempter that outlived its lease is dropped.
    pub(super) async fn record_attempts(&self, commits: &[AttemptCommit]) -> StoreResult<()> {
        let (safe, late): (Vec<&AttemptCommit>, Vec<&AttemptCommit>) =
            commits.iter().partition(|c| {
                c.leased_until
                    .is_none_or(|lease| c.delivery.updated_at + LEASE_MARGIN < lease)
            });
        let attempts = (safe.iter())
            .map(|c| self.expiring(attempt_item(&c.attempt), c.attempt.at))
            .collect();
        self.batch_put(attempts).await?;
        let deliveries = (safe.iter())
            .map(|c| self.expiring(delivery_item(&c.delivery), c.delivery.created_at))
            .collect();
        self.batch_put(deliveries).await?;
        use futures::stream::{self, StreamExt, TryStreamExt};
        stream::iter(0..late.len())
            .map(|i| self.record_late_attempt(late[i]))
            .buffered(CLAIMS_IN_FLIGHT)
            .try_collect::<Vec<()>>()
            .await
            .map(drop)
    }

    async fn record_late_attempt(&self, commit: &AttemptCommit) -> StoreResult<()> {
        let lease = commit.leased_until.map(time_key).unwrap_or_default();
        let values = vec![
            (":lease", s(lease)),
            (
                ":n",
                super::n(commit.delivery.attempt_count.saturating_sub(1)),
            ),
        ];
        let item = self.expiring(delivery_item(&commit.delivery), commit.delivery.created_at);
        if !self
            .put_when(item, "nxt = :lease AND n = :n", values)
            .await?
        {
            tracing::warn!(
                delivery = %commit.delivery.id,
                attempt = commit.attempt.number,
                "an attempt outlived its lease; another claimed the delivery: its outcome is dropped"
            );
            return Ok(());
        }
        let attempt = self.expiring(attempt_item(&commit.attempt), commit.attempt.at);
        self.batch_put(vec![attempt]).await
    }

    /// Message and deliveries, each inserted at most once: chunks of 100 keep that.
    pub(super) async fn insert_message(
        &self,
        message: &Message,
        deliveries: &[Delivery],
    ) -> StoreResult<()> {
        self.note_timeline(deliveries.iter()).await?;
        let made = deliveries
            .iter()
            .map(|d| d.created_at)
            .min()
            .unwrap_or_default();
        let mut actions = vec![Action::insert(
            &self.table,
            self.expiring(message_item(&message.id, &message.body), made),
            OnFail::Ignore,
        )?];
        for delivery in deliveries {
            actions.push(Action::insert(
                &self.table,
                self.expiring(delivery_item(delivery), delivery.created_at),
                OnFail::Ignore,
            )?);
        }
        self.transact_chunks(actions).await
    }

    /// Replaces an existing delivery (a missing one stays missing, as in SQLite's UPDATE).
    pub(super) async fn save_delivery(&self, delivery: &Delivery) -> StoreResult<()> {
        self.note_timeline(std::iter::once(delivery)).await?;
        let item = self.expiring(delivery_item(delivery), delivery.created_at);
        self.put_when(item, "attribute_exists(pk)", Vec::new())
            .await
            .map(drop)
    }
}

/// A delivery and its attempts, from the items of its partition (in key order).
fn delivery_of(items: &[Item]) -> StoreResult<Option<(Delivery, Vec<Attempt>)>> {
    let mut delivery = None;
    let mut attempts = Vec::new();
    for item in items {
        match text(item, "t")? {
            "DLV" => delivery = Some(record::<Delivery>(item)?),
            "ATT" => attempts.push(record::<Attempt>(item)?),
            _ => {}
        }
    }
    Ok(delivery.map(|d| (d, attempts)))
}

/// Claims of `claim_many` leasing at once.
const CLAIMS_IN_FLIGHT: usize = 32;

/// How long before its lease ends an attempt's outcome may still be
/// batched unconditionally: more than a clock's skew and a write's latency.
const LEASE_MARGIN: chrono::Duration = chrono::Duration::seconds(10);

/// Whether a delivery read at `now` is due for an attempt.
fn due_by(delivery: &Delivery, now: Time) -> bool {
    delivery.status == DeliveryStatus::Pending
        && delivery.next_attempt_at.is_some_and(|next| next <= now)
}
