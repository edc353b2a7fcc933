//! Threshold evaluation: each threshold notification keeps, per customer,
//! whether it is in alarm. A webhook goes out when the condition turns true
//! (`*_reached`), and, with `notify_on_resolve`, when it turns false again
//! (`*_resolved`). A new period (month, billing period) ends the alarm of
//! the old one, so thresholds re-arm.

use crate::event_type::EventType;
use crate::ids::hashed_id;
use crate::notification::Notification;
use crate::signal::Signal;
use crate::time::Time;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Which measure a threshold watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    Balance,
    Spend,
    Usage,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertState {
    pub notification_id: String,
    pub customer_id: String,
    pub in_alarm: bool,
    /// When it last changed between ok and in alarm.
    pub since: Time,
    pub value: f64,
    /// The period `value` belongs to: `2026-11` for usage, the period start
    /// for spend, empty for balances.
    pub period: String,
    /// How often the threshold was reached: numbers the webhook ids.
    pub crossings: u64,
}

impl AlertState {
    pub fn view(&self, notification: &Notification) -> Value {
        json!({
            "notification_id": self.notification_id, "name": notification.name,
            "event_type": notification.event_type, "threshold": notification.threshold,
            "metric": notification.metric, "customer_id": self.customer_id,
            "state": if self.in_alarm { "in_alarm" } else { "ok" }, "since": self.since,
            "value": self.value, "period": self.period, "enabled": notification.enabled,
        })
    }
}

/// A value of the measure a notification watches, for one customer.
#[derive(Clone, Debug)]
pub struct Observation<'a> {
    pub customer_id: &'a str,
    pub value: f64,
    pub period: String,
    pub at: Time,
    /// The signal that brought it, if one did (none when a notification is created).
    pub signal: Option<&'a Signal>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Reached,
    Resolved,
}

/// One webhook a crossing makes.
#[derive(Clone, Debug, PartialEq)]
pub struct Crossing {
    pub direction: Direction,
    pub webhook_id: String,
    pub body: Value,
}

/// The measure a threshold type watches.
pub fn measure_of(event_type: EventType) -> Option<Measure> {
    match event_type {
        EventType::AlertsLowCreditBalanceReached => Some(Measure::Balance),
        EventType::AlertsSpendThresholdReached => Some(Measure::Spend),
        EventType::AlertsUsageThresholdReached => Some(Measure::Usage),
        _ => None,
    }
}

/// Whether the condition holds: a balance at or below its threshold; spend
/// or usage at or above it.
pub fn breached(event_type: EventType, threshold: f64, value: f64) -> bool {
    match event_type {
        EventType::AlertsLowCreditBalanceReached => value <= threshold,
        _ => value >= threshold,
    }
}

/// The new state after an observation, and the webhooks it makes: at most a
/// resolve of the old period's alarm and a new reach. An observation of an
/// older period than the state's changes nothing.
pub fn evaluate(
    notification: &Notification,
    state: Option<&AlertState>,
    seen: &Observation,
    now: Time,
) -> (AlertState, Vec<Crossing>) {
    let threshold = notification.threshold.unwrap_or(0.0);
    let mut next = state.cloned().unwrap_or_else(|| AlertState {
        notification_id: notification.id.clone(),
        customer_id: seen.customer_id.to_string(),
        in_alarm: false,
        since: seen.at,
        value: seen.value,
        period: seen.period.clone(),
        crossings: 0,
    });
    if seen.period < next.period {
        return (next, Vec::new());
    }
    let mut crossings = Vec::new();
    let breached_now = breached(notification.event_type, threshold, seen.value);
    let new_period = seen.period != next.period;
    if next.in_alarm && (new_period || !breached_now) {
        next.in_alarm = false;
        next.since = seen.at;
        if notification.notify_on_resolve == Some(true) {
            crossings.push(Direction::Resolved);
        }
    }
    next.value = seen.value;
    next.period = seen.period.clone();
    if !next.in_alarm && breached_now {
        next.in_alarm = true;
        next.since = seen.at;
        next.crossings += 1;
        crossings.push(Direction::Reached);
    }
    let webhooks = crossings
        .into_iter()
        .map(|direction| crossing(notification, &next, direction, seen, now))
        .collect();
    (next, webhooks)
}

fn crossing(
    notification: &Notification,
    state: &AlertState,
    direction: Direction,
    seen: &Observation,
    now: Time,
) -> Crossing {
    let event_type = match direction {
        Direction::Reached => notification.event_type,
        Direction::Resolved => notification
            .event_type
            .resolved()
            .unwrap_or(notification.event_type),
    };
    // Stable per crossing: a retry or replay of the same crossing keeps its id.
    let webhook_id = hashed_id(
        "msg",
        &[
            &notification.id,
            &state.customer_id,
            event_type.as_str(),
            &state.crossings.to_string(),
        ],
    );
    let body = json!({
        "id": webhook_id, "type": event_type, "timestamp": now,
        "data": {
            "customer_id": state.customer_id, "notification_id": notification.id,
            "threshold": notification.threshold, "value": seen.value, "metric": notification.metric,
            "period": state.period, "late": false,
            "signal": seen.signal.map(Signal::view),
        },
    });
    Crossing {
        direction,
        webhook_id,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_time;

    fn notification(event_type: &str, threshold: f64, resolve: bool) -> Notification {
        let mut body =
            json!({"event_type": event_type, "threshold": threshold, "notify_on_resolve": resolve});
        if event_type.contains("usage") {
            body["metric"] = json!("calls");
        }
        Notification::create(&body, parse_time("2026-11-01T00:00:00Z").unwrap()).unwrap()
    }

    fn at(minute: u32) -> Time {
        parse_time(&format!("2026-11-25T00:{minute:02}:00Z")).unwrap()
    }

    /// Feeds values in order; returns the webhooks' types per step.
    fn run(n: &Notification, values: &[(f64, &str)]) -> Vec<Vec<String>> {
        let mut state = None;
        values
            .iter()
            .enumerate()
            .map(|(i, (value, period))| {
                let seen = Observation {
                    customer_id: "c_1",
                    value: *value,
                    period: period.to_string(),
                    at: at(i as u32),
                    signal: None,
                };
                let (next, crossings) = evaluate(n, state.as_ref(), &seen, at(i as u32));
                state = Some(next);
                crossings
                    .iter()
                    .map(|c| c.body["type"].as_str().unwrap().to_string())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn low_balance_fires_once_per_dip_and_rearms_on_top_up() {
        let n = notification("alerts.low_credit_balance_reached", 100.0, false);
        let steps = run(
            &n,
            &[
                (500.0, ""),
                (100.0, ""),
                (50.0, ""),
                (150.0, ""),
                (20.0, ""),
            ],
        );
        let reached = "alerts.low_credit_balance_reached".to_string();
        assert_eq!(
            steps,
            vec![vec![], vec![reached.clone()], vec![], vec![], vec![reached]]
        );
    }

    #[test]
    fn exactly_at_the_threshold_counts() {
        assert!(breached(
            EventType::AlertsSpendThresholdReached,
            1000.0,
            1000.0
        ));
        assert!(!breached(
            EventType::AlertsSpendThresholdReached,
            1000.0,
            999.99
        ));
        assert!(breached(
            EventType::AlertsLowCreditBalanceReached,
            10.0,
            10.0
        ));
        assert!(!breached(
            EventType::AlertsLowCreditBalanceReached,
            10.0,
            10.01
        ));
    }

    #[test]
    fn resolves_come_in_pairs_with_reaches() {
        let n = notification("alerts.spend_threshold_reached", 1000.0, true);
        let steps = run(&n, &[(1200.0, "p1"), (900.0, "p1"), (1500.0, "p1")]);
        assert_eq!(steps[0], vec!["alerts.spend_threshold_reached"]);
        assert_eq!(steps[1], vec!["alerts.spend_threshold_resolved"]);
        assert_eq!(steps[2], vec!["alerts.spend_threshold_reached"]);
    }

    #[test]
    fn a_new_period_rearms_and_an_older_one_is_ignored() {
        let n = notification("alerts.usage_threshold_reached", 10.0, true);
        let steps = run(
            &n,
            &[
                (12.0, "2026-11"),
                (15.0, "2026-11"),
                (3.0, "2026-12"),
                (5.0, "2026-11"),
                (11.0, "2026-12"),
            ],
        );
        assert_eq!(steps[0], vec!["alerts.usage_threshold_reached"]);
        assert!(steps[1].is_empty(), "still over: no second webhook");
        assert_eq!(
            steps[2],
            vec!["alerts.usage_threshold_resolved"],
            "the month rolled over"
        );
        assert!(
            steps[3].is_empty(),
            "a late record of the old month changes nothing"
        );
        assert_eq!(steps[4], vec!["alerts.usage_threshold_reached"]);
        let jump = run(&n, &[(50.0, "2026-11"), (50.0, "2026-12")]);
        assert_eq!(
            jump[1],
            vec![
                "alerts.usage_threshold_resolved",
                "alerts.usage_threshold_reached"
            ]
        );
    }

    #[test]
    fn webhook_ids_are_stable_per_crossing_and_new_for_the_next() {
        let n = notification("alerts.low_credit_balance_reached", 100.0, false);
        let seen = |value| Observation {
            customer_id: "c_1",
            value,
            period: String::new(),
            at: at(0),
            signal: None,
        };
        let (state, first) = evaluate(&n, None, &seen(50.0), at(0));
        let (_, replay) = evaluate(&n, None, &seen(40.0), at(1));
        assert_eq!(
            first[0].webhook_id, replay[0].webhook_id,
            "the same crossing, the same id"
        );
        let (state, _) = evaluate(&n, Some(&state), &seen(500.0), at(2));
        let (_, second) = evaluate(&n, Some(&state), &seen(50.0), at(3));
        assert_ne!(first[0].webhook_id, second[0].webhook_id);
        assert_eq!(second[0].body["data"]["value"], json!(50.0));
        assert_eq!(second[0].body["data"]["threshold"], json!(100.0));
    }
}
