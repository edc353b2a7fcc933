//! The deliver role's denied partitions, measured: every DynamoDB call the
//! `deliver` invocations make while they fire a write webhook, send it and
//! a usage threshold's crossing,
//! retry a failing endpoint to its end and record the outcomes is counted
//! by the harness's interceptor with the partition keys it touches (of the
//! table and of its indexes), and none may fall under the `Deny` on
//! `dynamodb:LeadingKeys` in `DeliverRole` (`infra/template.yaml`): IAM
//! would refuse such a call in a deployment, which moto does not check.

use lifecycle_aws_storm::receiver::Receiver;
use lifecycle_aws_storm::stack::{Options, Stack};
use lifecycle_core::time::{format_time, Clock};
use serde_json::json;
use std::collections::BTreeMap;

/// The LeadingKeys patterns `DeliverRole` denies (`W#*` and the like).
fn denied_patterns() -> Vec<String> {
    let template = include_str!("../../../infra/template.yaml");
    let role = template
        .split("\n  DeliverRole:\n")
        .nth(1)
        .expect("DeliverRole in the template");
    let role = role.split("\n  DeliverFunction:").next().unwrap_or(role);
    let line = (role.lines())
        .find(|l| l.trim_start().starts_with("dynamodb:LeadingKeys:"))
        .expect("a LeadingKeys condition in DeliverRole");
    let list = line.split_once('[').expect("a list").1;
    let list = list.split_once(']').expect("a list").0;
    list.split(',')
        .map(|p| p.trim().trim_matches('"').to_string())
        .collect()
}

/// A LeadingKeys `StringLike` pattern with its only wildcard at the end.
fn matches(pattern: &str, key: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => key.starts_with(prefix),
        None => key == pattern,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliver_touches_no_partition_its_role_denies() {
    let patterns = denied_patterns();
    assert_eq!(patterns, ["W#*", "C#*"]);
    let mut stack = Stack::new(Options {
        environments: 1,
        retry_delays: Some("1s,1s".into()),
        ..Options::default()
    })
    .await;
    let receiver = Receiver::start(stack.clock.clone()).await;
    // One endpoint that takes webhooks, one that refuses every connection.
    for url in [receiver.url.clone(), "http://127.0.0.1:9/hook".to_string()] {
        let types = ["contract.create", "alerts.usage_threshold_reached"];
        let body = json!({"url": url, "event_types": types});
        let (status, endpoint) = stack.api("POST", "/v1/webhook-endpoints", Some(body)).await;
        assert_eq!(status, 201, "{endpoint}");
        if url == receiver.url {
            receiver.expect_secret(endpoint["secret"].as_str().unwrap());
        }
    }
    let threshold = json!({"event_type": "alerts.usage_threshold_reached", "metric": "calls",
                           "threshold": 1});
    let (status, made) = stack
        .api("POST", "/v1/notifications", Some(threshold))
        .await;
    assert_eq!(status, 201, "{made}");
    stack.drain().await;
    let now = stack.clock.now();
    let events = json!({"events": [
        {"id": "wr_1", "type": "contract.create", "occurred_at": format_time(now),
         "data": {"id": "k_1", "customer_id": "c_1", "starting_at": format_time(now),
                  "ending_before": format_time(now + chrono::Duration::days(30))}},
        {"id": "u_1", "type": "usage.record", "occurred_at": format_time(now),
         "data": {"customer_id": "c_1", "metric": "calls", "quantity": 3,
                  "timestamp": format_time(now)}}]});
    let (status, results) = stack.api("POST", "/v1/events", Some(events)).await;
    assert_eq!(status, 200, "{results}");

    // Only the deliver invocations are counted: the stream's (the schedule
    // function's) run between them, uncounted.
    // Partition key -> (reads, writes), as the counter names them: `pk`
    // values of the table, `index:key` of an index.
    let mut touched: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut calls = 0;
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        stack.drain().await;
        stack.counter.reset();
        stack.pump(4).await;
        let tally = stack.counter.tally();
        calls += tally.calls_of("dynamodb");
        for (key, (reads, writes)) in tally.partitions {
            let seen = touched.entry(key).or_default();
            (seen.0, seen.1) = (seen.0 + reads, seen.1 + writes);
        }
        let (_, failed) = (stack.api("GET", "/v1/deliveries?status=failed", None)).await;
        let done = failed["data"].as_array().is_some_and(|d| d.len() == 2);
        if (done && receiver.arrivals().len() == 2) || std::time::Instant::now() > until {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(
        receiver.arrivals().len(),
        2,
        "the create and the crossing delivered"
    );
    let (_, failed) = (stack.api("GET", "/v1/deliveries?status=failed", None)).await;
    let failed = failed["data"].as_array().unwrap();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(failed.iter().all(|d| d["attempt_count"] == 3), "{failed:?}");
    assert!(calls > 0 && !touched.is_empty());
    // IAM compares LeadingKeys with the table's partition key of an item
    // read or written, and with the index's of a query: an index entry
    // written with an item is not a key the call names.
    let denied: Vec<&String> = (touched.iter())
        .filter(|(key, (reads, _))| match key.split_once(':') {
            Some((_, index_key)) => *reads > 0 && patterns.iter().any(|p| matches(p, index_key)),
            None => patterns.iter().any(|p| matches(p, key)),
        })
        .map(|(key, _)| key)
        .collect();
    assert!(
        denied.is_empty(),
        "deliver touched partitions its role denies: {denied:?} (of {touched:?})"
    );
}
