//! Usage aggregates and alert states.

use super::deliveries::insert_delivery;
use super::messages::Packed;
use super::{all, millis, to_json, unavailable, SqliteStore};
use lifecycle_core::ports::{
    Balance, Measure, SignalChanges, SignalState, Spend, StoreResult, UsageKey,
};
use lifecycle_core::threshold::AlertState;
use lifecycle_core::time::from_millis as from_millis_ok;
use rusqlite::Connection;

/// Upserts the aggregates and alert states and inserts the crossings' webhooks.
/// Writes the changes; `messages`: theirs, packed (`Packed::all`).
pub(super) fn write_changes(
    tx: &Connection,
    changes: &SignalChanges,
    messages: &[Packed],
) -> StoreResult<()> {
    let run = |sql: &str, values: &[&dyn rusqlite::ToSql]| -> StoreResult<()> {
        tx.prepare_cached(sql)
            .and_then(|mut s| s.execute(values))
            .map(drop)
            .map_err(unavailable)
    };
    for (customer, b) in &changes.balances {
        run(
            "INSERT OR REPLACE INTO balances (customer_id, value, occurred_at) VALUES (?1, ?2, ?3)",
            &[customer, &b.value, &millis(b.occurred_at)],
        )?;
    }
    for (customer, s) in &changes.spends {
        run(
            "INSERT OR REPLACE INTO spends (customer_id, period, value, occurred_at) VALUES (?1, ?2, ?3, ?4)",
            &[customer, &s.period, &s.value, &millis(s.occurred_at)],
        )?;
    }
    for ((customer, metric, month), total) in &changes.usage {
        run(
            "INSERT OR REPLACE INTO usage_totals (customer_id, metric, month, total) VALUES (?1, ?2, ?3, ?4)",
            &[customer, metric, month, total],
        )?;
    }
    for alert in &changes.alerts {
        run(
            "INSERT OR REPLACE INTO alerts (notification_id, customer_id, record) VALUES (?1, ?2, ?3)",
            &[&alert.notification_id, &alert.customer_id, &to_json(alert)],
        )?;
    }
    for message in messages {
        super::messages::insert(tx, message)?;
    }
    for delivery in &changes.deliveries {
        insert_delivery(tx, delivery, &to_json(delivery))?;
    }
    Ok(())
}

/// `?,?,?` for n values.
fn marks(n: usize) -> String {
    vec!["?"; n].join(",")
}

fn load(c: &Connection, customers: &[String], usage: &[UsageKey]) -> StoreResult<SignalState> {
    let mut state = SignalState::default();
    if !customers.is_empty() {
        let ids = rusqlite::params_from_iter(customers);
        let sql = format!(
            "SELECT customer_id, value, occurred_at FROM balances WHERE customer_id IN ({})",
            marks(customers.len())
        );
        let mut statement = c.prepare(&sql).map_err(unavailable)?;
        let rows = statement
            .query_map(ids, |r| {
                Ok((r.get::<_, String>(0)?, r.get(1)?, r.get::<_, i64>(2)?))
            })
            .map_err(unavailable)?;
        for row in rows {
            let (customer, value, at) = row.map_err(unavailable)?;
            state.balances.insert(
                customer,
                Balance {
                    value,
                    occurred_at: from_millis_ok(at),
                },
            );
        }
        let sql = format!(
            "SELECT customer_id, period, value, occurred_at FROM spends WHERE customer_id IN ({})",
            marks(customers.len())
        );
        let mut statement = c.prepare(&sql).map_err(unavailable)?;
        let rows = statement
            .query_map(rusqlite::params_from_iter(customers), |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .map_err(unavailable)?;
        for row in rows {
            let (customer, period, value, at) = row.map_err(unavailable)?;
            state.spends.insert(
                customer,
                Spend {
                    period,
                    value,
                    occurred_at: from_millis_ok(at),
                },
            );
        }
        let sql = format!(
            "SELECT record FROM alerts WHERE customer_id IN ({})",
            marks(customers.len())
        );
        for alert in all::<AlertState>(c, &sql, rusqlite::params_from_iter(customers))? {
            state.alerts.insert(
                (alert.notification_id.clone(), alert.customer_id.clone()),
                alert,
            );
        }
    }
    if !usage.is_empty() {
        let rows = vec!["(?,?,?)"; usage.len()].join(",");
        let sql = format!(
            "SELECT customer_id, metric, month, total FROM usage_totals WHERE (customer_id, metric, month) IN (VALUES {rows})"
        );
        let values = usage.iter().flat_map(|(c, m, month)| [c, m, month]);
        let mut statement = c.prepare(&sql).map_err(unavailable)?;
        let found = statement
            .query_map(rusqlite::params_from_iter(values), |r| {
                Ok(((r.get(0)?, r.get(1)?, r.get(2)?), r.get(3)?))
            })
            .map_err(unavailable)?;
        for row in found {
            let (key, total): (UsageKey, f64) = row.map_err(unavailable)?;
            state.usage.insert(key, total);
        }
    }
    Ok(state)
}

impl SqliteStore {
    pub(super) async fn load_signal_state(
        &self,
        customers: Vec<String>,
        usage: Vec<UsageKey>,
    ) -> StoreResult<SignalState> {
        self.read(move |c| load(c, &customers, &usage)).await
    }

    pub(super) async fn save_signal_changes(&self, changes: SignalChanges) -> StoreResult<()> {
        let messages = Packed::all(&changes.messages);
        self.durably(move |c| {
            let tx = c.transaction().map_err(unavailable)?;
            write_changes(&tx, &changes, &messages)?;
            tx.commit().map_err(unavailable)
        })
        .await
    }

    pub(super) async fn load_current_values(
        &self,
        measure: Measure,
        metric: Option<String>,
        month: String,
    ) -> StoreResult<Vec<(String, f64, String)>> {
        self.read(move |c| {
            let (sql, values): (&str, Vec<String>) = match measure {
                Measure::Balance => ("SELECT customer_id, value, '' FROM balances", vec![]),
                Measure::Spend => ("SELECT customer_id, value, period FROM spends", vec![]),
                Measure::Usage => (
                    "SELECT customer_id, total, month FROM usage_totals WHERE metric = ?1 AND month = ?2",
                    vec![metric.unwrap_or_default(), month],
                ),
            };
            let mut statement = c.prepare(sql).map_err(unavailable)?;
            let rows = statement
                .query_map(rusqlite::params_from_iter(values), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(unavailable)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
        })
        .await
    }

    pub(super) async fn load_alerts_of(&self, customer_id: String) -> StoreResult<Vec<AlertState>> {
        self.read(move |c| {
            all(
                c,
                "SELECT record FROM alerts WHERE customer_id = ?1",
                [customer_id],
            )
        })
        .await
    }
}
