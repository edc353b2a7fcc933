//! The table's definition for tests and tools; the deployed table comes from
//! `infra/template.yaml`, with the same keys and indexes.

use super::unavailable;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
};
use aws_sdk_dynamodb::Client;
use lifecycle_core::ports::StoreResult;

/// (index, partition key, sort key, projected attributes; None: keys only).
pub const INDEXES: [(&str, &str, &str, Option<&[&str]>); 5] = [
    ("lookup", "g1pk", "g1sk", None),
    ("due", "g2pk", "g2sk", None),
    ("customer", "g3pk", "g3sk", Some(&["st", "et", "ep"])),
    (
        "timeline",
        "g4pk",
        "g4sk",
        Some(&["st", "et", "ep", "cust"]),
    ),
    ("endpoint", "g5pk", "g5sk", Some(&["et", "cust"])),
];

fn key_element(name: &str, key_type: KeyType) -> StoreResult<KeySchemaElement> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(unavailable)
}

/// Creates the table (on-demand, stream with both images) as the template does.
pub async fn create_table(client: &Client, table: &str) -> StoreResult<()> {
    let mut request = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key_element("pk", KeyType::Hash)?)
        .key_schema(key_element("sk", KeyType::Range)?)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .map_err(unavailable)?,
        );
    let mut names = vec!["pk", "sk"];
    for (index, pk, sk, projected) in INDEXES {
        names.extend([pk, sk]);
        let projection = match projected {
            None => Projection::builder()
                .projection_type(ProjectionType::KeysOnly)
                .build(),
            Some(attributes) => Projection::builder()
                .projection_type(ProjectionType::Include)
                .set_non_key_attributes(Some(attributes.iter().map(|a| a.to_string()).collect()))
                .build(),
        };
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(index)
                .key_schema(key_element(pk, KeyType::Hash)?)
                .key_schema(key_element(sk, KeyType::Range)?)
                .projection(projection)
                .build()
                .map_err(unavailable)?,
        );
    }
    for name in names {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(unavailable)?,
        );
    }
    request.send().await.map_err(unavailable)?;
    Ok(())
}
