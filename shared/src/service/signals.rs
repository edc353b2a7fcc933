//! The threshold use cases over the store: a notification evaluated
//! against every customer's current value, and a customer's alert states.
//! What a batch of signals decides is `signal_decision.rs`.

use super::signal_decision::emit;
use super::Service;
use crate::error::ApiError;
use crate::notification::Notification;
use crate::ports::{Measure, SignalChanges};
use crate::signal::month_of;
use crate::threshold::{evaluate, measure_of, AlertState, Observation};

impl Service {
    /// Evaluates a threshold notification against every customer's current
    /// value (on create with `evaluate_on_create`, and after every edit).
    pub async fn evaluate_everyone(&self, n: &Notification) -> Result<(), ApiError> {
        let Some(measure) = measure_of(n.event_type).filter(|_| n.enabled) else {
            return Ok(());
        };
        let now = self.clock.now();
        let values = self
            .store
            .current_values(measure, n.metric.as_deref(), &month_of(now))
            .await?;
        let values: Vec<_> = values
            .into_iter()
            .filter(|(c, _, _)| n.watches(c, n.metric.as_deref()))
            .collect();
        let customers: Vec<String> = values.iter().map(|(c, _, _)| c.clone()).collect();
        let state = self.store.signal_state(&customers, &[]).await?;
        let endpoints = self.store.endpoints().await?;
        let mut changes = SignalChanges::default();
        for (customer, value, period) in &values {
            let seen = Observation {
                customer_id: customer,
                value: *value,
                period: period.clone(),
                at: now,
                signal: None,
            };
            let key = (n.id.clone(), customer.clone());
            let (next, crossings) = evaluate(n, state.alerts.get(&key), &seen, now);
            changes.alerts.push(next);
            emit(&crossings, n, customer, &endpoints, now, &mut changes);
        }
        self.store.apply_signal_changes(&changes).await?;
        self.count_fired(&changes.deliveries, now);
        self.wake_deliveries(&changes.deliveries, now).await;
        Ok(())
    }

    /// Every threshold notification's state for a customer.
    pub async fn customer_alerts(
        &self,
        customer_id: &str,
    ) -> Result<Vec<serde_json::Value>, ApiError> {
        let states = self.store.alerts_of(customer_id).await?;
        let notifications = self.store.notifications().await?;
        let month = month_of(self.clock.now());
        let usage: Vec<_> = notifications
            .iter()
            .filter_map(|n| n.metric.clone())
            .map(|metric| (customer_id.to_string(), metric, month.clone()))
            .collect();
        let current = self
            .store
            .signal_state(&[customer_id.to_string()], &usage)
            .await?;
        let mut views = Vec::new();
        for n in notifications
            .iter()
            .filter(|n| n.is_threshold() && n.filter.matches(customer_id, &Default::default()))
        {
            let state = states
                .iter()
                .find(|s| s.notification_id == n.id)
                .cloned()
                .unwrap_or_else(|| AlertState {
                    notification_id: n.id.clone(),
                    customer_id: customer_id.to_string(),
                    in_alarm: false,
                    since: n.created_at,
                    value: f64::NAN,
                    period: String::new(),
                    crossings: 0,
                });
            let mut view = state.view(n);
            let value = match measure_of(n.event_type) {
                Some(Measure::Balance) => current.balances.get(customer_id).map(|b| b.value),
                Some(Measure::Spend) => current.spends.get(customer_id).map(|s| s.value),
                _ => n.metric.as_ref().and_then(|m| {
                    current
                        .usage
                        .get(&(customer_id.to_string(), m.clone(), month.clone()))
                        .copied()
                }),
            };
            view["value"] = serde_json::json!(value);
            if state.value.is_nan() {
                view["since"] = serde_json::Value::Null;
            }
            views.push(view);
        }
        Ok(views)
    }
}
