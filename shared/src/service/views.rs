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

    /// A page of the delivery log, newest first: at most `limit`, and at
    /// most `MAX_PAGE_BYTES` of views (a delivery with its attempts' response
    /// excerpts can reach 40 KB, and 500 of them would pass the 6 MB an AWS
    /// Lambda response may hold). Read from the store a part at a time; a
    /// part that would pass the budget is left to the next page, whose
    /// cursor is where that part began.
    pub async fn deliveries(
        &self,
        filter: &DeliveryFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<(Delivery, Vec<Attempt>)>, ApiError> {
        let mut data = Vec::new();
        let (mut cursor, mut bytes) = (cursor.map(str::to_string), 0);
        loop {
            let want = (limit - data.len()).clamp(1, DELIVERIES_PER_READ);
            let part = (self.store)
                .deliveries(filter, cursor.as_deref(), want)
                .await?;
            let size: usize = (part.data.iter())
                .map(|(d, attempts)| d.view(attempts).to_string().len())
                .sum();
            if !data.is_empty() && bytes + size > MAX_PAGE_BYTES {
                return Ok(Page {
                    data,
                    next_cursor: cursor,
                });
            }
            bytes += size;
            data.extend(part.data);
            cursor = part.next_cursor;
            if cursor.is_none() || data.len() >= limit {
                return Ok(Page {
                    data,
                    next_cursor: cursor,
                });
            }
        }
    }

    pub async fn delivery(&self, id: &str) -> Result<(Delivery, Vec<Attempt>), ApiError> {
        self.store
            .delivery(id)
            .await?
            .ok_or_else(|| ApiError::not_found("delivery", id))
    }
}

/// Bytes of the items of one listed page, at most: under the 6 MB of an AWS
/// Lambda response (API Gateway answers 500 above it), with room to spare.
pub const MAX_PAGE_BYTES: usize = 5 * 1024 * 1024;
/// Deliveries read from the store at a time while a page is filled.
const DELIVERIES_PER_READ: usize = 100;
