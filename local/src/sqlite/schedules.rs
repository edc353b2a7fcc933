//! Schedules: plans, fires and the per-customer view.

use super::deliveries::insert_delivery;
use super::messages::Packed;
use super::{all, millis, one, to_json, unavailable, SqliteStore};
use lifecycle_core::entity::EntityKey;
use lifecycle_core::planner::Plan;
use lifecycle_core::ports::{FireCommit, Page, StoreError, StoreResult};
use lifecycle_core::schedule::{Schedule, ScheduleState};
use lifecycle_core::time::Time;
use rusqlite::{params, Connection};

pub(super) fn put_schedule(tx: &Connection, s: &Schedule, record: &str) -> StoreResult<()> {
    tx.prepare_cached(
        "INSERT INTO schedules (id, notification_id, entity_kind, entity_id, customer_id, state, fire_at, is_write, record)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (id) DO UPDATE SET state = excluded.state, fire_at = excluded.fire_at,
             customer_id = excluded.customer_id, record = excluded.record",
    )
    .and_then(|mut statement| {
        statement.execute(params![
            s.id,
            s.notification_id,
            s.entity.kind.as_str(),
            s.entity.id,
            s.customer_id,
            s.state.as_str(),
            millis(s.fire_at),
            s.write.is_some(),
            record,
        ])
    })
    .map(drop)
    .map_err(unavailable)
}

/// A plan's records, serialized before the writer is taken: the one writer
/// is what bounds a storm of fires or a flood of ingests, and serializing a
/// record took about a tenth of its time.
pub(super) struct PlanRecords {
    schedules: Vec<String>,
    skipped: Vec<String>,
}

impl PlanRecords {
    pub(super) fn of(plan: &Plan) -> Self {
        Self {
            schedules: plan.schedules.iter().map(to_json).collect(),
            skipped: plan.skipped.iter().map(to_json).collect(),
        }
    }
}

pub(super) fn write_plan(tx: &Connection, plan: &Plan, records: &PlanRecords) -> StoreResult<()> {
    for (schedule, record) in plan.schedules.iter().zip(&records.schedules) {
        put_schedule(tx, schedule, record)?;
    }
    for (delivery, record) in plan.skipped.iter().zip(&records.skipped) {
        insert_delivery(tx, delivery, record)?;
    }
    for deferral in &plan.deferred {
        super::horizon::defer(tx, deferral)?;
    }
    Ok(())
}

impl SqliteStore {
    pub(super) async fn schedules_of_notification(
        &self,
        notification_id: String,
        entities: Vec<EntityKey>,
    ) -> StoreResult<Vec<Schedule>> {
        self.read(move |c| {
            let mut found = Vec::new();
            for key in entities {
                found.extend(all::<Schedule>(
                    c,
                    "SELECT record FROM schedules WHERE entity_kind = ?1 AND entity_id = ?2 AND notification_id = ?3",
                    params![key.kind.as_str(), key.id, notification_id],
                )?);
            }
            Ok(found)
        })
        .await
    }

    pub(super) async fn write_plan(&self, plan: Plan) -> StoreResult<()> {
        let records = PlanRecords::of(&plan);
        self.durably(move |c| {
            let tx = c.transaction().map_err(unavailable)?;
            write_plan(&tx, &plan, &records)?;
            tx.commit().map_err(unavailable)
        })
        .await
    }

    pub(super) async fn load_schedule(&self, id: String) -> StoreResult<Option<Schedule>> {
        self.read(move |c| one(c, "SELECT record FROM schedules WHERE id = ?1", [id]))
            .await
    }

    pub(super) async fn load_schedules(&self, ids: Vec<String>) -> StoreResult<Vec<Schedule>> {
        self.read(move |c| {
            let mut found = Vec::with_capacity(ids.len());
            for chunk in ids.chunks(500) {
                let sql = format!(
                    "SELECT record FROM schedules WHERE id IN ({})",
                    vec!["?"; chunk.len()].join(",")
                );
                found.extend(all::<Schedule>(c, &sql, rusqlite::params_from_iter(chunk))?);
            }
            Ok(found)
        })
        .await
    }

    /// One transaction for all; each fire only if its schedule is still pending at its time.
    pub(super) async fn fire_all(&self, fires: Vec<FireCommit>) -> StoreResult<Vec<bool>> {
        let records: Vec<(String, Vec<String>)> = fires
            .iter()
            .map(|f| {
                (
                    to_json(&f.schedule),
                    f.deliveries.iter().map(to_json).collect(),
                )
            })
            .collect();
        let messages: Vec<Option<Packed>> = fires
            .iter()
            .map(|f| f.message.as_ref().map(Packed::of))
            .collect();
        self.with(move |c| {
            let tx = c.transaction().map_err(unavailable)?;
            let mut done = Vec::with_capacity(fires.len());
            for ((fire, (schedule, deliveries)), message) in fires.iter().zip(&records).zip(&messages) {
                let s = &fire.schedule;
                let changed = tx
                    .prepare_cached(
                        "UPDATE schedules SET state = ?2, record = ?3 WHERE id = ?1 AND state = 'pending' AND fire_at = ?4",
                    )
                    .and_then(|mut u| u.execute(params![s.id, s.state.as_str(), schedule, millis(fire.expected_fire_at)]))
                    .map_err(unavailable)?;
                done.push(changed > 0);
                if changed == 0 {
                    continue;
                }
                if let Some(message) = message {
                    super::messages::insert(&tx, message)?;
                }
                for (delivery, record) in fire.deliveries.iter().zip(deliveries) {
                    insert_delivery(&tx, delivery, record)?;
                }
            }
            tx.commit().map_err(unavailable)?;
            Ok(done)
        })
        .await
    }

    pub(super) async fn customer_page(
        &self,
        customer_id: String,
        state: ScheduleState,
        until: Option<Time>,
        cursor: Option<String>,
        limit: usize,
    ) -> StoreResult<Page<Schedule>> {
        let (after_time, after_id) = match cursor.as_deref() {
            None => (i64::MIN, String::new()),
            Some(cursor) => {
                let (time, id) = cursor.split_once(':').ok_or(StoreError::InvalidCursor)?;
                (
                    time.parse().map_err(|_| StoreError::InvalidCursor)?,
                    id.to_string(),
                )
            }
        };
        let until = until.map_or(i64::MAX, millis);
        self.read(move |c| {
            let mut data: Vec<Schedule> = all(
                c,
                "SELECT record FROM schedules WHERE customer_id = ?1 AND state = ?2 AND is_write = 0 AND fire_at <= ?3
                   AND (fire_at > ?4 OR (fire_at = ?4 AND id > ?5))
                 ORDER BY fire_at, id LIMIT ?6",
                params![customer_id, state.as_str(), until, after_time, after_id, limit as i64 + 1],
            )?;
            if state == ScheduleState::Pending {
                let after = (after_time, after_id.as_str());
                data.extend(super::horizon::deferred_of_customer(c, &customer_id, until, after)?);
                data.sort_by(|a, b| (a.fire_at, &a.id).cmp(&(b.fire_at, &b.id)));
            }
            let next_cursor = (data.len() > limit).then(|| {
                let last = &data[limit - 1];
                format!("{}:{}", millis(last.fire_at), last.id)
            });
            data.truncate(limit);
            Ok(Page { data, next_cursor })
        })
        .await
    }
}
