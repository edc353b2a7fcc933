//! The store port on one DynamoDB table (the single-table design of
//! `infra/README.md`). Every item has `pk`, `sk`, its type `t` and, where the
//! core has a record, that record as JSON in `r`, beside the attributes that
//! keys, conditions and index projections need.

mod batch;
mod compressed;
mod config;
mod deferrals;
mod deliveries;
mod due;
mod fires;
mod jobs;
mod keys;
mod port;
mod reads;
mod retention;
mod schedules;
mod sealing;
mod signals;
mod stats;
mod table;
mod tx;
mod writes;

pub use due::{minute_of, Due, DuePage, DUE_SHARDS};
pub use keys::{delivery_pk, time_key, DELIVERY_SK};
pub use table::{create_table, INDEXES};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use lifecycle_core::ports::{StoreError, StoreResult};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;

pub(crate) type Item = HashMap<String, AttributeValue>;

/// The DynamoDB store: a client and the table name.
pub struct DynamoStore {
    client: Client,
    table: String,
    /// The first and last day buckets of the delivery timeline known to be
    /// recorded in the table (saves a write per delivery).
    timeline_days: Mutex<Option<(String, String)>>,
    /// How long a write event id is remembered (the template's `EventDedupeDays`).
    event_dedupe_days: i64,
    /// Notifications and endpoints kept between calls (`with_config_cache`).
    config: config::ConfigCache,
    /// Base keys of schedules the caller was told (`remember_locations`):
    /// read directly instead of through the eventually consistent `lookup` index.
    locations: Mutex<HashMap<String, (String, String)>>,
    /// Days the delivery log is kept (`with_delivery_retention_days`).
    retention_days: Option<i64>,
    /// Seals endpoint secrets at rest (`with_main_key`).
    main_key: Option<std::sync::Arc<lifecycle_core::sealing::MainKey>>,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            timeline_days: Mutex::new(None),
            event_dedupe_days: 400,
            config: config::ConfigCache::default(),
            locations: Mutex::default(),
            retention_days: None,
            main_key: None,
        }
    }

    /// Remembers write event ids for `days` (through the table's TTL).
    pub fn with_event_dedupe_days(mut self, days: i64) -> Self {
        self.event_dedupe_days = days;
        self
    }

    /// The store on `TABLE_NAME` with the ambient AWS configuration.
    pub async fn from_env() -> StoreResult<Self> {
        let table = std::env::var("TABLE_NAME")
            .map_err(|_| StoreError::Unavailable("TABLE_NAME is not set".into()))?;
        let config = aws_config::load_from_env().await;
        Ok(Self::new(Client::new(&config), table))
    }

    /// Where these schedules' items are (id, pk, sk), as a tick read them
    /// from the due index: their next read by id takes each once. Bounded:
    /// a caller that never reads them cannot grow it without end.
    pub fn remember_locations(&self, known: impl IntoIterator<Item = (String, String, String)>) {
        let mut locations = self.locations.lock().unwrap_or_else(|p| p.into_inner());
        if locations.len() > 100_000 {
            locations.clear();
        }
        for (id, pk, sk) in known {
            locations.insert(id, (pk, sk));
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}

/// Whether a conditional write's condition held: false when DynamoDB
/// refused it for the condition, the call's error otherwise.
pub(crate) fn condition_held<T, E, R>(
    sent: Result<T, aws_sdk_dynamodb::error::SdkError<E, R>>,
) -> StoreResult<bool>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match sent {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error().and_then(|e| e.code())
                == Some("ConditionalCheckFailedException") =>
        {
            Ok(false)
        }
        Err(e) => Err(unavailable(e)),
    }
}

pub(crate) fn unavailable(error: impl std::fmt::Debug) -> StoreError {
    StoreError::Unavailable(format!("{error:?}"))
}

pub(crate) fn s(text: impl Into<String>) -> AttributeValue {
    AttributeValue::S(text.into())
}

pub(crate) fn n(number: impl ToString) -> AttributeValue {
    AttributeValue::N(number.to_string())
}

pub(crate) fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("records serialize")
}

pub(crate) fn text<'a>(item: &'a Item, name: &str) -> StoreResult<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(text)) => Ok(text),
        _ => Err(StoreError::Unavailable(format!(
            "item without the text attribute {name}"
        ))),
    }
}

/// A number attribute, if the item has one that parses as `T`.
pub(crate) fn number<T: std::str::FromStr>(item: &Item, name: &str) -> Option<T> {
    match item.get(name) {
        Some(AttributeValue::N(text)) => text.parse().ok(),
        _ => None,
    }
}

/// The core's record kept in `r`.
pub(crate) fn record<T: DeserializeOwned>(item: &Item) -> StoreResult<T> {
    let value = item
        .get("r")
        .ok_or_else(|| StoreError::Unavailable("an item has no record".into()))?;
    serde_json::from_str(&compressed::unpack(value)?)
        .map_err(|e| StoreError::Unavailable(format!("unreadable record: {e}")))
}

pub(crate) fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}
