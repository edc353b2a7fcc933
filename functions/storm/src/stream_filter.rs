//! The template's event source filter, applied to the records the tests read
//! from moto's stream before they reach the schedule handler, as Lambda's
//! event source mapping applies it: a record the filter drops never reaches
//! the function in a deployment, so it must not reach it in the tests.

use serde_json::Value;

/// The `FilterCriteria` patterns of `infra/template.yaml`.
pub fn template_patterns() -> Vec<Value> {
    let template = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../infra/template.yaml"
    ))
    .expect("infra/template.yaml");
    let patterns: Vec<Value> = template
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- Pattern: '"))
        .map(|rest| serde_json::from_str(rest.trim_end_matches('\'')).expect("a JSON pattern"))
        .collect();
    assert!(!patterns.is_empty(), "the template filters the stream");
    patterns
}

/// Whether a record matches one of the patterns, in the subset of the
/// filter syntax the template uses: objects match field by field, an array
/// lists the values allowed.
pub fn admits(patterns: &[Value], record: &Value) -> bool {
    patterns.iter().any(|pattern| matches(pattern, record))
}

fn matches(pattern: &Value, value: &Value) -> bool {
    match pattern {
        Value::Object(fields) => fields
            .iter()
            .all(|(key, inner)| value.get(key).is_some_and(|v| matches(inner, v))),
        Value::Array(allowed) => allowed.contains(value),
        other => panic!("a filter pattern this harness does not read: {other}"),
    }
}

#[cfg(test)]
#[test]
fn the_filter_subset_matches_as_lambda_does() {
    let patterns = vec![
        serde_json::json!({"dynamodb": {"NewImage": {"t": {"S": ["SCH", "JOB"]}}}}),
        serde_json::json!({"eventName": ["REMOVE"], "dynamodb": {"OldImage": {"t": {"S": ["SCH"]}}}}),
    ];
    let record = |event: &str, image: &str, t: &str| serde_json::json!({"eventName": event, "dynamodb": {image: {"t": {"S": t}}}});
    assert!(admits(&patterns, &record("INSERT", "NewImage", "JOB")));
    assert!(admits(&patterns, &record("REMOVE", "OldImage", "SCH")));
    assert!(!admits(&patterns, &record("INSERT", "NewImage", "ENT")));
    assert!(!admits(&patterns, &record("MODIFY", "OldImage", "SCH")));
    assert!(!admits(
        &patterns,
        &serde_json::json!({"eventName": "INSERT"})
    ));
}
