//! Bringing deferred moments into the store as they come within the
//! horizon (`crate::horizon`).

use super::Service;
use crate::error::ApiError;
use crate::horizon::Deferral;
use crate::planner::Plan;
use crate::time::Time;

impl Service {
    /// Plans again, under every notification, up to `limit` entities whose
    /// earliest deferred moment now fires within the horizon, so that their
    /// moments up to the new edge become schedules. Returns how many
    /// entities it planned; fewer than `limit` means none is left behind.
    pub async fn materialise(&self, limit: usize) -> Result<usize, ApiError> {
        let now = self.clock.now();
        let edge = self.config.edge(now);
        // With no horizon (turned off since they were deferred), every
        // deferred entity is planned in full, once.
        let until = edge.unwrap_or(Time::MAX_UTC);
        let keys = self.store.deferred_entities(until, limit).await?;
        if keys.is_empty() {
            return Ok(0);
        }
        let _changes = self.changes.write().await;
        let mut state = self.store.write_state(&[], &keys).await?;
        let notifications = self.store.notifications().await?;
        let mut changes = Plan::default();
        for key in &keys {
            let existing = state.schedules.remove(key).unwrap_or_default();
            let mut plan = match state.records.get(key) {
                Some(record) => {
                    super::plan_entity(record, &notifications, &existing, now, edge, true)
                }
                // Entities are never deleted; should one be, it has nothing to plan.
                None => Plan::default(),
            };
            if plan.deferred.is_empty() {
                plan.deferred.push(Deferral {
                    entity: key.clone(),
                    earliest: None,
                    whole: true,
                });
            }
            changes.extend(plan);
        }
        self.store.apply_plan(&changes).await?;
        self.plan_committed(&changes).await;
        Ok(keys.len())
    }
}
