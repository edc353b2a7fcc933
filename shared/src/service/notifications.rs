//! `/v1/notifications`: every change reschedules the moments it affects.

use super::Service;
use crate::error::ApiError;
use crate::notification::Notification;
use crate::planner::Plan;
use serde_json::Value;
use std::collections::HashMap;

/// Entities planned per store round trip while fanning out.
const FAN_OUT_PAGE: usize = 500;

impl Service {
    pub async fn create_notification(&self, body: &Value) -> Result<Notification, ApiError> {
        let mut notification = Notification::create(body, self.clock.now())?;
        if body.get("catch_up").is_none() {
            notification.catch_up = self.config.default_catch_up.clone();
        }
        let _changes = self.changes.write().await;
        self.store.put_notification(&notification).await?;
        if !self.config.defer_fan_outs {
            self.reschedule(&notification, true).await?;
            if notification.evaluate_on_create == Some(true) {
                self.evaluate_everyone(&notification).await?;
            }
        }
        Ok(notification)
    }

    pub async fn notification(&self, id: &str) -> Result<Notification, ApiError> {
        self.store
            .notification(id)
            .await?
            .ok_or_else(|| ApiError::not_found("notification", id))
    }

    pub async fn list_notifications(&self) -> Result<Vec<Notification>, ApiError> {
        let mut all = self.store.notifications().await?;
        all.sort_by(|a, b| (b.system, a.created_at, &a.id).cmp(&(a.system, b.created_at, &b.id)));
        Ok(all)
    }

    pub async fn update_notification(
        &self,
        id: &str,
        body: &Value,
    ) -> Result<Notification, ApiError> {
        let _changes = self.changes.write().await;
        let mut notification = self.notification(id).await?;
        notification.patch(body, self.clock.now())?;
        self.store.put_notification(&notification).await?;
        if !self.config.defer_fan_outs {
            self.reschedule(&notification, true).await?;
            // A changed threshold applies to the values as they are now.
            self.evaluate_everyone(&notification).await?;
        }
        Ok(notification)
    }

    pub async fn delete_notification(&self, id: &str) -> Result<(), ApiError> {
        let _changes = self.changes.write().await;
        let notification = self.notification(id).await?;
        if notification.system {
            return Err(ApiError::conflict(
                "system notifications cannot be deleted; disable them instead",
            ));
        }
        if !self.config.defer_fan_outs {
            self.reschedule(&notification, false).await?;
        }
        self.store.delete_notification(id).await?;
        Ok(())
    }

    /// Plans one notification over every entity of its kind, a page at a
    /// time; `exists: false` cancels all its pending schedules.
    async fn reschedule(&self, notification: &Notification, exists: bool) -> Result<(), ApiError> {
        let mut after: Option<String> = None;
        loop {
            let page = (self.reschedule_page(notification, exists, after.as_deref(), FAN_OUT_PAGE))
                .await?;
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(()),
            }
        }
    }

    /// One page of [`Service::reschedule`]: up to `limit` entities of the
    /// notification's kind after `after` planned under it (`exists: false`:
    /// its pending schedules cancelled). A runtime that fans out in steps
    /// of its own (`Config::defer_fan_outs`) calls this with its cursor.
    pub async fn reschedule_page(
        &self,
        notification: &Notification,
        exists: bool,
        after: Option<&str>,
        limit: usize,
    ) -> Result<FanOutPage, ApiError> {
        let (true, Some(kind)) = (
            notification.event_type.is_time_based(),
            notification.event_type.kind(),
        ) else {
            return Ok(FanOutPage::default());
        };
        let scope: &[Notification] = if exists {
            std::slice::from_ref(notification)
        } else {
            &[]
        };
        let page = self.store.entities_after(kind, after, limit).await?;
        let Some(last) = page.last() else {
            return Ok(FanOutPage::default());
        };
        let next = (page.len() >= limit).then(|| last.entity.id().to_string());
        let keys: Vec<_> = page.iter().map(|r| r.key()).collect();
        let mut existing: HashMap<_, Vec<_>> = HashMap::new();
        for schedule in self.store.schedules_of(&notification.id, &keys).await? {
            existing
                .entry(schedule.entity.clone())
                .or_default()
                .push(schedule);
        }
        let now = self.clock.now();
        let edge = self.config.edge(now);
        let mut changes = Plan::default();
        for record in &page {
            let mine = existing.remove(&record.key()).unwrap_or_default();
            changes.extend(super::plan_entity(record, scope, &mine, now, edge, false));
        }
        if !changes.is_empty() {
            self.store.apply_plan(&changes).await?;
            self.plan_committed(&changes).await;
        }
        Ok(FanOutPage {
            entities: page.len(),
            next,
        })
    }
}

/// What one page of a fan-out planned, and where the next starts.
#[derive(Debug, Default)]
pub struct FanOutPage {
    pub entities: usize,
    /// The last entity id of this page, when more may follow.
    pub next: Option<String>,
}
