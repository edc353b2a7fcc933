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
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The cache; `ttl` None reads the partitions on every call.
#[derive(Default)]
pub(crate) struct ConfigCache {
    pub(crate) ttl: Option<Duration>,
    state: Mutex<Cached>,
}

#[derive(Default, Clone)]
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

    fn snapshot(&self) -> Cached {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn store(&self, update: impl FnOnce(&mut Cached)) {
        update(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

/// Which of the two partitions.
#[derive(Clone, Copy)]
enum Part {
    Notifications,
    Endpoints,
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
        if let Some(found) = self.cached(Part::Notifications).await? {
            return Ok(found.0);
        }
        let version = self.config_version().await?;
        let read: Vec<Notification> = self.load_partition("NTF").await?;
        self.remember(version, |c| c.notifications = Some(read.clone()));
        Ok(read)
    }

    pub(super) async fn cached_endpoints(&self) -> StoreResult<Vec<Endpoint>> {
        if let Some(found) = self.cached(Part::Endpoints).await? {
            return Ok(found.1);
        }
        let version = self.config_version().await?;
        let read: Vec<Endpoint> = self.load_partition("EP").await?;
        self.remember(version, |c| c.endpoints = Some(read.clone()));
        Ok(read)
    }

    /// What the cache holds for `part` if it is still current, checking
    /// the version when `ttl` has passed; None: read the partition.
    async fn cached(&self, part: Part) -> StoreResult<Option<(Vec<Notification>, Vec<Endpoint>)>> {
        let Some(ttl) = self.config.ttl else {
            return Ok(None);
        };
        let cached = self.config.snapshot();
        let held = match part {
            Part::Notifications => cached.notifications.is_some(),
            Part::Endpoints => cached.endpoints.is_some(),
        };
        if !held {
            return Ok(None);
        }
        let fresh = cached.checked.is_some_and(|at| at.elapsed() < ttl);
        if !fresh {
            let version = self.config_version().await?;
            if version != cached.version {
                self.config.invalidate();
                return Ok(None);
            }
            self.config.store(|c| c.checked = Some(Instant::now()));
        }
        Ok(Some((
            cached.notifications.unwrap_or_default(),
            cached.endpoints.unwrap_or_default(),
        )))
    }

    /// Keeps a partition read under `version` (read before the partition,
    /// so a write in between shows as a newer version at the next check).
    fn remember(&self, version: Option<String>, put: impl FnOnce(&mut Cached)) {
        if self.config.ttl.is_none() {
            return;
        }
        self.config.store(|c| {
            if c.version != version {
                *c = Cached::default();
                c.version = version;
            }
            c.checked.get_or_insert_with(Instant::now);
            put(c);
        });
    }
}
