//! The month-boundary workload of the aws-storm benchmark (issue 14): N
//! contracts, each with one prepaid commit of 12 monthly segments aligned to
//! midnight UTC on the first; the 15 system notifications plus `-P7D
//! contract.end`, `-P1D commit.segment.end` and `PT1H commit.segment.start`;
//! one endpoint for every type. The clock is moved across one boundary
//! (2027-01-01T00:00Z): ingest three days before, then the boundary's tick
//! as EventBridge Scheduler would invoke it, and everything it sets off.

use crate::stack::Stack;
use chrono::{Duration, Months};
use lifecycle_aws::dynamodb::DUE_SHARDS;
use lifecycle_core::time::{parse_time, Time};
use serde_json::{json, Value};

/// The boundary the workload crosses.
pub fn boundary() -> Time {
    parse_time("2027-01-01T00:00:00Z").expect("a time")
}

/// When the segments (and the contracts) start: a month before the boundary.
fn first_day() -> Time {
    parse_time("2026-12-01T00:00:00Z").expect("a time")
}

fn iso(t: Time) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Contracts per ingest request: a contract and its commit are two events,
/// and a request takes 500.
pub const CONTRACTS_PER_REQUEST: usize = 250;

/// The write events of contract `n` and its commit.
pub fn events(n: usize, occurred_at: Time) -> [Value; 2] {
    let start = first_day();
    let end = start + Months::new(12);
    let segments: Vec<Value> = (0..12)
        .map(|m| {
            json!({"id": format!("seg_{n}_{m}"), "amount": 1000,
                   "starting_at": iso(start + Months::new(m)),
                   "ending_before": iso(start + Months::new(m + 1))})
        })
        .collect();
    [
        json!({"id": format!("wk_{n}"), "type": "contract.create", "occurred_at": iso(occurred_at),
               "data": {"id": format!("k_{n}"), "customer_id": format!("c_{n}"),
                        "starting_at": iso(start), "ending_before": iso(end)}}),
        json!({"id": format!("wc_{n}"), "type": "commit.create", "occurred_at": iso(occurred_at),
               "data": {"id": format!("cm_{n}"), "customer_id": format!("c_{n}"),
                        "contract_id": format!("k_{n}"), "type": "prepaid",
                        "access_schedule": segments}}),
    ]
}

/// What the setup left.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub endpoint_id: String,
    pub secret: String,
    /// Time-based moments a contract has in its year (from the API's upcoming view of one).
    pub moments_per_contract_year: usize,
}

/// The endpoint, the three notifications and the contracts, ingested three
/// days before the boundary, with everything the writes set off run
/// (the stream, the write-based webhooks on the queue).
pub async fn prepare(stack: &mut Stack, receiver_url: &str, contracts: usize) -> Prepared {
    let ingest_at = boundary() - Duration::days(3);
    stack.clock.set(ingest_at);
    let (status, endpoint) = stack
        .api(
            "POST",
            "/v1/webhook-endpoints",
            Some(json!({"url": receiver_url})),
        )
        .await;
    assert_eq!(status, 201, "{endpoint}");
    for (event_type, offset) in [
        ("contract.end", "-P7D"),
        ("commit.segment.end", "-P1D"),
        ("commit.segment.start", "PT1H"),
    ] {
        let body = json!({"name": format!("{event_type} {offset}"), "event_type": event_type, "offset": offset});
        let (status, created) = stack.api("POST", "/v1/notifications", Some(body)).await;
        assert_eq!(status, 201, "{created}");
    }
    stack.drain().await;
    for first in (0..contracts).step_by(CONTRACTS_PER_REQUEST) {
        let events: Vec<Value> = (first..(first + CONTRACTS_PER_REQUEST).min(contracts))
            .flat_map(|n| events(n, ingest_at))
            .collect();
        let (status, body) = stack
            .api("POST", "/v1/events", Some(json!({"events": events})))
            .await;
        assert_eq!(status, 200, "{body}");
        stack.drain().await;
    }
    let (_, upcoming) = stack
        .api("GET", "/v1/customers/c_0/upcoming?limit=500", None)
        .await;
    let (_, skipped) = stack
        .api(
            "GET",
            "/v1/customers/c_0/upcoming?status=skipped&limit=500",
            None,
        )
        .await;
    let count = |page: &Value| page["data"].as_array().map_or(0, Vec::len);
    Prepared {
        endpoint_id: endpoint["id"].as_str().unwrap_or_default().to_string(),
        secret: endpoint["secret"].as_str().unwrap_or_default().to_string(),
        moments_per_contract_year: count(&upcoming) + count(&skipped),
    }
}

/// The timers due in the boundary's minute, read from the due index.
pub async fn due_at_boundary(stack: &Stack) -> usize {
    let (from, to) = (boundary(), boundary() + Duration::minutes(1));
    let mut due = 0;
    for shard in 0..DUE_SHARDS {
        let mut cursor = None;
        loop {
            let page = (stack.rt.store)
                .due_page(shard, from, to, cursor.as_deref(), 1000)
                .await
                .expect("read the due index");
            due += page.timers.len();
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    due
}
