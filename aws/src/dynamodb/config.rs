//! Notifications and endpoints, cached per execution environment.
//!
//! Every fire and every batch of attempts reads the whole `NTF` and `EP`
//! partitions; read each time, a storm of webhooks reads those two
//! partitions once per webhook and a partition serves 3,000 read units a
//! second (`infra/README.md`, "Config reads"). So a store made
//! `with_config_cache(ttl)` keeps them in memory and checks the
//! configuration version (`CFG/V`, bumped in the same transaction as every
//! notification and endpoint write) at most once per `ttl`: a change made
//! elsewhere is seen within `ttl`, one made through this store at once, and
//! the partitions are read again only when the version moved.

use super::{text, DynamoStore};
use lifecycle_core::endpoint::Endpoint;
use lifecycle_core::notification::Notification;
use lifecycle_core::ports::StoreResult;
use serde::de::DeserializeOwned;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The cache; `ttl` None reads the partitions on every call.
#[derive(Default)]
pub(crate) struct ConfigCache {
    pub(crate) ttl: Option<Duration>,
    state: Mutex<Cached>,
}

#[derive(Default)]
struct Cached {
    /// The `CFG/V` value the records below were read under, and when it was checked.
    version: Option<String>,
    checked: Option<Instant>,
    notifications: Option<Vec<Notification>>,
    endpoints: Option<Vec<Endpoint>>,
}

impl ConfigCache {
    pub(crate) fn with_ttl(ttl: Duration) -> Self {
        ConfigCache {
            ttl: Some(ttl),
            state: Mutex::default(),
        }
    }

    /// Forgets everything: this store just wrote a notification or endpoint.
    pub(crate) fn invalidate(&self) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = Cached::default();
    }

    fn with<R>(&self, f: impl FnOnce(&mut Cached) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl DynamoStore {
    /// Caches notifications and endpoints for up to `ttl` (see the module).
    pub fn with_config_cache(mut self, ttl: Duration) -> Self {
        self.config = ConfigCache::with_ttl(ttl);
        self
    }

    async fn config_version(&self) -> StoreResult<Option<String>> {
        let item = self.get("CFG".into(), "V").await?;
        Ok(item.and_then(|item| match item.get("v") {
            Some(aws_sdk_dynamodb::types::AttributeValue::N(v)) => Some(v.clone()),
            _ => text(&item, "v").ok().map(str::to_string),
        }))
    }

    pub(super) async fn cached_notifications(&self) -> StoreResult<Vec<Notification>> {
        self.cached_partition("NTF", |c| &mut c.notifications).await
    }

    pub(super) async fn cached_endpoints(&self) -> StoreResult<Vec<Endpoint>> {
        self.cached_partition("EP", |c| &mut c.endpoints).await
    }

    /// A partition from the cache while it is current (the version checked
    /// once `ttl` has passed); otherwise read, and kept under the version
    /// read before it, so a write in between shows as a newer version at the
    /// next check.
    async fn cached_partition<T: Clone + DeserializeOwned>(
        &self,
        pk: &str,
        slot: fn(&mut Cached) -> &mut Option<Vec<T>>,
    ) -> StoreResult<Vec<T>> {
        let Some(ttl) = self.config.ttl else {
            return self.load_partition(pk).await;
        };
        let (held, version, checked) =
            (self.config).with(|c| (slot(c).clone(), c.version.clone(), c.checked));
        let mut current = None;
        if let Some(held) = held {
            if checked.is_some_and(|at| at.elapsed() < ttl) {
                return Ok(held);
            }
            let now = self.config_version().await?;
            if now == version {
                self.config.with(|c| c.checked = Some(Instant::now()));
                return Ok(held);
            }
            current = Some(now);
        }
        let version = match current {
            Some(version) => version,
            None => self.config_version().await?,
        };
        let read: Vec<T> = self.load_partition(pk).await?;
        self.config.with(|c| {
            if c.version != version {
                *c = Cached::default();
                c.version = version;
            }
            c.checked.get_or_insert_with(Instant::now);
            *slot(c) = Some(read.clone());
        });
        Ok(read)
    }
}
