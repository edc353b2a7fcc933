//! The benchmark harness at a small size, so it cannot rot: every scenario
//! runs to the end and writes its figures, each compared one beside its
//! baseline, as JSON.

use serde_json::Value;
use std::process::Command;

fn run(args: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let output = Command::new(env!("CARGO_BIN_EXE_lifecycle-bench"))
        .args(args)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("the bench runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let table = String::from_utf8(output.stdout).unwrap();
    assert!(table.contains("baseline"), "a table is printed: {table}");
    serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap()
}

fn figure<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["figures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no figure {name} in {report}"))
}

/// A figure measured beside its baseline: both positive, and their ratio.
fn compared(report: &Value, name: &str) -> f64 {
    let f = figure(report, name);
    let (value, baseline) = (
        f["value"].as_f64().unwrap(),
        f["baseline_value"].as_f64().unwrap(),
    );
    assert!(value > 0.0 && baseline > 0.0, "{f}");
    let ratio = f["ratio"].as_f64().unwrap();
    assert!((ratio - value / baseline).abs() < 1e-9, "{f}");
    ratio
}

#[test]
fn usage_prints_its_rate_beside_the_raw_insert_rate() {
    let report = run(&[
        "usage",
        "--events",
        "1000",
        "--customers",
        "100",
        "--thresholds",
        "3",
    ]);
    assert_eq!(report["scenario"], "usage");
    compared(&report, "usage.record ingested");
}

#[test]
fn plan_counts_every_schedule_of_its_contracts() {
    let report = run(&["plan", "--contracts", "100"]);
    assert_eq!(report["parameters"]["schedules"], 100 * 27);
    compared(&report, "schedules planned");
}

#[test]
fn ingest_http_compares_bytes_with_a_trivial_route() {
    let report = run(&["ingest-http", "--contracts", "300", "--clients", "2"]);
    compared(&report, "request bodies ingested");
}

#[test]
fn fire_storm_delivers_everything_and_a_lone_schedule() {
    let report = run(&["fire-storm", "--schedules", "200"]);
    assert_eq!(figure(&report, "delivered")["value"], 200.0);
    compared(&report, "delivery rate");
    assert!(
        figure(&report, "lag of a lone schedule")["value"]
            .as_f64()
            .unwrap()
            >= 0.0
    );
}

#[test]
fn restart_serves_and_delivers_what_fell_due() {
    let report = run(&["restart", "--schedules", "1000"]);
    compared(&report, "start to serving");
    compared(&report, "resident memory (peak)");
    assert!(
        figure(&report, "start to first due delivery")["value"]
            .as_f64()
            .unwrap()
            > 0.0
    );
}

#[test]
fn isolation_compares_with_the_healthy_endpoint_alone() {
    let report = run(&["isolation", "--notifications", "100"]);
    compared(&report, "healthy lag p99");
}

/// What every traffic scenario reports of the server process: positive
/// CPU, a data folder that holds the WAL, a resident set.
fn process_figures(report: &Value) {
    let value = |name: &str| figure(report, name)["value"].as_f64().unwrap();
    assert!(value("server CPU per 1,000 webhooks") > 0.0, "{report}");
    assert!(value("data folder") >= value("WAL at rest"), "{report}");
    assert!(value("data folder") > 0.0, "{report}");
    assert!(value("server peak resident memory") > 0.0, "{report}");
}

#[test]
fn ingest_single_delivers_each_event_once_beside_raw_posts() {
    let report = run(&["ingest-single", "--events", "300", "--clients", "4"]);
    assert_eq!(figure(&report, "delivered")["value"], 300.0);
    assert_eq!(report["parameters"]["delivered_again"], 0);
    compared(&report, "end-to-end rate");
    compared(&report, "rate over the last tenth");
    assert!(
        figure(&report, "request to arrival p99")["value"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    process_figures(&report);
}

#[test]
fn burst_compares_with_a_fire_storm_of_the_same_size() {
    let report = run(&["burst", "--events", "1200", "--clients", "2"]);
    assert_eq!(figure(&report, "delivered")["value"], 1200.0);
    compared(&report, "end-to-end rate");
    let gap = figure(&report, "longest gap between arrivals while ingesting")["value"]
        .as_f64()
        .unwrap();
    let ingest = figure(&report, "ingest time")["value"].as_f64().unwrap();
    assert!(gap >= 0.0 && gap <= ingest, "{report}");
    process_figures(&report);
}

#[test]
fn paced_reports_latency_beside_raw_posts_at_the_same_pace() {
    let report = run(&["paced", "--events", "200", "--per-second", "100"]);
    assert_eq!(figure(&report, "delivered")["value"], 200.0);
    compared(&report, "request to arrival p99");
    process_figures(&report);
}
