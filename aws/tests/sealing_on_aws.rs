//! Endpoint signing secrets sealed in DynamoDB (on moto): the item holds no
//! secret in the clear, the store reads it back, an endpoint written before
//! there was a key is sealed when the first keyed store checks in, and a
//! store with another key refuses to start.

mod common;

use lifecycle_aws::DynamoStore;
use lifecycle_core::endpoint::Endpoint;
use lifecycle_core::ports::Store;
use lifecycle_core::sealing::MainKey;
use serde_json::json;

fn endpoint() -> Endpoint {
    let now = chrono::Utc::now();
    Endpoint::create(
        &json!({"url": "https://example.com/hook"}),
        &Default::default(),
        now,
    )
    .unwrap()
}

/// The endpoint item as DynamoDB holds it, all attributes as text.
async fn raw(store: &DynamoStore, id: &str) -> String {
    let item = store
        .client()
        .get_item()
        .table_name(store.table())
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("EP".into()),
        )
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S(id.into()))
        .send()
        .await
        .unwrap()
        .item
        .expect("the endpoint item");
    format!("{item:?}")
}

fn keyed(store: &DynamoStore, key: &MainKey) -> DynamoStore {
    DynamoStore::new(store.client().clone(), store.table()).with_main_key(key.clone())
}

#[tokio::test]
async fn secrets_are_sealed_in_the_table_and_a_wrong_key_is_refused() {
    let plain = common::dynamo_store().await;
    let before = endpoint();
    plain.put_endpoint(&before).await.unwrap();
    let secret = before.secrets[0].value.clone();
    assert!(
        raw(&plain, &before.id).await.contains(&secret),
        "written before sealing"
    );

    let key = MainKey::generate();
    let store = keyed(&plain, &key);
    store.check_main_key().await.unwrap();
    let sealed = raw(&store, &before.id).await;
    assert!(
        !sealed.contains(&secret) && sealed.contains("sealed:v1:"),
        "{sealed}"
    );
    assert_eq!(
        store.endpoint(&before.id).await.unwrap().unwrap().secrets,
        before.secrets
    );

    let after = endpoint();
    store.put_endpoint(&after).await.unwrap();
    assert!(!raw(&store, &after.id)
        .await
        .contains(&after.secrets[0].value));
    let listed = store.endpoints().await.unwrap();
    assert!(listed.iter().any(|e| e.secrets == after.secrets));

    // A second environment with the same key checks in without writing.
    keyed(&plain, &key).check_main_key().await.unwrap();
    let wrong = keyed(&plain, &MainKey::generate());
    let refused = wrong.check_main_key().await.unwrap_err().to_string();
    assert!(refused.contains("fingerprint"), "{refused}");
    assert!(
        wrong.endpoint(&after.id).await.is_err(),
        "another key opens nothing"
    );
}
