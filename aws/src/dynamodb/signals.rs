//! Usage aggregates (balance, spend, usage totals) and alert states, in the
//! customer's partition; the `lookup` index finds the customers having a measure.

use super::keys::{alert_item, customer_pk, delivery_item, measure_lookup, message_item, shard};
use super::reads::Query;
use super::tx::{Action, OnFail};
use super::{key, n, record, s, text, DynamoStore, Item};
use lifecycle_core::ports::{
    Balance, Measure, SignalChanges, SignalState, Spend, StoreResult, UsageKey,
};
use lifecycle_core::threshold::AlertState;
use lifecycle_core::time::Time;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

#[derive(Serialize, Deserialize)]
struct Aggregate {
    value: f64,
    #[serde(default)]
    period: String,
    #[serde(default)]
    occurred_at: Option<Time>,
    /// A usage total's events that may not be remembered as seen yet
    /// (`SignalState::counted`): written only by a batch that puts its
    /// event records in later transactions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    counted: Vec<String>,
}

fn usage_sk(metric: &str, month: &str) -> String {
    format!("U#{metric}#{month}")
}

fn usage_lookup(metric: &str, month: &str) -> String {
    format!("M#USE#{metric}#{month}")
}

fn aggregate_item(customer: &str, sk: &str, t: &str, lookup: &str, value: &Aggregate) -> Item {
    let mut item = key(customer_pk(customer), sk);
    item.insert("t".into(), s(t));
    item.insert("r".into(), s(super::to_json(value)));
    item.insert("g1pk".into(), s(measure_lookup(lookup, shard(customer))));
    item.insert("g1sk".into(), s(customer));
    item
}

impl DynamoStore {
    /// Upserts of aggregates and alert states; crossings' messages and
    /// deliveries inserted at most once. A usage total keeps the events it
    /// counts but for those `remembered` in the same transaction.
    pub(super) fn signal_actions(
        &self,
        changes: &SignalChanges,
        remembered: &HashSet<&str>,
    ) -> StoreResult<Vec<Action>> {
        let table = &self.table;
        let mut actions = Vec::new();
        for (customer, b) in &changes.balances {
            let value = Aggregate {
                value: b.value,
                period: String::new(),
                occurred_at: Some(b.occurred_at),
                counted: Vec::new(),
            };
            actions.push(Action::put(
                table,
                aggregate_item(customer, "BAL", "BAL", "M#BAL", &value),
            )?);
        }
        for (customer, spend) in &changes.spends {
            let value = Aggregate {
                value: spend.value,
                period: spend.period.clone(),
                occurred_at: Some(spend.occurred_at),
                counted: Vec::new(),
            };
            actions.push(Action::put(
                table,
                aggregate_item(customer, "SPEND", "SPD", "M#SPEND", &value),
            )?);
        }
        for (usage, total) in &changes.usage {
            let (customer, metric, month) = usage;
            let counted = (changes.counted.get(usage).into_iter().flatten())
                .filter(|id| !remembered.contains(id.as_str()))
                .cloned()
                .collect();
            let value = Aggregate {
                value: *total,
                period: month.clone(),
                occurred_at: None,
                counted,
            };
            let mut item = aggregate_item(
                customer,
                &usage_sk(metric, month),
                "USE",
                &usage_lookup(metric, month),
                &value,
            );
            // Over the version it was computed from: a batch for the same
            // customer committed meanwhile makes this one read and add again.
            let read = changes.versions.get(usage).copied();
            item.insert("v".into(), n(read.unwrap_or(0) + 1));
            let reason = format!("the usage total of {customer} changed concurrently");
            actions.push(match read {
                None => Action::insert(table, item, OnFail::Conflict(reason))?,
                // Written before totals had versions: none yet.
                Some(0) => Action::put_if(
                    table,
                    item,
                    Some("attribute_not_exists(v)"),
                    vec![],
                    OnFail::Conflict(reason),
                )?,
                Some(version) => Action::put_if(
                    table,
                    item,
                    Some("v = :read"),
                    vec![(":read", n(version))],
                    OnFail::Conflict(reason),
                )?,
            });
        }
        for alert in &changes.alerts {
            actions.push(Action::put(table, alert_item(alert))?);
        }
        let made = (changes.deliveries.iter())
            .map(|d| d.created_at)
            .min()
            .unwrap_or_default();
        for message in &changes.messages {
            actions.push(Action::insert(
                table,
                self.expiring(message_item(&message.id, &message.body), made),
                OnFail::Ignore,
            )?);
        }
        for delivery in &changes.deliveries {
            actions.push(Action::insert(
                table,
                self.expiring(delivery_item(delivery), delivery.created_at),
                OnFail::Ignore,
            )?);
        }
        Ok(actions)
    }

    pub(super) async fn load_signal_state(
        &self,
        customers: &[String],
        usage: &[UsageKey],
    ) -> StoreResult<SignalState> {
        let mut keys = Vec::new();
        for customer in customers {
            keys.push(key(customer_pk(customer), "BAL"));
            keys.push(key(customer_pk(customer), "SPEND"));
        }
        for (customer, metric, month) in usage {
            keys.push(key(customer_pk(customer), usage_sk(metric, month)));
        }
        let mut state = SignalState::default();
        for item in self.batch_get(keys).await? {
            let customer = text(&item, "pk")?.trim_start_matches("C#").to_string();
            let value: Aggregate = record(&item)?;
            let at = value.occurred_at.unwrap_or_default();
            match text(&item, "t")? {
                "BAL" => {
                    state.balances.insert(
                        customer,
                        Balance {
                            value: value.value,
                            occurred_at: at,
                        },
                    );
                }
                "SPD" => {
                    state.spends.insert(
                        customer,
                        Spend {
                            period: value.period,
                            value: value.value,
                            occurred_at: at,
                        },
                    );
                }
                "USE" => {
                    let sk = text(&item, "sk")?;
                    let metric = sk
                        .strip_prefix("U#")
                        .and_then(|rest| rest.strip_suffix(&format!("#{}", value.period)))
                        .unwrap_or_default()
                        .to_string();
                    let usage = (customer, metric, value.period);
                    // Written before totals had versions: 0.
                    let version = super::number(&item, "v").unwrap_or(0);
                    state.versions.insert(usage.clone(), version);
                    if !value.counted.is_empty() {
                        let counted = value.counted.into_iter().collect();
                        state.counted.insert(usage.clone(), counted);
                    }
                    state.usage.insert(usage, value.value);
                }
                _ => {}
            }
        }
        let queries = customers
            .iter()
            .map(|c| Query::partition_prefix(customer_pk(c), "A#"))
            .collect();
        for items in self.query_many(queries).await? {
            for item in &items {
                let alert: AlertState = record(item)?;
                state.alerts.insert(
                    (alert.notification_id.clone(), alert.customer_id.clone()),
                    alert,
                );
            }
        }
        Ok(state)
    }

    /// Each chunk stands on its own (upserts, insert-once items), so changes
    /// beyond one transaction are written in chunks.
    pub(super) async fn save_signal_changes(&self, changes: &SignalChanges) -> StoreResult<()> {
        self.note_timeline(changes.deliveries.iter()).await?;
        self.transact_chunks(self.signal_actions(changes, &HashSet::new())?)
            .await
    }

    pub(super) async fn load_current_values(
        &self,
        measure: Measure,
        metric: Option<&str>,
        month: &str,
    ) -> StoreResult<Vec<(String, f64, String)>> {
        let (prefix, sk) = match measure {
            Measure::Balance => ("M#BAL".to_string(), "BAL".to_string()),
            Measure::Spend => ("M#SPEND".to_string(), "SPEND".to_string()),
            Measure::Usage => {
                let metric = metric.unwrap_or_default();
                (usage_lookup(metric, month), usage_sk(metric, month))
            }
        };
        let queries = (0..16u8)
            .map(|shard| {
                Query::new(Some("lookup"), "g1pk = :pk")
                    .value(":pk", measure_lookup(&prefix, shard))
            })
            .collect();
        let mut keys = Vec::new();
        for items in self.query_many(queries).await? {
            for item in &items {
                keys.push(key(customer_pk(text(item, "g1sk")?), sk.clone()));
            }
        }
        let mut values = Vec::new();
        for item in self.batch_get(keys).await? {
            let customer = text(&item, "pk")?.trim_start_matches("C#").to_string();
            let value: Aggregate = record(&item)?;
            values.push((customer, value.value, value.period));
        }
        Ok(values)
    }

    pub(super) async fn load_alerts_of(&self, customer_id: &str) -> StoreResult<Vec<AlertState>> {
        let items = self
            .query_all(Query::partition_prefix(customer_pk(customer_id), "A#"))
            .await?;
        items.iter().map(record).collect()
    }
}
