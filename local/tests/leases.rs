//! Attempts hold their deliveries by leases in memory, and a data folder
//! has one process: what that means for a second process and for a crash.

mod common;

use common::*;
use lifecycle_local::sqlite::SqliteStore;

#[test]
fn a_second_store_on_the_same_database_is_refused_until_the_first_closes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let first = SqliteStore::open(&path).unwrap();
    let refused = SqliteStore::open(&path)
        .err()
        .expect("a second store is refused");
    assert!(
        refused.to_string().contains("in use by another process"),
        "{refused}"
    );
    drop(first);
    SqliteStore::open(&path).expect("the database is free once the first store closes");
}

#[tokio::test]
async fn a_lease_dies_with_its_process_and_the_delivery_is_sent_at_once_on_restart() {
    let h = harness("2026-11-25T00:00:00Z").await;
    let (url, received) = receiver(&[]).await;
    h.endpoint(&url, &["contract.create", "contract.edit"])
        .await;
    h.contract("wr_1", "create", "k_1", None, "2026-11-25T00:00:00Z")
        .await;
    h.run_due().await;
    assert_eq!(received.bodies().len(), 1);
    let first_id = received.bodies()[0]["id"].clone();

    // A second webhook is claimed, and the process dies before sending it.
    h.contract(
        "wr_2",
        "edit",
        "k_1",
        Some("2027-01-01T00:00:00Z"),
        "2026-11-25T00:00:01Z",
    )
    .await;
    // The write made its webhook's delivery, due at once.
    let deliveries = h.due_deliveries().await;
    assert_eq!(deliveries.len(), 1, "the edit's webhook");
    h.claim_for_an_attempt(&deliveries[0]).await;
    h.run_due().await;
    assert_eq!(received.bodies().len(), 1, "held while its process lives");

    let h = h.restart().await;
    h.run_due().await;
    let bodies = received.bodies();
    assert_eq!(
        bodies.len(),
        2,
        "sent by the next process without waiting for the lease"
    );
    let (delivery, attempts) = h.service.delivery(&deliveries[0]).await.unwrap();
    assert_eq!(delivery.status.as_str(), "delivered");
    assert_eq!(attempts.len(), 1);
    assert_eq!(bodies[1]["type"], "contract.edit");
    assert_ne!(bodies[1]["id"], first_id);
    h.run_due().await;
    assert_eq!(received.bodies().len(), 2, "and only once");
}
