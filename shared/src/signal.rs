//! Usage signals: `balance.update` and `spend.update` (snapshots) and
//! `usage.record` (increments summed per customer, metric and UTC month).

use crate::error::ApiError;
use crate::fields::Fields;
use crate::time::{format_time, Time};
use serde_json::{json, Value};

#[derive(Clone, Debug, PartialEq)]
pub struct Signal {
    pub id: String,
    pub occurred_at: Time,
    pub customer_id: String,
    pub reading: Reading,
}

/// What a signal read (a threshold watches a `threshold::Measure` of these).
#[derive(Clone, Debug, PartialEq)]
pub enum Reading {
    /// The remaining credit balance now.
    Balance {
        credit_balance: f64,
        currency: Option<String>,
    },
    /// Cumulative spend in the billing period that started at `period_start`.
    Spend { period_start: Time, spend: f64 },
    /// An increment of a metric at a time.
    Usage {
        metric: String,
        quantity: f64,
        timestamp: Time,
    },
}

impl Signal {
    pub fn type_name(&self) -> &'static str {
        match self.reading {
            Reading::Balance { .. } => "balance.update",
            Reading::Spend { .. } => "spend.update",
            Reading::Usage { .. } => "usage.record",
        }
    }

    /// Reads the `data` of a signal event; `type_name` is already known to be a signal.
    pub fn parse(
        id: String,
        type_name: &str,
        occurred_at: Time,
        data: &Value,
    ) -> Result<Signal, ApiError> {
        let under = |e: ApiError| e.under("data");
        let f = Fields::of(data, "data")?;
        let customer_id = f.id("customer_id").map_err(under)?;
        let number = |name: &str, non_negative: bool| -> Result<f64, ApiError> {
            let value = f.required(name).map_err(under)?;
            let n = value.as_f64().filter(|n| n.is_finite());
            match n {
                Some(n) if !non_negative || n >= 0.0 => Ok(n),
                _ => {
                    let rule = if non_negative {
                        "a finite number >= 0"
                    } else {
                        "a finite number"
                    };
                    Err(ApiError::invalid(
                        format!("data.{name}"),
                        format!("`{name}` must be {rule}"),
                    ))
                }
            }
        };
        let reading = match type_name {
            "balance.update" => Reading::Balance {
                credit_balance: number("credit_balance", false)?,
                currency: f.optional_string("currency").map_err(under)?,
            },
            "spend.update" => Reading::Spend {
                period_start: f.time("period_start").map_err(under)?,
                spend: number("spend", true)?,
            },
            _ => {
                let metric = f.id("metric").map_err(under)?;
                check_metric(&metric).map_err(|e| e.under("data"))?;
                Reading::Usage {
                    metric,
                    quantity: number("quantity", true)?,
                    timestamp: f.time("timestamp").map_err(under)?,
                }
            }
        };
        Ok(Signal {
            id,
            occurred_at,
            customer_id,
            reading,
        })
    }

    /// The signal as the payloads show it.
    pub fn view(&self) -> Value {
        let data = match &self.reading {
            Reading::Balance {
                credit_balance,
                currency,
            } => json!({"credit_balance": credit_balance, "currency": currency}),
            Reading::Spend {
                period_start,
                spend,
            } => json!({"period_start": period_start, "spend": spend}),
            Reading::Usage {
                metric,
                quantity,
                timestamp,
            } => json!({"metric": metric, "quantity": quantity, "timestamp": timestamp}),
        };
        let mut view = json!({"id": self.id, "type": self.type_name(), "occurred_at": self.occurred_at, "data": data});
        view["data"]["customer_id"] = json!(self.customer_id);
        view
    }
}

/// A metric name: ASCII letters, digits and `_ - . : /` (the field is `metric`).
pub fn check_metric(metric: &str) -> Result<(), ApiError> {
    if metric
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-.:/".contains(c))
    {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "metric",
            "`metric` may hold letters, digits and _ - . : / only",
        ))
    }
}

pub fn is_signal_type(name: &str) -> bool {
    matches!(name, "balance.update" | "spend.update" | "usage.record")
}

/// The UTC calendar month of a time: `2026-11`.
pub fn month_of(time: Time) -> String {
    format_time(time)[..7].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_time;

    fn parse(type_name: &str, data: Value) -> Result<Signal, ApiError> {
        Signal::parse(
            "ev_1".into(),
            type_name,
            parse_time("2026-11-25T00:00:00Z").unwrap(),
            &data,
        )
    }

    #[test]
    fn the_three_signals_parse() {
        let usage = parse("usage.record", json!({"customer_id": "c_1", "metric": "api_calls", "quantity": 3, "timestamp": "2026-11-30T23:59:59Z"})).unwrap();
        assert!(matches!(usage.reading, Reading::Usage { quantity, .. } if quantity == 3.0));
        let balance = parse(
            "balance.update",
            json!({"customer_id": "c_1", "credit_balance": -5.5}),
        )
        .unwrap();
        assert!(
            matches!(balance.reading, Reading::Balance { credit_balance, .. } if credit_balance == -5.5)
        );
        assert!(parse(
            "spend.update",
            json!({"customer_id": "c_1", "period_start": "2026-11-01T00:00:00Z", "spend": 10})
        )
        .is_ok());
        assert_eq!(
            month_of(parse_time("2026-11-30T23:59:59Z").unwrap()),
            "2026-11"
        );
    }

    #[test]
    fn bad_signals_name_the_field() {
        let cases = [
            (
                "usage.record",
                json!({"customer_id": "c_1", "metric": "m", "quantity": -1, "timestamp": "2026-11-01T00:00:00Z"}),
                "data.quantity",
            ),
            (
                "usage.record",
                json!({"customer_id": "c_1", "metric": {"name": "m"}, "quantity": 1, "timestamp": "2026-11-01T00:00:00Z"}),
                "data.metric",
            ),
            (
                "usage.record",
                json!({"customer_id": "c_1", "metric": "a b", "quantity": 1, "timestamp": "2026-11-01T00:00:00Z"}),
                "data.metric",
            ),
            (
                "usage.record",
                json!({"metric": "m", "quantity": 1, "timestamp": "2026-11-01T00:00:00Z"}),
                "data.customer_id",
            ),
            (
                "balance.update",
                json!({"customer_id": "c_1", "credit_balance": "10"}),
                "data.credit_balance",
            ),
            (
                "spend.update",
                json!({"customer_id": "c_1", "period_start": "2026-11-01T00:00:00Z", "spend": -3}),
                "data.spend",
            ),
            (
                "spend.update",
                json!({"customer_id": "c_1", "spend": 3}),
                "data.period_start",
            ),
        ];
        for (type_name, data, field) in cases {
            let error = parse(type_name, data.clone()).unwrap_err();
            assert_eq!(
                (error.status, error.field.as_deref()),
                (422, Some(field)),
                "{data}"
            );
        }
    }
}
