//! The pure decision of a batch of usage signals: aggregates updated in
//! order, each threshold notification evaluated per signal, crossings made
//! webhooks (`decide_signals`); no store, no clock.

use super::ingest::WriteResult;
use crate::endpoint::Endpoint;
use crate::notification::Notification;
use crate::ports::{Balance, Measure, Message, SignalChanges, SignalState, Spend, UsageKey};
use crate::schedule::Delivery;
use crate::signal::{month_of, Reading, Signal};
use crate::threshold::{evaluate, measure_of, Crossing, Observation};
use crate::time::Time;
use std::collections::{BTreeSet, HashMap, HashSet};

/// A period start as fixed-width text, so that periods order as text.
pub fn period_key(start: Time) -> String {
    start.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Results per event index, event statuses to remember, and what to commit.
pub(super) struct SignalOutcome {
    pub results: Vec<(usize, WriteResult)>,
    pub events: Vec<(String, &'static str)>,
    pub changes: SignalChanges,
}

pub(super) fn decide_signals(
    signals: &[(usize, &Signal)],
    seen: &mut HashSet<String>,
    mut state: SignalState,
    notifications: &[Notification],
    endpoints: &[Endpoint],
    now: Time,
) -> SignalOutcome {
    let mut outcome = SignalOutcome {
        results: Vec::new(),
        events: Vec::new(),
        changes: SignalChanges::default(),
    };
    // What a stored total counts beyond the events remembered as seen.
    let mut counted: HashMap<UsageKey, Vec<String>> = std::mem::take(&mut state.counted)
        .into_iter()
        .map(|(key, ids)| {
            let mut ids: Vec<String> = ids.into_iter().filter(|id| !seen.contains(id)).collect();
            ids.sort();
            (key, ids)
        })
        .collect();
    let (mut balances, mut spends, mut totals, mut alerts) = (
        BTreeSet::new(),
        BTreeSet::new(),
        BTreeSet::new(),
        BTreeSet::new(),
    );
    for (i, signal) in signals {
        let status = |status| WriteResult {
            id: signal.id.clone(),
            status,
        };
        if !seen.insert(signal.id.clone()) {
            outcome.results.push((*i, status("duplicate")));
            continue;
        }
        let customer = &signal.customer_id;
        let reading = match &signal.reading {
            Reading::Balance { credit_balance, .. } => {
                let stale = state
                    .balances
                    .get(customer)
                    .is_some_and(|b| b.occurred_at > signal.occurred_at);
                (!stale).then(|| {
                    let balance = Balance {
                        value: *credit_balance,
                        occurred_at: signal.occurred_at,
                    };
                    state.balances.insert(customer.clone(), balance);
                    balances.insert(customer.clone());
                    (Measure::Balance, None, *credit_balance, String::new())
                })
            }
            Reading::Spend {
                period_start,
                spend,
            } => {
                let period = period_key(*period_start);
                let stale = state.spends.get(customer).is_some_and(|s| {
                    (s.period.as_str(), s.occurred_at) > (period.as_str(), signal.occurred_at)
                });
                (!stale).then(|| {
                    let stored = Spend {
                        period: period.clone(),
                        value: *spend,
                        occurred_at: signal.occurred_at,
                    };
                    state.spends.insert(customer.clone(), stored);
                    spends.insert(customer.clone());
                    (Measure::Spend, None, *spend, period)
                })
            }
            Reading::Usage {
                metric,
                quantity,
                timestamp,
            } => {
                let key = (customer.clone(), metric.clone(), month_of(*timestamp));
                let total = state.usage.entry(key.clone()).or_insert(0.0);
                let ids = counted.entry(key.clone()).or_default();
                // Counted by a write whose event records were not all
                // stored: in the total already.
                if !ids.contains(&signal.id) {
                    *total += quantity;
                    ids.push(signal.id.clone());
                }
                let total = *total;
                totals.insert(key.clone());
                Some((Measure::Usage, Some(metric.as_str()), total, key.2))
            }
        };
        let Some((measure, metric, value, period)) = reading else {
            outcome.results.push((*i, status("stale")));
            outcome.events.push((signal.id.clone(), "stale"));
            continue;
        };
        outcome.results.push((*i, status("accepted")));
        outcome.events.push((signal.id.clone(), "accepted"));
        let seen = Observation {
            customer_id: customer,
            value,
            period,
            at: signal.occurred_at,
            signal: Some(signal),
        };
        for n in notifications
            .iter()
            .filter(|n| measure_of(n.event_type) == Some(measure) && n.watches(customer, metric))
        {
            let key = (n.id.clone(), customer.clone());
            let before = state.alerts.get(&key);
            let (next, crossings) = evaluate(n, before, &seen, now);
            // Only transitions are stored (the current value is in the
            // aggregates), so the hot path writes a row per event, not per threshold.
            let changed = match before {
                Some(b) => b.in_alarm != next.in_alarm || b.period != next.period,
                None => next.in_alarm,
            };
            if changed {
                alerts.insert(key.clone());
            }
            state.alerts.insert(key, next);
            emit(
                &crossings,
                n,
                customer,
                endpoints,
                now,
                &mut outcome.changes,
            );
        }
    }
    let changes = &mut outcome.changes;
    changes.balances = balances
        .into_iter()
        .map(|c| {
            let b = state.balances[&c].clone();
            (c, b)
        })
        .collect();
    changes.spends = spends
        .into_iter()
        .map(|c| {
            let s = state.spends[&c].clone();
            (c, s)
        })
        .collect();
    changes.counted = (totals.iter())
        .filter_map(|k| Some((k.clone(), counted.remove(k)?)))
        .collect();
    changes.versions = (totals.iter())
        .filter_map(|k| Some((k.clone(), *state.versions.get(k)?)))
        .collect();
    changes.usage = totals
        .into_iter()
        .map(|k| {
            let t = state.usage[&k];
            (k, t)
        })
        .collect();
    changes.alerts = alerts
        .into_iter()
        .map(|k| state.alerts[&k].clone())
        .collect();
    outcome
}

/// The messages and deliveries of a notification's crossings.
pub(super) fn emit(
    crossings: &[Crossing],
    n: &Notification,
    customer: &str,
    endpoints: &[Endpoint],
    now: Time,
    changes: &mut SignalChanges,
) {
    for crossing in crossings {
        let event_type =
            crate::event_type::EventType::parse(crossing.body["type"].as_str().unwrap_or_default())
                .unwrap_or(n.event_type);
        changes.messages.push(Message {
            id: crossing.webhook_id.clone(),
            body: crossing.body.to_string(),
        });
        changes
            .deliveries
            .extend(endpoints.iter().filter(|e| e.accepts(event_type)).map(|e| {
                Delivery::direct(
                    &crossing.webhook_id,
                    event_type,
                    &e.id,
                    customer,
                    Some(&n.id),
                    now,
                )
            }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::Signal;
    use crate::time::parse_time;
    use serde_json::json;

    fn t(text: &str) -> Time {
        parse_time(text).unwrap()
    }

    fn notification(body: serde_json::Value) -> Notification {
        Notification::create(&body, t("2026-11-01T00:00:00Z")).unwrap()
    }

    fn signal(id: &str, type_name: &str, at: &str, data: serde_json::Value) -> Signal {
        Signal::parse(id.into(), type_name, t(at), &data).unwrap()
    }

    fn endpoint() -> Endpoint {
        Endpoint::create(
            &json!({"url": "https://example.com/hook"}),
            &Default::default(),
            t("2026-11-01T00:00:00Z"),
        )
        .unwrap()
    }

    /// Runs a batch from empty state; returns statuses and the webhook types sent.
    fn run(
        signals: &[Signal],
        notifications: &[Notification],
        state: SignalState,
    ) -> (Vec<&'static str>, Vec<String>) {
        let indexed: Vec<_> = signals.iter().enumerate().collect();
        let outcome = decide_signals(
            &indexed,
            &mut HashSet::new(),
            state,
            notifications,
            &[endpoint()],
            t("2026-11-25T00:00:00Z"),
        );
        let statuses = outcome.results.iter().map(|(_, r)| r.status).collect();
        let types = outcome
            .changes
            .deliveries
            .iter()
            .map(|d| d.event_type.as_str().to_string())
            .collect();
        (statuses, types)
    }

    fn spend(id: &str, at: &str, period: &str, value: f64) -> Signal {
        signal(
            id,
            "spend.update",
            at,
            json!({"customer_id": "c_1", "period_start": period, "spend": value}),
        )
    }

    #[test]
    fn one_signal_jumping_over_several_thresholds_fires_each_once() {
        let ns: Vec<_> = [1_000, 5_000, 10_000]
            .map(|limit| {
                notification(
                    json!({"event_type": "alerts.spend_threshold_reached", "threshold": limit}),
                )
            })
            .to_vec();
        let (_, types) = run(
            &[spend(
                "s1",
                "2026-11-02T00:00:00Z",
                "2026-11-01T00:00:00Z",
                20_000.0,
            )],
            &ns,
            SignalState::default(),
        );
        assert_eq!(types, vec!["alerts.spend_threshold_reached"; 3]);
    }

    #[test]
    fn out_of_order_and_duplicate_signals_change_nothing() {
        let n = notification(
            json!({"event_type": "alerts.low_credit_balance_reached", "threshold": 10}),
        );
        let balance = |id: &str, at: &str, value: f64| {
            signal(
                id,
                "balance.update",
                at,
                json!({"customer_id": "c_1", "credit_balance": value}),
            )
        };
        let batch = [
            balance("b1", "2026-11-02T00:00:00Z", 50.0),
            balance("b0", "2026-11-01T00:00:00Z", 5.0),
            balance("b1", "2026-11-02T00:00:00Z", 50.0),
        ];
        let (statuses, types) = run(&batch, std::slice::from_ref(&n), SignalState::default());
        assert_eq!(statuses, ["accepted", "stale", "duplicate"]);
        assert!(
            types.is_empty(),
            "the older snapshot below the threshold is ignored"
        );

        let older_period = [
            spend("s1", "2026-12-02T00:00:00Z", "2026-12-01T00:00:00Z", 10.0),
            spend("s0", "2026-12-03T00:00:00Z", "2026-11-01T00:00:00Z", 999.0),
        ];
        let n =
            notification(json!({"event_type": "alerts.spend_threshold_reached", "threshold": 100}));
        let (statuses, types) = run(&older_period, &[n], SignalState::default());
        assert_eq!((statuses, types.len()), (vec!["accepted", "stale"], 0));
    }

    #[test]
    fn a_usage_event_a_stored_total_counts_already_is_not_counted_again() {
        let record = |id: &str, quantity: f64| {
            signal(
                id,
                "usage.record",
                "2026-11-20T00:00:00Z",
                json!({"customer_id": "c_1", "metric": "calls", "quantity": quantity,
                       "timestamp": "2026-11-20T00:00:00Z"}),
            )
        };
        let key: UsageKey = ("c_1".into(), "calls".into(), "2026-11".into());
        // A batch of three wrote the total 6 + 5 (u_0 remembered since, u_1
        // and u_2 not), then failed before its event records: retried.
        let mut state = SignalState::default();
        state.usage.insert(key.clone(), 11.0);
        let ids = ["u_0", "u_1"].map(String::from).into_iter().collect();
        state.counted.insert(key.clone(), ids);
        let batch = [record("u_1", 5.0), record("u_2", 7.0)];
        let indexed: Vec<_> = batch.iter().enumerate().collect();
        let outcome = decide_signals(
            &indexed,
            &mut HashSet::from(["u_0".to_string()]),
            state,
            &[],
            &[endpoint()],
            t("2026-11-25T00:00:00Z"),
        );
        let statuses: Vec<_> = outcome.results.iter().map(|(_, r)| r.status).collect();
        assert_eq!(statuses, ["accepted", "accepted"]);
        assert_eq!(outcome.changes.usage, vec![(key.clone(), 18.0)], "u_1 once");
        assert_eq!(
            outcome.changes.counted[&key],
            ["u_1", "u_2"],
            "u_0 is remembered as seen: no longer carried"
        );
    }

    #[test]
    fn usage_sums_per_month_and_a_late_record_of_an_old_month_fires_nothing() {
        let n = notification(
            json!({"event_type": "alerts.usage_threshold_reached", "metric": "calls", "threshold": 10}),
        );
        let record = |id: &str, when: &str, quantity: f64| {
            signal(
                id,
                "usage.record",
                when,
                json!({"customer_id": "c_1", "metric": "calls", "quantity": quantity, "timestamp": when}),
            )
        };
        let batch = [
            record("u1", "2026-12-01T00:00:00Z", 4.0),
            record("u2", "2026-11-30T23:59:59Z", 20.0),
            record("u3", "2026-12-05T00:00:00Z", 6.0),
        ];
        let (statuses, types) = run(&batch, std::slice::from_ref(&n), SignalState::default());
        assert_eq!(statuses, ["accepted"; 3]);
        assert_eq!(
            types,
            ["alerts.usage_threshold_reached"],
            "November's 20 is past; December reaches 10 on the third record"
        );
        let other_metric = signal(
            "u4",
            "usage.record",
            "2026-12-05T00:00:00Z",
            json!({"customer_id": "c_1", "metric": "gb", "quantity": 99, "timestamp": "2026-12-05T00:00:00Z"}),
        );
        assert!(
            run(&[other_metric], &[n], SignalState::default())
                .1
                .is_empty(),
            "another metric is not watched"
        );
    }

    #[test]
    fn filters_limit_customers_and_disabled_notifications_stay_quiet() {
        let mine = notification(
            json!({"event_type": "alerts.spend_threshold_reached", "threshold": 1, "filter": {"customer_ids": ["c_2"]}}),
        );
        let mut off =
            notification(json!({"event_type": "alerts.spend_threshold_reached", "threshold": 1}));
        off.enabled = false;
        let (_, types) = run(
            &[spend(
                "s1",
                "2026-11-02T00:00:00Z",
                "2026-11-01T00:00:00Z",
                50.0,
            )],
            &[mine, off],
            SignalState::default(),
        );
        assert!(types.is_empty());
    }
}
