//! A data folder made by an earlier release opens under this one: the
//! fixture `fixtures/release-2026-12-04/` is the folder `lifecycle serve`
//! of that release left (its database, with `user_version` 0, from before
//! numbered migrations, and its main key) after an endpoint, two
//! notifications, a contract and a usage record that crossed a threshold.
//! Opened here it is migrated to the latest schema and serves what it held,
//! secrets unsealed, and takes new writes.

use lifecycle_core::entity::{EntityKey, EntityKind};
use lifecycle_core::ports::{DeliveryFilter, Store};
use lifecycle_core::schedule::ScheduleState;
use lifecycle_core::sealing::MainKey;
use lifecycle_local::sqlite::{schema, SqliteStore};
use std::path::Path;

/// What the fixture's release answered when the endpoint was made.
const ENDPOINT_ID: &str = "ep_50aaf7fb1a1596dfe2a9fc9f";
const ENDPOINT_SECRET: &str = "whsec_KIp6TRjs0+aBHG8QehQSN1J1rPXNUBFcDozr5o/FBwE=";

fn user_version(path: &Path) -> i64 {
    let connection = rusqlite::Connection::open(path).unwrap();
    connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap()
}

#[tokio::test]
async fn a_data_folder_of_the_release_of_2026_12_04_opens_migrates_and_serves() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/release-2026-12-04");
    let dir = tempfile::tempdir().unwrap();
    for file in ["lifecycle.db", "secret_key"] {
        std::fs::copy(fixture.join(file), dir.path().join(file)).unwrap();
    }
    let path = dir.path().join("lifecycle.db");
    assert_eq!(user_version(&path), 0, "made before numbered migrations");
    let key = std::fs::read_to_string(dir.path().join("secret_key")).unwrap();
    let key = MainKey::parse(&key).unwrap();
    let store = SqliteStore::open_sealed(&path, key, None).unwrap();

    let endpoints = store.endpoints().await.unwrap();
    assert_eq!(endpoints.len(), 1);
    assert_eq!(endpoints[0].id, ENDPOINT_ID);
    assert_eq!(endpoints[0].secrets[0].value, ENDPOINT_SECRET, "unsealed");
    let notifications = store.notifications().await.unwrap();
    let names: Vec<&str> = notifications.iter().map(|n| n.name.as_str()).collect();
    assert!(names.contains(&"Heads-up"), "{names:?}");
    let contract = EntityKey {
        kind: EntityKind::Contract,
        id: "k_1".into(),
    };
    let record = store
        .entity(&contract)
        .await
        .unwrap()
        .expect("the contract");
    assert_eq!(record.entity.customer_id(), "c_1");
    let upcoming = store
        .customer_schedules("c_1", ScheduleState::Pending, None, None, 50)
        .await
        .unwrap();
    assert!(!upcoming.data.is_empty(), "its moments are still upcoming");
    let log = store
        .deliveries(&DeliveryFilter::default(), None, 50)
        .await
        .unwrap();
    let types: Vec<&str> = log
        .data
        .iter()
        .map(|(d, _)| d.event_type.as_str())
        .collect();
    assert!(types.contains(&"contract.create"), "{types:?}");
    assert!(
        types.contains(&"alerts.usage_threshold_reached"),
        "{types:?}"
    );
    let usage = (
        "c_1".to_string(),
        "calls".to_string(),
        "2026-12".to_string(),
    );
    let signals = store
        .signal_state(&["c_1".into()], std::slice::from_ref(&usage))
        .await
        .unwrap();
    assert_eq!(signals.usage[&usage], 12.0);

    // It takes writes, and is at the latest schema.
    let mut edited = endpoints[0].clone();
    edited.description = Some("after the upgrade".into());
    store.put_endpoint(&edited).await.unwrap();
    let read = store.endpoint(ENDPOINT_ID).await.unwrap().unwrap();
    assert_eq!(read.description.as_deref(), Some("after the upgrade"));
    drop(store);
    let connection = rusqlite::Connection::open(&path).unwrap();
    let pending = schema::migrations()
        .pending_migrations(&connection)
        .unwrap();
    assert_eq!(pending, 0, "at the latest schema");
    assert!(user_version(&path) >= 1);

    // Opened again, nothing is migrated twice.
    let key = std::fs::read_to_string(dir.path().join("secret_key")).unwrap();
    let store = SqliteStore::open_sealed(&path, MainKey::parse(&key).unwrap(), None).unwrap();
    assert_eq!(store.endpoints().await.unwrap().len(), 1);
}
