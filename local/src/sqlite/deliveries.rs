//! Deliveries, their messages and their attempts.

use super::messages::Packed;
use super::{all, from_json, millis, one, to_json, unavailable, SqliteStore};
use lifecycle_core::ports::{
    AttemptCommit, DeliveryFilter, Message, Page, StoreError, StoreResult,
};
use lifecycle_core::schedule::{Attempt, Delivery};
use lifecycle_core::time::Time;
use rusqlite::types::Value as Sql;
use rusqlite::{params, Connection};

/// At most one delivery per endpoint per webhook: a second insert is a no-op.
pub(super) fn insert_delivery(tx: &Connection, d: &Delivery, record: &str) -> StoreResult<()> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO deliveries (id, customer_id, event_type, status, endpoint_id, created_at, next_attempt_at, record)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut statement| {
        statement.execute(params![
            d.id,
            d.customer_id,
            d.event_type.as_str(),
            d.status.as_str(),
            d.endpoint_id,
            millis(d.created_at),
            d.next_attempt_at.map(millis),
            record,
        ])
    })
    .map(drop)
    .map_err(unavailable)
}

fn update_delivery(c: &Connection, d: &Delivery, record: &str) -> StoreResult<()> {
    c.prepare_cached(
        "UPDATE deliveries SET status = ?2, next_attempt_at = ?3, record = ?4 WHERE id = ?1",
    )
    .and_then(|mut statement| {
        statement.execute(params![
            d.id,
            d.status.as_str(),
            d.next_attempt_at.map(millis),
            record
        ])
    })
    .map(drop)
    .map_err(unavailable)
}

/// An attempt's outcome, if the delivery is still at the attempt count it
/// was claimed at (a later claim's commit moved it on): whether it was.
fn update_attempted(c: &Connection, d: &Delivery, record: &str, prior: u32) -> StoreResult<bool> {
    c.prepare_cached(
        "UPDATE deliveries SET status = ?2, next_attempt_at = ?3, record = ?4 \
         WHERE id = ?1 AND json_extract(record, '$.attempt_count') = ?5",
    )
    .and_then(|mut statement| {
        statement.execute(params![
            d.id,
            d.status.as_str(),
            d.next_attempt_at.map(millis),
            record,
            prior
        ])
    })
    .map(|changed| changed > 0)
    .map_err(unavailable)
}

/// A delivery if it is pending and due, with its webhook.
fn due_with_message(
    c: &Connection,
    id: &str,
    now: Time,
) -> StoreResult<Option<(Delivery, Message)>> {
    let Some(delivery) = one::<Delivery>(
        c,
        "SELECT record FROM deliveries WHERE id = ?1 AND status = 'pending' AND next_attempt_at <= ?2",
        params![id, millis(now)],
    )?
    else {
        return Ok(None);
    };
    let Some(body) = super::messages::body(c, &delivery.webhook_id)? else {
        return Err(StoreError::Unavailable(format!(
            "message {} of delivery {id} is missing",
            delivery.webhook_id
        )));
    };
    let message = Message {
        id: delivery.webhook_id.clone(),
        body,
    };
    Ok(Some((delivery, message)))
}

fn attempts_of(c: &Connection, id: &str) -> StoreResult<Vec<Attempt>> {
    all(
        c,
        "SELECT record FROM attempts WHERE delivery_id = ?1 ORDER BY number",
        [id],
    )
}

impl SqliteStore {
    pub(super) async fn load_delivery(
        &self,
        id: String,
    ) -> StoreResult<Option<(Delivery, Vec<Attempt>)>> {
        let leases = self.leases.clone();
        self.read(move |c| {
            let Some(mut delivery) =
                one::<Delivery>(c, "SELECT record FROM deliveries WHERE id = ?1", [&id])?
            else {
                return Ok(None);
            };
            leases.show(&mut delivery);
            let attempts = attempts_of(c, &id)?;
            Ok(Some((delivery, attempts)))
        })
        .await
    }

    pub(super) async fn delivery_page(
        &self,
        filter: DeliveryFilter,
        cursor: Option<String>,
        limit: usize,
    ) -> StoreResult<Page<(Delivery, Vec<Attempt>)>> {
        let before: i64 = match cursor {
            None => i64::MAX,
            Some(cursor) => cursor.parse().map_err(|_| StoreError::InvalidCursor)?,
        };
        let leases = self.leases.clone();
        self.read(move |c| {
            let mut sql = String::from("SELECT seq, record FROM deliveries WHERE seq < ?");
            let mut values: Vec<Sql> = vec![Sql::Integer(before)];
            let mut and = |clause: &str, value: Sql| {
                sql.push_str(clause);
                values.push(value);
            };
            if let Some(customer) = filter.customer_id {
                and(" AND customer_id = ?", Sql::Text(customer));
            }
            if let Some(event_type) = filter.event_type {
                and(" AND event_type = ?", Sql::Text(event_type.as_str().into()));
            }
            if let Some(status) = filter.status {
                and(" AND status = ?", Sql::Text(status.as_str().into()));
            }
            if let Some(endpoint) = filter.endpoint_id {
                and(" AND endpoint_id = ?", Sql::Text(endpoint));
            }
            if let Some(since) = filter.since {
                and(" AND created_at >= ?", Sql::Integer(millis(since)));
            }
            if let Some(until) = filter.until {
                and(" AND created_at <= ?", Sql::Integer(millis(until)));
            }
            and(" ORDER BY seq DESC LIMIT ?", Sql::Integer(limit as i64 + 1));
            let mut statement = c.prepare(&sql).map_err(unavailable)?;
            let rows = statement
                .query_map(rusqlite::params_from_iter(values), |row| {
                    Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
                })
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            let next_cursor = (rows.len() > limit).then(|| rows[limit - 1].0.to_string());
            let mut data = Vec::new();
            for (_, text) in rows.into_iter().take(limit) {
                let mut delivery: Delivery = from_json(&text)?;
                leases.show(&mut delivery);
                let attempts = attempts_of(c, &delivery.id)?;
                data.push((delivery, attempts));
            }
            Ok(Page { data, next_cursor })
        })
        .await
    }

    /// Claims the due pending deliveries among `ids` that no attempt holds:
    /// a lease in memory (see `leases`), so claiming writes nothing.
    pub(super) async fn claim(
        &self,
        ids: Vec<String>,
        now: Time,
        lease_until: Time,
    ) -> StoreResult<Vec<(Delivery, Message)>> {
        let leases = self.leases.clone();
        self.peek(move |c| {
            let mut claimed = Vec::with_capacity(ids.len());
            for id in &ids {
                if !leases.take(id, now, lease_until) {
                    continue;
                }
                match due_with_message(c, id, now) {
                    Ok(Some((mut delivery, message))) => {
                        leases.show(&mut delivery);
                        claimed.push((delivery, message));
                    }
                    Ok(None) => leases.release([id.as_str()]),
                    Err(error) => {
                        // Only what this claim took: the others are held by
                        // attempts in flight.
                        let taken = claimed.iter().map(|(d, _)| d.id.as_str());
                        leases.release(taken.chain([id.as_str()]));
                        return Err(error);
                    }
                }
            }
            Ok(claimed)
        })
        .await
    }

    /// Records attempts and their deliveries' new states, in one transaction.
    /// Each outcome only while its lease is its own: not taken again by a
    /// later claim (the leases in memory), and the delivery at the attempt
    /// count it was claimed at. An attempter that outlived its lease is
    /// dropped, attempt and state, and leaves the later claim's lease held.
    pub(super) async fn record_attempts(&self, commits: Vec<AttemptCommit>) -> StoreResult<()> {
        let commits: Vec<AttemptCommit> = (commits.into_iter())
            .filter(|c| {
                let stale = (c.leased_until).is_some_and(|l| self.leases.taken_since(&c.delivery.id, l));
                if stale {
                    tracing::warn!(delivery = %c.delivery.id, "an attempt outlived its lease; its outcome is dropped");
                }
                !stale
            })
            .collect();
        let owned: Vec<(String, Option<Time>)> = (commits.iter())
            .map(|c| (c.delivery.id.clone(), c.leased_until))
            .collect();
        let records: Vec<(String, String)> = commits
            .iter()
            .map(|c| (to_json(&c.delivery), to_json(&c.attempt)))
            .collect();
        // In the queue with the writes, so that an outcome waits for one
        // group of an ingest burst, not for all of it.
        self.grouped(commits.len(), move |tx| {
            for (commit, (delivery, attempt)) in commits.iter().zip(&records) {
                // A leased outcome only at the attempt count it was claimed at.
                let written = match commit.leased_until {
                    Some(_) => {
                        let prior = commit.delivery.attempt_count.saturating_sub(1);
                        update_attempted(tx, &commit.delivery, delivery, prior)?
                    }
                    None => {
                        update_delivery(tx, &commit.delivery, delivery)?;
                        true
                    }
                };
                if !written {
                    continue;
                }
                let a = &commit.attempt;
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO attempts (delivery_id, number, record) VALUES (?1, ?2, ?3)",
                )
                .and_then(|mut s| s.execute(params![a.delivery_id, a.number, attempt]))
                .map_err(unavailable)?;
            }
            Ok(())
        })
        .await?;
        // Only once recorded: an attempt whose record failed is held until
        // its lease ends, then tried again.
        self.leases
            .release_own(owned.iter().map(|(id, lease)| (id.as_str(), *lease)));
        Ok(())
    }

    pub(super) async fn insert_message(
        &self,
        message: Message,
        deliveries: Vec<Delivery>,
    ) -> StoreResult<()> {
        let message = Packed::of(&message);
        self.with(move |c| {
            let tx = c.transaction().map_err(unavailable)?;
            super::messages::insert(&tx, &message)?;
            for delivery in &deliveries {
                insert_delivery(&tx, delivery, &to_json(delivery))?;
            }
            tx.commit().map_err(unavailable)
        })
        .await
    }

    pub(super) async fn save_delivery(&self, delivery: Delivery) -> StoreResult<()> {
        let id = delivery.id.clone();
        let record = to_json(&delivery);
        self.durably(move |c| update_delivery(c, &delivery, &record))
            .await?;
        self.leases.release([id.as_str()]);
        Ok(())
    }
}
