//! Read views: upcoming schedules and the delivery log.

use super::Service;
use crate::error::ApiError;
use crate::ports::{DeliveryFilter, Page};
use crate::schedule::{Attempt, Delivery, Schedule, ScheduleState};
use crate::time::Time;

impl Service {
    pub async fn upcoming(
        &self,
        customer_id: &str,
        state: ScheduleState,
        until: Option<Time>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Schedule>, ApiError> {
        Ok(self
            .store
            .customer_schedules(customer_id, state, until, cursor, limit)
            .await?)
    }

    pub async fn deliveries(
        &self,
        filter: &DeliveryFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<(Delivery, Vec<Attempt>)>, ApiError> {
        Ok(self.store.deliveries(filter, cursor, limit).await?)
    }

    pub async fn delivery(&self, id: &str) -> Result<(Delivery, Vec<Attempt>), ApiError> {
        self.store
            .delivery(id)
            .await?
            .ok_or_else(|| ApiError::not_found("delivery", id))
    }
}
