//! Deferred moments (`lifecycle_core::horizon`): each entity's earliest one
//! in `entities.deferred_at`, the moments themselves derived when asked.

use super::{all, from_json, millis, rows, unavailable, SqliteStore};
use lifecycle_core::entity::{EntityKey, EntityKind, EntityRecord};
use lifecycle_core::horizon::{deferred_moments, Deferral};
use lifecycle_core::notification::Notification;
use lifecycle_core::ports::StoreResult;
use lifecycle_core::schedule::Schedule;
use lifecycle_core::time::{from_millis, Time};
use rusqlite::{params, Connection};
use std::collections::HashSet;

pub(super) fn defer(tx: &Connection, deferral: &Deferral) -> StoreResult<()> {
    let sql = if deferral.whole {
        // Already so when the plan's own write of the entity set it.
        "UPDATE entities SET deferred_at = ?3 WHERE kind = ?1 AND id = ?2 AND deferred_at IS NOT ?3"
    } else {
        // One notification's fan-out can only bring the earliest sooner.
        "UPDATE entities SET deferred_at = min(coalesce(deferred_at, ?3), ?3)
         WHERE kind = ?1 AND id = ?2 AND ?3 IS NOT NULL"
    };
    let key = &deferral.entity;
    tx.prepare_cached(sql)
        .and_then(|mut statement| {
            statement.execute(params![
                key.kind.as_str(),
                key.id,
                deferral.earliest.map(millis)
            ])
        })
        .map(drop)
        .map_err(unavailable)
}

/// A customer's deferred moments due by `until` and after the cursor
/// position `after` (fire time in ms, schedule id), in no order.
pub(super) fn deferred_of_customer(
    c: &Connection,
    customer_id: &str,
    until: i64,
    after: (i64, &str),
) -> StoreResult<Vec<Schedule>> {
    let deferred = rows(
        c,
        "SELECT record, deferred_at FROM entities WHERE customer_id = ?1 AND deferred_at IS NOT NULL",
        [customer_id],
        |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)),
    )?;
    if deferred.is_empty() {
        return Ok(Vec::new());
    }
    let notifications: Vec<Notification> = all(c, "SELECT record FROM notifications", [])?;
    let now = chrono::Utc::now();
    let mut found = Vec::new();
    for (record, deferred_at) in deferred {
        let record: EntityRecord = from_json(&record)?;
        let stored = stored_ids(c, &record.key())?;
        found.extend(
            deferred_moments(
                &record,
                &notifications,
                from_millis(deferred_at),
                &stored,
                now,
            )
            .into_iter()
            .filter(|s| {
                let at = millis(s.fire_at);
                at <= until && (at > after.0 || (at == after.0 && s.id.as_str() > after.1))
            }),
        );
    }
    Ok(found)
}

fn stored_ids(c: &Connection, key: &EntityKey) -> StoreResult<HashSet<String>> {
    let ids = rows(
        c,
        "SELECT id FROM schedules WHERE entity_kind = ?1 AND entity_id = ?2",
        params![key.kind.as_str(), key.id],
        |row| row.get(0),
    )?;
    Ok(ids.into_iter().collect())
}

impl SqliteStore {
    /// The fire time of the soonest deferred moment of any entity.
    pub async fn earliest_deferred(&self) -> StoreResult<Option<Time>> {
        self.peek(|c| {
            c.query_row(
                "SELECT MIN(deferred_at) FROM entities WHERE deferred_at IS NOT NULL",
                [],
                |row| row.get::<_, Option<i64>>(0),
            )
            .map(|at| at.map(from_millis))
            .map_err(unavailable)
        })
        .await
    }

    pub(super) async fn deferred_until(
        &self,
        until: Time,
        limit: usize,
    ) -> StoreResult<Vec<EntityKey>> {
        self.peek(move |c| {
            let keys = rows(
                c,
                "SELECT kind, id FROM entities WHERE deferred_at <= ?1 ORDER BY deferred_at LIMIT ?2",
                params![millis(until), limit as i64],
                |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
            )?;
            keys.into_iter()
                .map(|(kind, id)| {
                    let kind = EntityKind::parse(&kind).ok_or_else(|| {
                        unavailable(format!("unknown entity kind `{kind}` in the store"))
                    })?;
                    Ok(EntityKey { kind, id })
                })
                .collect()
        })
        .await
    }
}
