//! Batches of writes are decided side by side. Two that meet on an entity or
//! an event id cannot both commit what they decided: the second is retried
//! alone, so every event counts once and the newest write wins.

mod common;

use common::harness;
use lifecycle_core::entity::{EntityKey, EntityKind};
use lifecycle_core::ports::Store;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

const CONTRACTS: usize = 10;
const CLIENTS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_batches_on_the_same_entities_count_each_event_once() {
    let h = Arc::new(harness("2026-11-25T00:00:00Z").await);
    for n in 0..CONTRACTS {
        h.contract(
            &format!("wr_c{n}"),
            "create",
            &format!("k_{n}"),
            None,
            "2026-11-01T00:00:00Z",
        )
        .await;
    }
    // Each client edits every contract once, at its own time; client 0
    // also sends client 1's batch again.
    let batch = |client: usize| {
        let events: Vec<_> = (0..CONTRACTS)
            .map(|n| {
                json!({"id": format!("wr_{client}_{n}"), "type": "contract.edit",
                       "occurred_at": format!("2026-11-02T00:00:{client:02}Z"),
                       "data": {"id": format!("k_{n}"), "customer_id": "c_1", "starting_at": "2026-01-01T00:00:00Z",
                                "ending_before": format!("2027-01-{:02}T00:00:00Z", client + 1)}})
            })
            .collect();
        json!({ "events": events })
    };
    let tasks: Vec<_> = (0..=CLIENTS)
        .map(|client| {
            let (h, body) = (h.clone(), batch(if client == CLIENTS { 1 } else { client }));
            tokio::spawn(
                async move { h.service.ingest(&body).await.expect("every batch is taken") },
            )
        })
        .collect();
    let mut statuses: HashMap<String, Vec<&'static str>> = HashMap::new();
    for (client, task) in tasks.into_iter().enumerate() {
        let client = if client == CLIENTS { 1 } else { client };
        for (n, result) in task.await.unwrap().into_iter().enumerate() {
            assert_eq!(result.id, format!("wr_{client}_{n}"));
            statuses.entry(result.id).or_default().push(result.status);
        }
    }
    // Each event has one outcome; a second sending of it is a duplicate.
    let mut outcome = HashMap::new();
    for (id, mut got) in statuses {
        got.sort_by_key(|s| *s == "duplicate");
        let sent = if id.starts_with("wr_1_") { 2 } else { 1 };
        assert_eq!(got.len(), sent, "{id}");
        assert_ne!(got[0], "duplicate", "{id}: {got:?}");
        assert!(got[1..].iter().all(|s| *s == "duplicate"), "{id}: {got:?}");
        outcome.insert(id, got[0]);
    }
    for n in 0..CONTRACTS {
        let key = EntityKey {
            kind: EntityKind::Contract,
            id: format!("k_{n}"),
        };
        let record = h.store.entity(&key).await.unwrap().unwrap();
        let accepted = (0..CLIENTS)
            .filter(|client| outcome[&format!("wr_{client}_{n}")] == "accepted")
            .count();
        assert!(accepted >= 1, "k_{n}: the newest edit is always taken");
        assert_eq!(record.version as usize, 1 + accepted, "k_{n}: {outcome:?}");
        let newest = format!("2026-11-02T00:00:{:02}Z", CLIENTS - 1);
        assert_eq!(
            lifecycle_core::time::format_time(record.occurred_at),
            newest,
            "k_{n}"
        );
    }
}
