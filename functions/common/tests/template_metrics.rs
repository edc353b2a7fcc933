//! `infra/template.yaml` reads the metrics the functions write: its
//! dashboard and its delivery-lag alarm name the metrics, units and
//! dimensions `lifecycle_functions::emf` writes, in the namespace the
//! functions are given (`METRICS_NAMESPACE`).

use lifecycle_core::metrics::{AttemptOutcome, DELIVERY_LAG};
use lifecycle_functions::emf::{metric_name, written, OUTCOME};
use serde_json::Value;
use std::collections::BTreeSet;

fn template() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../infra/template.yaml"
    ))
    .expect("infra/template.yaml")
}

/// A resource's lines: from `  <name>:` to the next line indented by two.
fn block(template: &str, name: &str) -> String {
    let lines: Vec<&str> = template
        .lines()
        .skip_while(|line| *line != format!("  {name}:"))
        .collect();
    assert!(!lines.is_empty(), "a {name} resource");
    let end = lines[1..]
        .iter()
        .position(|line| line.starts_with("  ") && !line.starts_with("   "))
        .map_or(lines.len(), |i| i + 1);
    lines[..end].join("\n")
}

/// The value the template gives `METRICS_NAMESPACE`, as written.
fn namespace_expression(template: &str) -> String {
    let line = (template.lines())
        .find_map(|l| l.trim().strip_prefix("METRICS_NAMESPACE: "))
        .expect("the functions are given METRICS_NAMESPACE");
    line.to_string()
}

/// The dashboard's body with its substitutions made (the namespace `NS`).
fn dashboard() -> Value {
    let dashboard = block(&template(), "Dashboard");
    let body: Vec<&str> = (dashboard.lines())
        .skip_while(|l| l.trim() != "- |")
        .skip(1)
        .take_while(|l| !l.trim().starts_with("- Namespace:"))
        .collect();
    let body = body
        .join("\n")
        .replace("${Namespace}", "NS")
        .replace("${AWS::Region}", "us-east-1")
        .replace("${DeliveryLagAlarmSeconds}", "120")
        .replace("${DeliveryLagAlarm.Arn}", "arn:alarm");
    assert!(
        !body.contains("${"),
        "a substitution this test does not know: {body}"
    );
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("the dashboard body: {e}: {body}"))
}

#[test]
fn the_dashboard_graphs_the_metrics_the_functions_write() {
    let template = template();
    let expression = namespace_expression(&template);
    assert!(
        block(&template, "Dashboard").contains(&format!("- Namespace: {expression}")),
        "the dashboard's namespace is the functions'"
    );
    let outcomes: Vec<&str> = AttemptOutcome::ALL.iter().map(|o| o.as_str()).collect();
    let mut graphed = BTreeSet::new();
    let dashboard = dashboard();
    for widget in dashboard["widgets"].as_array().unwrap() {
        let Some(metrics) = widget["properties"]["metrics"].as_array() else {
            continue;
        };
        for metric in metrics {
            let parts = metric.as_array().unwrap();
            let strings: Vec<&str> = parts.iter().filter_map(Value::as_str).collect();
            assert_eq!(strings[0], "NS", "{metric}");
            let name = strings[1];
            let (_, _, dimension) = written()
                .into_iter()
                .find(|(n, _, _)| *n == name)
                .unwrap_or_else(|| panic!("the functions write no metric {name}"));
            match &strings[2..] {
                [] => {}
                [key, value] => {
                    assert_eq!(Some(*key), dimension, "{metric}");
                    if *key == OUTCOME {
                        assert!(outcomes.contains(value), "{metric}");
                    }
                }
                more => panic!("{name}: the functions write one dimension at most: {more:?}"),
            }
            graphed.insert(name);
        }
    }
    let all: BTreeSet<&str> = written().iter().map(|(n, _, _)| *n).collect();
    assert_eq!(graphed, all, "every metric is on the dashboard");
}

#[test]
fn the_delivery_lag_alarm_watches_the_lag_the_functions_write() {
    let template = template();
    let alarm = block(&template, "DeliveryLagAlarm");
    let field = |name: &str| {
        (alarm.lines())
            .find_map(|l| l.trim().strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("DeliveryLagAlarm has {name}"))
            .to_string()
    };
    let (name, unit, dimension) = written()
        .into_iter()
        .find(|(n, _, _)| *n == metric_name(DELIVERY_LAG))
        .unwrap();
    assert_eq!(field("MetricName"), name);
    assert_eq!(field("Unit"), unit);
    assert_eq!(field("ExtendedStatistic"), "p99");
    assert_eq!(field("Namespace"), namespace_expression(&template));
    assert_eq!(dimension, None);
    assert!(
        !alarm.contains("Dimensions:"),
        "the lag is written without dimensions, so the alarm names none"
    );
    assert_eq!(
        field("AlarmActions"),
        "!If [NotifyAlarms, [!Ref AlarmTopicArn], !Ref AWS::NoValue]",
        "the topic of the other alarms"
    );
}
