//! The functions' CloudWatch metrics, in the embedded metric format (EMF):
//! the core's counters (`lifecycle_core::metrics::Metrics`) accumulate in
//! memory during an invocation, and at its end (`Runtime::end_invocation`)
//! become JSON documents, one a line, on standard output, which Lambda
//! sends to the function's log group, where CloudWatch extracts them as
//! metrics under the namespace the template gives (`METRICS_NAMESPACE`).
//! No API call, no client.
//!
//! What a line holds (the specification's rules, checked by the tests): a
//! root `_aws` object with `Timestamp` (milliseconds) and `CloudWatchMetrics`,
//! one directive naming the namespace, its dimension sets and its metric
//! definitions; every name a directive references is a member of the root,
//! a dimension's a string, a metric's a number or, for the delivery lag, a
//! distribution (`Values` the upper bounds of the core's lag buckets,
//! `Counts` how many lags each holds, with `Max`, `Min`, `Count` and `Sum`
//! of those values: the form AWS's own embedded-metrics libraries write for
//! histograms, from which CloudWatch computes p50 and p99).
//!
//! | Metric | Unit | Dimension sets |
//! |---|---|---|
//! | `events_ingested` | Count | `[type]`, `[]` |
//! | `webhooks_fired` | Count | `[event_type]`, `[]` |
//! | `delivery_attempts` | Count | `[outcome]`, `[]` |
//! | `delivery_lag_seconds` | Seconds | `[]` |
//!
//! The empty set publishes the metric without dimensions as well: the total
//! a dashboard graphs and an alarm watches.

use lifecycle_core::event_type::EventType;
use lifecycle_core::metrics::{self as families, AttemptOutcome, Metrics};
use lifecycle_core::stats::LagHistogram;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// The namespace when `METRICS_NAMESPACE` is not set (the template always sets it).
pub const DEFAULT_NAMESPACE: &str = "Lifecycle";

/// The most values (and counts) one metric of one document may carry.
pub const MAX_VALUES: usize = 100;

/// The CloudWatch name of a family of `lifecycle_core::metrics`: the family
/// less its `lifecycle_` prefix (the namespace already says whose they are).
/// The one rule; the template's dashboard and alarm use the names it gives
/// (a test reads them from the template).
pub fn metric_name(family: &str) -> &str {
    family.strip_prefix("lifecycle_").unwrap_or(family)
}

/// The dimensions, named as the local runtime's Prometheus labels are.
pub const TYPE: &str = "type";
pub const EVENT_TYPE: &str = "event_type";
pub const OUTCOME: &str = "outcome";

/// Each counted family: its CloudWatch name, unit and dimension (None: the
/// lag, written without dimensions).
pub fn written() -> [(&'static str, &'static str, Option<&'static str>); 4] {
    [
        (metric_name(families::EVENTS_INGESTED), "Count", Some(TYPE)),
        (
            metric_name(families::WEBHOOKS_FIRED),
            "Count",
            Some(EVENT_TYPE),
        ),
        (
            metric_name(families::DELIVERY_ATTEMPTS),
            "Count",
            Some(OUTCOME),
        ),
        (metric_name(families::DELIVERY_LAG), "Seconds", None),
    ]
}

#[derive(Debug, Default)]
struct Counts {
    ingested: BTreeMap<String, u64>,
    fired: BTreeMap<&'static str, u64>,
    attempts: BTreeMap<AttemptOutcome, u64>,
    lag: LagHistogram,
}

/// Where the lines go: standard output on Lambda, a buffer in tests.
pub type Output = Box<dyn Write + Send>;

/// The EMF implementation of the core's `Metrics`, one per execution
/// environment, emptied at the end of each invocation.
pub struct EmfMetrics {
    namespace: String,
    counts: Mutex<Counts>,
    out: Mutex<Output>,
}

impl EmfMetrics {
    pub fn new(namespace: impl Into<String>, out: Output) -> Self {
        EmfMetrics {
            namespace: namespace.into(),
            counts: Mutex::default(),
            out: Mutex::new(out),
        }
    }

    /// Writing to standard output, as a function does.
    pub fn stdout(namespace: impl Into<String>) -> Self {
        Self::new(namespace, Box::new(std::io::stdout()))
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Sends the lines elsewhere from now on (tests capture them).
    pub fn write_to(&self, out: Output) {
        *self.out.lock().unwrap_or_else(|p| p.into_inner()) = out;
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The documents of what was counted since the last call, stamped
    /// `timestamp_ms`; the counts start again from zero.
    pub fn take_lines(&self, timestamp_ms: i64) -> Vec<String> {
        let counts = std::mem::take(&mut *self.counts());
        let [ingested, fired, attempts, lag] = written();
        let mut lines = Vec::new();
        let mut counted =
            |(name, unit, dimension): (&str, &str, Option<&str>), value: &str, count: u64| {
                let dimension = dimension.expect("a counter has a dimension");
                let mut root = Map::new();
                root.insert(dimension.into(), json!(value));
                root.insert(name.into(), json!(count));
                lines.push(self.document(timestamp_ms, &[&[dimension], &[]], name, unit, root));
            };
        for (type_name, count) in &counts.ingested {
            counted(ingested, type_name, *count);
        }
        for (event_type, count) in &counts.fired {
            counted(fired, event_type, *count);
        }
        for (outcome, count) in &counts.attempts {
            counted(attempts, outcome.as_str(), *count);
        }
        let buckets: Vec<(u16, u64)> = counts.lag.0.iter().map(|(b, c)| (*b, *c)).collect();
        let (name, unit, _) = lag;
        for chunk in buckets.chunks(MAX_VALUES) {
            let values: Vec<f64> = (chunk.iter())
                .map(|(bucket, _)| LagHistogram::upper_bound(*bucket))
                .collect();
            let counts: Vec<u64> = chunk.iter().map(|(_, count)| *count).collect();
            let sum: f64 = values.iter().zip(&counts).map(|(v, c)| v * *c as f64).sum();
            let distribution = json!({
                "Values": values,
                "Counts": counts,
                "Max": values.last(),
                "Min": values.first(),
                "Count": counts.iter().sum::<u64>(),
                "Sum": sum,
            });
            let mut root = Map::new();
            root.insert(name.into(), distribution);
            lines.push(self.document(timestamp_ms, &[&[]], name, unit, root));
        }
        lines
    }

    fn document(
        &self,
        timestamp_ms: i64,
        dimensions: &[&[&str]],
        name: &str,
        unit: &str,
        mut root: Map<String, Value>,
    ) -> String {
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": dimensions,
                    "Metrics": [{"Name": name, "Unit": unit}],
                }],
            }),
        );
        Value::Object(root).to_string()
    }

    /// Writes the documents of what was counted since the last call, one a
    /// line (each line in one write, so log lines never split one); a
    /// failed write is logged, never the invocation's failure.
    pub fn emit(&self, timestamp_ms: i64) {
        let lines = self.take_lines(timestamp_ms);
        if lines.is_empty() {
            return;
        }
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        for line in lines {
            if let Err(error) = out.write_all(format!("{line}\n").as_bytes()) {
                tracing::warn!(%error, "could not write a metrics line");
            }
        }
        if let Err(error) = out.flush() {
            tracing::warn!(%error, "could not flush the metrics lines");
        }
    }
}

impl Metrics for EmfMetrics {
    fn events_ingested(&self, type_name: &str, count: u64) {
        *self.counts().ingested.entry(type_name.into()).or_default() += count;
    }

    fn webhooks_fired(&self, event_type: EventType, count: u64) {
        *self.counts().fired.entry(event_type.as_str()).or_default() += count;
    }

    fn delivery_attempt(&self, outcome: AttemptOutcome, lag_seconds: Option<f64>) {
        let mut counts = self.counts();
        *counts.attempts.entry(outcome).or_default() += 1;
        if let Some(lag) = lag_seconds {
            counts.lag.add(lag);
        }
    }
}

/// A shared buffer of written lines (tests, the storm harness).
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Every line written so far.
    pub fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Captured {
    /// The bytes written so far.
    pub fn bytes(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        (self.0.lock().unwrap_or_else(|p| p.into_inner())).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The specification's rules for one document (a JSON object on one line):
/// `_aws` with an integer `Timestamp` and a non-empty `CloudWatchMetrics`,
/// each directive with a `Namespace` (1 to 255 characters, not `AWS/`),
/// at least one dimension set of at most 30 keys, each key a member of the
/// root with a string value, and 1 to 100 metric definitions, each `Name` a
/// member of the root holding a number, an array of at most 100 numbers or
/// a distribution (`Values` and `Counts` of one length, at most 100), each
/// `Unit` a CloudWatch unit. Returns the document, or what is wrong.
pub fn check_document(line: &str) -> Result<Value, String> {
    let root: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let root_map = root.as_object().ok_or("not an object")?;
    let aws = root_map
        .get("_aws")
        .and_then(Value::as_object)
        .ok_or("no _aws object")?;
    if !aws.get("Timestamp").is_some_and(Value::is_i64) {
        return Err("_aws.Timestamp is not an integer".into());
    }
    let directives = aws
        .get("CloudWatchMetrics")
        .and_then(Value::as_array)
        .filter(|d| !d.is_empty())
        .ok_or("no CloudWatchMetrics directives")?;
    for directive in directives {
        let namespace = directive["Namespace"].as_str().ok_or("no Namespace")?;
        if namespace.is_empty() || namespace.len() > 255 || namespace.starts_with("AWS/") {
            return Err(format!("namespace `{namespace}`"));
        }
        let sets = directive["Dimensions"]
            .as_array()
            .filter(|s| !s.is_empty())
            .ok_or("no dimension sets")?;
        for set in sets {
            let keys = set.as_array().ok_or("a dimension set is not an array")?;
            if keys.len() > 30 {
                return Err("more than 30 dimensions".into());
            }
            for key in keys {
                let key = key.as_str().ok_or("a dimension key is not a string")?;
                if !root_map.get(key).is_some_and(Value::is_string) {
                    return Err(format!(
                        "dimension `{key}` is not a string member of the root"
                    ));
                }
            }
        }
        let metrics = directive["Metrics"]
            .as_array()
            .filter(|m| !m.is_empty() && m.len() <= 100)
            .ok_or("no metric definitions, or more than 100")?;
        for metric in metrics {
            let name = metric["Name"].as_str().ok_or("a metric has no Name")?;
            if name.is_empty() || name.len() > 255 {
                return Err(format!("metric name `{name}`"));
            }
            if let Some(unit) = metric.get("Unit") {
                let unit = unit.as_str().unwrap_or_default();
                if !UNITS.contains(&unit) {
                    return Err(format!("unit `{unit}`"));
                }
            }
            check_value(name, root_map.get(name))?;
        }
    }
    Ok(root)
}

fn check_value(name: &str, value: Option<&Value>) -> Result<(), String> {
    let numbers = |v: &Value| {
        v.as_array()
            .filter(|a| a.len() <= MAX_VALUES && a.iter().all(Value::is_number))
            .map(Vec::len)
    };
    match value {
        Some(v) if v.is_number() => Ok(()),
        Some(v @ Value::Array(_)) if numbers(v).is_some() => Ok(()),
        Some(Value::Object(d)) => {
            let values = d.get("Values").and_then(numbers);
            let counts = d.get("Counts").and_then(numbers);
            let stats = ["Max", "Min", "Count", "Sum"]
                .iter()
                .all(|k| d.get(*k).is_some_and(Value::is_number));
            match (values, counts) {
                (Some(v), Some(c)) if v == c && v > 0 && stats => Ok(()),
                _ => Err(format!("metric `{name}` is not a distribution: {d:?}")),
            }
        }
        other => Err(format!("metric `{name}` is {other:?}")),
    }
}

/// CloudWatch's units (`MetricDatum`).
const UNITS: [&str; 27] = [
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> (EmfMetrics, Captured) {
        let captured = Captured::default();
        let metrics = EmfMetrics::new("Lifecycle/test", Box::new(captured.clone()));
        (metrics, captured)
    }

    #[test]
    fn names_come_from_the_core_families() {
        assert_eq!(metric_name(families::WEBHOOKS_FIRED), "webhooks_fired");
        assert_eq!(metric_name(families::DELIVERY_LAG), "delivery_lag_seconds");
        let names: Vec<&str> = written().iter().map(|(n, _, _)| *n).collect();
        assert_eq!(
            names,
            [
                "events_ingested",
                "webhooks_fired",
                "delivery_attempts",
                "delivery_lag_seconds"
            ]
        );
    }

    #[test]
    fn an_invocation_writes_one_valid_line_per_dimension_value_and_the_lag() {
        let (metrics, captured) = metrics();
        metrics.events_ingested("contract.create", 2);
        metrics.events_ingested("contract.create", 1);
        metrics.webhooks_fired(EventType::ContractEnd, 4);
        metrics.delivery_attempt(AttemptOutcome::Success, Some(0.5));
        metrics.delivery_attempt(AttemptOutcome::Success, Some(0.5));
        metrics.delivery_attempt(AttemptOutcome::Success, Some(30.0));
        metrics.delivery_attempt(AttemptOutcome::Failure, None);
        metrics.delivery_attempt(AttemptOutcome::Timeout, None);
        metrics.emit(1_764_684_000_000);
        let lines = captured.lines();
        assert_eq!(lines.len(), 6, "{lines:#?}");
        let documents: Vec<Value> = lines
            .iter()
            .map(|l| check_document(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        let find = |name: &str, key: &str, value: &str| {
            documents
                .iter()
                .find(|d| d.get(name).is_some() && d[key] == json!(value))
                .unwrap_or_else(|| panic!("{name} {key}={value}"))
        };
        let ingested = find("events_ingested", "type", "contract.create");
        assert_eq!(ingested["events_ingested"], json!(3));
        let directive = &ingested["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], json!("Lifecycle/test"));
        assert_eq!(directive["Dimensions"], json!([["type"], []]));
        assert_eq!(ingested["_aws"]["Timestamp"], json!(1_764_684_000_000i64));
        assert_eq!(
            find("webhooks_fired", "event_type", "contract.end")["webhooks_fired"],
            json!(4)
        );
        for (outcome, count) in [("success", 3), ("failure", 1), ("timeout", 1)] {
            let line = find("delivery_attempts", "outcome", outcome);
            assert_eq!(line["delivery_attempts"], json!(count), "{outcome}");
        }
        let lag = documents
            .iter()
            .find(|d| d.get("delivery_lag_seconds").is_some())
            .unwrap();
        assert_eq!(
            lag["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([[]])
        );
        let distribution = &lag["delivery_lag_seconds"];
        assert_eq!(distribution["Counts"], json!([2, 1]));
        assert_eq!(distribution["Count"], json!(3));
        let values: Vec<f64> = serde_json::from_value(distribution["Values"].clone()).unwrap();
        assert_eq!(
            values,
            [
                LagHistogram::upper_bound(LagHistogram::bucket(0.5)),
                LagHistogram::upper_bound(LagHistogram::bucket(30.0))
            ]
        );
        assert!((0.5..0.6).contains(&values[0]) && (30.0..36.0).contains(&values[1]));
        // Emptied: the next invocation writes only what it counts.
        metrics.emit(1_764_684_060_000);
        assert_eq!(captured.lines().len(), 6);
    }

    #[test]
    fn a_lag_of_many_buckets_is_split_into_documents_of_at_most_100_values() {
        let (metrics, captured) = metrics();
        for bucket in 0..=lifecycle_core::stats::LAST_BUCKET {
            let lag = LagHistogram::upper_bound(bucket);
            metrics.delivery_attempt(AttemptOutcome::Success, Some(lag));
        }
        metrics.emit(0);
        let lines = captured.lines();
        let mut total = 0;
        for line in lines
            .iter()
            .filter(|l| l.contains("delivery_lag_seconds\":{"))
        {
            let document = check_document(line).unwrap();
            total += document["delivery_lag_seconds"]["Count"].as_u64().unwrap();
        }
        assert_eq!(total, lifecycle_core::stats::LAST_BUCKET as u64 + 1);
    }

    #[test]
    fn the_checker_refuses_what_the_specification_forbids() {
        let good = r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["d"]],"Metrics":[{"Name":"m","Unit":"Count"}]}]},"d":"x","m":1}"#;
        assert!(check_document(good).is_ok());
        for bad in [
            good.replace(r#""d":"x","#, ""),
            good.replace(r#""d":"x""#, r#""d":3"#),
            good.replace(r#","m":1"#, ""),
            good.replace(r#""Unit":"Count""#, r#""Unit":"Things""#),
            good.replace(r#""Timestamp":1"#, r#""Timestamp":"1""#),
            good.replace(r#""Namespace":"N""#, r#""Namespace":"AWS/Lambda""#),
            good.replace(r#""Dimensions":[["d"]]"#, r#""Dimensions":[]"#),
            good.replace(r#""m":1"#, r#""m":{"Values":[1,2],"Counts":[1]}"#),
        ] {
            assert!(check_document(&bad).is_err(), "{bad}");
        }
    }
}
