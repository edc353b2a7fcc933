//! Schedules: plans, reads and the per-customer view (fires: `fires.rs`).

use super::keys::{
    customer_pk, customer_schedule_sk, delivery_item, entity_pk, schedule_item, schedule_lookup,
    time_key,
};
use super::reads::Query;
use super::tx::{Action, OnFail};
use super::{key, record, text, DynamoStore};
use lifecycle_core::entity::EntityKey;
use lifecycle_core::planner::Plan;
use lifecycle_core::ports::{Page, StoreError, StoreResult};
use lifecycle_core::schedule::{Schedule, ScheduleState};
use lifecycle_core::time::Time;

impl DynamoStore {
    /// Schedule upserts and skip records (each inserted at most once).
    pub(super) fn plan_actions(&self, plan: &Plan) -> StoreResult<Vec<Action>> {
        let mut actions = Vec::with_capacity(plan.schedules.len() + plan.skipped.len());
        for schedule in &plan.schedules {
            actions.push(Action::put(&self.table, schedule_item(schedule))?);
        }
        for delivery in &plan.skipped {
            actions.push(Action::insert(
                &self.table,
                self.expiring(delivery_item(delivery), delivery.created_at),
                OnFail::Ignore,
            )?);
        }
        Ok(actions)
    }

    pub(super) async fn schedules_of_notification(
        &self,
        notification_id: &str,
        entities: &[EntityKey],
    ) -> StoreResult<Vec<Schedule>> {
        let queries = entities
            .iter()
            .map(|e| Query::partition_prefix(entity_pk(e), format!("S#{notification_id}#")))
            .collect();
        let mut found = Vec::new();
        for items in self.query_many(queries).await? {
            for item in &items {
                found.push(record(item)?);
            }
        }
        Ok(found)
    }

    /// Upserts: the parts of a plan stand on their own (planning again
    /// converges), so a plan larger than one transaction is written in chunks.
    pub(super) async fn write_plan(&self, plan: &Plan) -> StoreResult<()> {
        self.note_timeline(plan.skipped.iter()).await?;
        self.transact_chunks(self.plan_actions(plan)?).await
    }

    /// The base keys of schedules by id, through the `lookup` index.
    async fn schedule_keys(&self, ids: &[String]) -> StoreResult<Vec<super::Item>> {
        let queries = ids
            .iter()
            .map(|id| Query::new(Some("lookup"), "g1pk = :pk").value(":pk", schedule_lookup(id)))
            .collect();
        let mut keys = Vec::with_capacity(ids.len());
        for items in self.query_many(queries).await? {
            for item in items {
                keys.push(key(text(&item, "pk")?, text(&item, "sk")?));
            }
        }
        Ok(keys)
    }

    pub(super) async fn load_schedules(&self, ids: &[String]) -> StoreResult<Vec<Schedule>> {
        let (mut keys, unknown): (Vec<super::Item>, Vec<String>) = {
            let mut locations = self.locations.lock().unwrap_or_else(|p| p.into_inner());
            let mut keys = Vec::new();
            let mut unknown = Vec::new();
            for id in ids {
                match locations.remove(id) {
                    Some((pk, sk)) => keys.push(key(pk, sk)),
                    None => unknown.push(id.clone()),
                }
            }
            (keys, unknown)
        };
        keys.extend(self.schedule_keys(&unknown).await?);
        let items = self.batch_get(keys).await?;
        let mut found: Vec<Schedule> = items.iter().map(record).collect::<StoreResult<_>>()?;
        let order: std::collections::HashMap<&str, usize> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        found.sort_by_key(|s| order.get(s.id.as_str()).copied());
        Ok(found)
    }

    pub(super) async fn customer_page(
        &self,
        customer_id: &str,
        state: ScheduleState,
        until: Option<Time>,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<Schedule>> {
        let state = state.as_str();
        let after = match cursor {
            None => None,
            Some(cursor) => {
                let (time, id) = cursor.split_once('#').ok_or(StoreError::InvalidCursor)?;
                if lifecycle_core::time::parse_time(time).is_none() || id.is_empty() {
                    return Err(StoreError::InvalidCursor);
                }
                Some(customer_schedule_sk(state, time, id))
            }
        };
        let low = after.clone().unwrap_or_else(|| format!("S#{state}#"));
        let high = match until {
            Some(until) => format!("S#{state}#{}#~", time_key(until)),
            None => format!("S#{state}#~"),
        };
        if low > high {
            return Ok(Page {
                data: Vec::new(),
                next_cursor: None,
            });
        }
        let mut query = Query::new(
            Some("customer"),
            "g3pk = :pk AND g3sk BETWEEN :low AND :high",
        )
        .value(":pk", customer_pk(customer_id))
        .value(":low", &low)
        .value(":high", high);
        query.limit = Some(limit + 2);
        let mut keys = Vec::new();
        for item in self.query_all(query).await? {
            if after.as_deref() == Some(text(&item, "g3sk")?) {
                continue;
            }
            keys.push((
                text(&item, "g3sk")?.to_string(),
                key(text(&item, "pk")?, text(&item, "sk")?),
            ));
        }
        keys.truncate(limit + 1);
        let more = keys.len() > limit;
        keys.truncate(limit);
        let order: Vec<String> = keys.iter().map(|(sk, _)| sk.clone()).collect();
        let items = self
            .batch_get(keys.into_iter().map(|(_, k)| k).collect())
            .await?;
        let mut data: Vec<Schedule> = items.iter().map(record).collect::<StoreResult<_>>()?;
        data.sort_by_key(|s| {
            order
                .iter()
                .position(|sk| *sk == customer_schedule_sk(state, &time_key(s.fire_at), &s.id))
        });
        let next_cursor = if more {
            data.last()
                .map(|last| format!("{}#{}", time_key(last.fire_at), last.id))
        } else {
            None
        };
        Ok(Page { data, next_cursor })
    }
}
