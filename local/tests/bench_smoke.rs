//! The benchmark harness at a small size, so it cannot rot: each scenario
//! runs to the end and prints its figure beside its baseline.

use std::process::Command;

fn run(args: &[&str]) -> Vec<String> {
    let output = Command::new(env!("CARGO_BIN_EXE_lifecycle-bench"))
        .args(args)
        .output()
        .expect("the bench runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let table = String::from_utf8(output.stdout).unwrap();
    let row = table.lines().last().expect("a row of figures").to_string();
    row.split_whitespace().map(str::to_string).collect()
}

fn positive(text: &str) -> bool {
    text.parse::<f64>().is_ok_and(|n| n > 0.0)
}

#[test]
fn usage_scenario_prints_its_rate_beside_the_raw_insert_rate() {
    let row = run(&[
        "usage",
        "--events",
        "1000",
        "--customers",
        "100",
        "--thresholds",
        "3",
    ]);
    assert_eq!(row[0], "usage");
    assert!(row[5..8].iter().all(|n| positive(n)), "{row:?}");
}

#[test]
fn fire_storm_scenario_delivers_everything_and_prints_its_lag() {
    let row = run(&["fire-storm", "--schedules", "200"]);
    assert_eq!(
        (row[0].as_str(), row[1].as_str(), row[2].as_str()),
        ("fire-storm", "200", "200"),
        "{row:?}"
    );
    assert!(row[3..6].iter().all(|n| positive(n)), "{row:?}");
}
