//! The response schemas of `openapi.json` against the views the handlers
//! answer with: every field a view carries is described in its schema, and
//! every field the schema requires is carried. A field added to a view and
//! not to the description (or the reverse) fails here, not in a client.

use super::SPEC;
use crate::endpoint::{Endpoint, EndpointRules};
use crate::event_type::EventType;
use crate::notification::Notification;
use crate::schedule::{Attempt, Delivery};
use crate::threshold::AlertState;
use crate::time::{parse_time, Time};
use serde_json::{json, Value};
use std::collections::BTreeSet;

fn now() -> Time {
    parse_time("2026-11-25T00:00:00Z").unwrap()
}

fn names(value: &Value) -> BTreeSet<String> {
    match value {
        Value::Object(map) => map.keys().cloned().collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => BTreeSet::new(),
    }
}

fn component(name: &str) -> Value {
    let spec: Value = serde_json::from_str(SPEC).expect("openapi.json is JSON");
    let schema = spec["components"]["schemas"][name].clone();
    assert!(schema.is_object(), "no schema {name}");
    schema
}

/// Problems of a view against the component schema `name`.
fn check(name: &str, view: &Value) -> Vec<String> {
    check_against(name, &component(name), view)
}

fn check_against(name: &str, schema: &Value, view: &Value) -> Vec<String> {
    let described = names(&schema["properties"]);
    let required = names(&schema["required"]);
    let answered = names(view);
    let mut problems = Vec::new();
    for field in answered.difference(&described) {
        problems.push(format!("{name}: `{field}` is answered but not described"));
    }
    for field in required.difference(&answered) {
        problems.push(format!("{name}: `{field}` is required but not answered"));
    }
    problems
}

#[test]
fn every_answered_field_is_described_and_every_required_one_answered() {
    let rules = EndpointRules {
        allow_http: false,
        aws: None,
    };
    let endpoint =
        Endpoint::create(&json!({"url": "https://example.com/hook"}), &rules, now()).unwrap();
    let lifecycle = Notification::create(
        &json!({"event_type": "contract.end", "offset": "-P30D", "name": "Heads-up"}),
        now(),
    )
    .unwrap();
    let threshold = Notification::create(
        &json!({"event_type": "alerts.usage_threshold_reached", "metric": "calls", "threshold": 10}),
        now(),
    )
    .unwrap();
    let mut delivery = Delivery::direct(
        "msg_1",
        EventType::ContractEnd,
        &endpoint.id,
        "c_1",
        Some(&lifecycle.id),
        now(),
    );
    delivery.attempt_count = 1;
    let attempt = Attempt {
        delivery_id: delivery.id.clone(),
        number: 1,
        at: now(),
        endpoint_id: endpoint.id.clone(),
        status_code: Some(500),
        latency_ms: 12,
        error: None,
        response: Some("busy".into()),
        manual: false,
    };
    let alert = AlertState {
        notification_id: threshold.id.clone(),
        customer_id: "c_1".into(),
        in_alarm: true,
        since: now(),
        value: 12.0,
        period: "2026-11".into(),
        crossings: 1,
    };
    let delivery_view = delivery.view(std::slice::from_ref(&attempt));
    let mut with_secret = endpoint.view(true);
    assert!(with_secret["secret"].is_string(), "{with_secret}");
    with_secret.as_object_mut().unwrap().remove("secret");
    let mut problems = Vec::new();
    problems.extend(check("Endpoint", &endpoint.view(false)));
    problems.extend(check("Endpoint", &with_secret));
    for notification in [&lifecycle, &threshold] {
        problems.extend(check(
            "Notification",
            &serde_json::to_value(notification).unwrap(),
        ));
    }
    problems.extend(check("Delivery", &delivery_view));
    problems.extend(check("Attempt", &delivery_view["attempts"][0]));
    problems.extend(check("Alert", &alert.view(&threshold)));
    let minute = crate::stats::MinuteStats::default().view();
    let item = &component("Stats")["properties"]["data"]["items"];
    problems.extend(check_against("Stats.data[]", item, &minute));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_field_missing_from_a_schema_is_found() {
    let problems = check("Attempt", &json!({"delivery_id": "d", "new_field": 1}));
    assert!(
        problems
            .iter()
            .any(|p| p.contains("`new_field` is answered")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("`number` is required")),
        "{problems:?}"
    );
}
