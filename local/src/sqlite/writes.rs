//! Entities, write events, notifications and endpoints.

use super::config_cache::Table;
use super::messages::Packed;
use super::schedules::PlanRecords;
use super::{all, millis, one, to_json, unavailable, SqliteStore};
use lifecycle_core::endpoint::Endpoint;
use lifecycle_core::entity::{EntityKey, EntityKind, EntityRecord};
use lifecycle_core::notification::Notification;
use lifecycle_core::ports::{StoreError, StoreResult, WriteCommit, WriteState};
use rusqlite::{params, Connection};
use std::collections::HashMap;

impl SqliteStore {
    pub(super) async fn install_notifications(
        &self,
        defaults: Vec<Notification>,
    ) -> StoreResult<()> {
        self.durably(move |c| {
            let tx = c.transaction().map_err(unavailable)?;
            for n in &defaults {
                tx.execute(
                    "INSERT OR IGNORE INTO notifications (id, record) VALUES (?1, ?2)",
                    params![n.id, to_json(n)],
                )
                .map_err(unavailable)?;
            }
            tx.commit().map_err(unavailable)
        })
        .await?;
        self.config.forget(Table::Notifications);
        Ok(())
    }

    pub(super) async fn load_write_state(
        &self,
        event_ids: Vec<String>,
        keys: Vec<EntityKey>,
    ) -> StoreResult<WriteState> {
        let few = event_ids.len() + keys.len() <= 8;
        let read = move |c: &Connection| {
            let mut state = WriteState::default();
            if !event_ids.is_empty() {
                let sql = format!(
                    "SELECT id FROM write_events WHERE id IN ({})",
                    vec!["?"; event_ids.len()].join(",")
                );
                let mut statement = c.prepare(&sql).map_err(unavailable)?;
                let seen = statement
                    .query_map(rusqlite::params_from_iter(&event_ids), |row| {
                        row.get::<_, String>(0)
                    })
                    .map_err(unavailable)?;
                for id in seen {
                    state.seen_events.insert(id.map_err(unavailable)?);
                }
            }
            for key in keys {
                let Some(record) = load_entity(c, &key)? else {
                    // Schedules are planned only for stored entities.
                    state.schedules.insert(key, Vec::new());
                    continue;
                };
                state.records.insert(key.clone(), record);
                let schedules = all(
                    c,
                    "SELECT record FROM schedules WHERE entity_kind = ?1 AND entity_id = ?2 AND is_write = 0",
                    params![key.kind.as_str(), key.id],
                )?;
                state.schedules.insert(key, schedules);
            }
            Ok(state)
        };
        // A request of one event: a peek; a batch: on the blocking pool.
        match few {
            true => self.peek(read).await,
            false => self.read(read).await,
        }
    }

    pub(super) async fn commit_write_batch(&self, commit: WriteCommit) -> StoreResult<()> {
        let write = PreparedWrite {
            entities: commit.records.iter().map(|(r, _)| to_json(r)).collect(),
            plan: PlanRecords::of(&commit.plan),
            messages: Packed::all(&commit.signals.messages),
            commit,
        };
        // A request of one event shares its commit with the writes queued
        // beside it; a batch takes a group of its own (`group_commit`).
        let weight = write.commit.events.len();
        self.grouped(weight, move |tx| write.apply(tx)).await
    }

    pub(super) async fn load_entities(
        &self,
        keys: Vec<EntityKey>,
    ) -> StoreResult<Vec<EntityRecord>> {
        self.read(move |c| {
            let mut found = Vec::with_capacity(keys.len());
            for key in &keys {
                found.extend(load_entity(c, key)?);
            }
            Ok(found)
        })
        .await
    }

    pub(super) async fn load_entity(&self, key: EntityKey) -> StoreResult<Option<EntityRecord>> {
        self.read(move |c| load_entity(c, &key)).await
    }

    pub(super) async fn load_entities_after(
        &self,
        kind: EntityKind,
        after: Option<String>,
        limit: usize,
    ) -> StoreResult<Vec<EntityRecord>> {
        self.read(move |c| {
            all(
                c,
                "SELECT record FROM entities WHERE kind = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
                params![kind.as_str(), after.unwrap_or_default(), limit as i64],
            )
        })
        .await
    }

    pub(super) async fn load_by_id<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        table: &'static str,
        id: String,
    ) -> StoreResult<Option<T>> {
        self.read(move |c| {
            one(
                c,
                &format!("SELECT record FROM {table} WHERE id = ?1"),
                [id],
            )
        })
        .await
    }

    pub(super) async fn load_table<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        table: &'static str,
    ) -> StoreResult<Vec<T>> {
        self.read(move |c| all(c, &format!("SELECT record FROM {table}"), []))
            .await
    }

    pub(super) async fn put_record(
        &self,
        table: &'static str,
        id: String,
        record: String,
    ) -> StoreResult<()> {
        self.durably(move |c| {
            c.execute(
                &format!("INSERT OR REPLACE INTO {table} (id, record) VALUES (?1, ?2)"),
                params![id, record],
            )
            .map(drop)
            .map_err(unavailable)
        })
        .await?;
        self.forget(table);
        Ok(())
    }

    pub(super) async fn delete_record(&self, table: &'static str, id: String) -> StoreResult<()> {
        self.durably(move |c| {
            c.execute(&format!("DELETE FROM {table} WHERE id = ?1"), [id])
                .map(drop)
                .map_err(unavailable)
        })
        .await?;
        self.forget(table);
        Ok(())
    }

    /// Drops the in-memory copy of a configuration table just written.
    fn forget(&self, table: &str) {
        if let Some(table) = Table::of(table) {
            self.config.forget(table);
        }
    }

    /// Every notification, from memory once read.
    pub(super) async fn cached_notifications(&self) -> StoreResult<Vec<Notification>> {
        if let Some(cached) = self.config.notifications() {
            return Ok(cached.to_vec());
        }
        let generation = self.config.generation();
        let read = self.load_table("notifications").await?;
        Ok(self.config.fill_notifications(generation, read).to_vec())
    }

    /// Every endpoint, opened, from memory once read.
    pub(super) async fn cached_endpoints(&self) -> StoreResult<Vec<Endpoint>> {
        if let Some(cached) = self.config.endpoints() {
            return Ok(cached.to_vec());
        }
        let generation = self.config.generation();
        let stored: Vec<Endpoint> = self.load_table("endpoints").await?;
        let opened = stored
            .into_iter()
            .map(|e| self.opened(e))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(self.config.fill_endpoints(generation, opened).to_vec())
    }
}

/// A batch of writes with its records serialized, ready for the writer.
struct PreparedWrite {
    commit: WriteCommit,
    entities: Vec<String>,
    plan: PlanRecords,
    messages: Vec<Packed>,
}

impl PreparedWrite {
    fn apply(&self, tx: &Connection) -> StoreResult<()> {
        let commit = &self.commit;
        let now = millis(chrono::Utc::now());
        let mut insert_event = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO write_events (id, status, received_at) VALUES (?1, ?2, ?3)",
            )
            .map_err(unavailable)?;
        for (id, status) in &commit.events {
            let inserted = insert_event
                .execute(params![id, status, now])
                .map_err(unavailable)?;
            if inserted == 0 {
                return Err(StoreError::Conflict(format!(
                    "write event {id} was applied concurrently"
                )));
            }
        }
        drop(insert_event);
        // An entity planned in full is written with its earliest deferred
        // moment, so that recording it is not a second write of the row.
        let deferred: HashMap<&EntityKey, Option<i64>> = commit
            .plan
            .deferred
            .iter()
            .filter(|d| d.whole)
            .map(|d| (&d.entity, d.earliest.map(millis)))
            .collect();
        for ((record, expected), json) in commit.records.iter().zip(&self.entities) {
            let deferred_at = deferred.get(&record.key()).copied();
            put_entity(tx, record, json, *expected, deferred_at)?;
        }
        super::schedules::write_plan(tx, &commit.plan, &self.plan)?;
        super::signals::write_changes(tx, &commit.signals, &self.messages)
    }
}

fn load_entity(c: &Connection, key: &EntityKey) -> StoreResult<Option<EntityRecord>> {
    one(
        c,
        "SELECT record FROM entities WHERE kind = ?1 AND id = ?2",
        params![key.kind.as_str(), key.id],
    )
}

/// Inserts a new entity or replaces the expected version of one; sets its
/// earliest deferred moment if given one.
fn put_entity(
    tx: &Connection,
    record: &EntityRecord,
    json: &str,
    expected: Option<u64>,
    deferred_at: Option<Option<i64>>,
) -> StoreResult<()> {
    let key = record.key();
    let changed = match expected {
        None => tx.prepare_cached(
            "INSERT OR IGNORE INTO entities (kind, id, customer_id, version, record, deferred_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        ).and_then(|mut insert| insert.execute(
            params![key.kind.as_str(), key.id, record.entity.customer_id(), record.version as i64, json, deferred_at.flatten()],
        )),
        Some(version) => tx.prepare_cached(
            "UPDATE entities SET customer_id = ?3, version = ?4, record = ?5,
                 deferred_at = CASE WHEN ?7 THEN ?8 ELSE deferred_at END
             WHERE kind = ?1 AND id = ?2 AND version = ?6",
        ).and_then(|mut update| update.execute(
            params![key.kind.as_str(), key.id, record.entity.customer_id(), record.version as i64, json, version as i64,
                    deferred_at.is_some(), deferred_at.flatten()],
        )),
    }
    .map_err(unavailable)?;
    if changed == 0 {
        return Err(StoreError::Conflict(format!(
            "{} {} changed concurrently",
            key.kind.as_str(),
            key.id
        )));
    }
    Ok(())
}
