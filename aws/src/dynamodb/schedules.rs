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
use std::collections::HashSet;

impl DynamoStore {
    /// Schedule upserts, skip records (each inserted at most once) and the
    /// deferrals but those of the entities in `written` (whose put carries
    /// it), each with the entity it belongs to (None: a skip of no entity).
    pub(super) fn plan_actions(
        &self,
        plan: &Plan,
        written: &HashSet<EntityKey>,
    ) -> StoreResult<Vec<(Option<EntityKey>, Action)>> {
        let mut actions = Vec::with_capacity(plan.schedules.len() + plan.skipped.len());
        for schedule in &plan.schedules {
            let put = Action::put(&self.table, schedule_item(schedule))?;
            actions.push((Some(schedule.entity.clone()), put));
        }
        for delivery in &plan.skipped {
            let insert = Action::insert(
                &self.table,
                self.expiring(delivery_item(delivery), delivery.created_at),
                OnFail::Ignore,
            )?;
            actions.push((delivery.entity.clone(), insert));
        }
        actions.extend(self.deferral_actions(&plan.deferred, written)?);
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
        self.defer_sooner(&plan.deferred).await?;
        let actions = self.plan_actions(plan, &HashSet::new())?;
        self.transact_chunks(actions.into_iter().map(|(_, a)| a).collect())
            .await
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
        let items = self
            .batch_get(keys.into_iter().map(|(_, k)| k).collect())
            .await?;
        let mut data: Vec<Schedule> = items.iter().map(record).collect::<StoreResult<_>>()?;
        if state == ScheduleState::Pending.as_str() {
            let after = cursor.and_then(|c| c.split_once('#'));
            data.extend(self.deferred_of_customer(customer_id, until, after).await?);
        }
        data.sort_by(|a, b| (a.fire_at, &a.id).cmp(&(b.fire_at, &b.id)));
        let more = data.len() > limit;
        data.truncate(limit);
        let next_cursor = if more {
            data.last()
                .map(|last| format!("{}#{}", time_key(last.fire_at), last.id))
        } else {
            None
        };
        Ok(Page { data, next_cursor })
    }
}
