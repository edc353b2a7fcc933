//! Notifications and endpoints kept in memory: every write event, fire and
//! attempt reads them, and only this process writes them (the data folder
//! is locked), so the copy is exact as long as each of its writes drops it.
//! Endpoints are kept opened (their secrets unsealed).

use lifecycle_core::endpoint::Endpoint;
use lifecycle_core::notification::Notification;
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub(super) struct ConfigCache {
    inner: Mutex<Cached>,
}

#[derive(Default)]
struct Cached {
    /// Bumped by every write: a read that started before one does not fill
    /// the cache with what it read.
    generation: u64,
    notifications: Option<Arc<Vec<Notification>>>,
    endpoints: Option<Arc<Vec<Endpoint>>>,
}

/// Which of the two a table holds.
pub(super) enum Table {
    Notifications,
    Endpoints,
}

impl Table {
    pub(super) fn of(name: &str) -> Option<Self> {
        match name {
            "notifications" => Some(Table::Notifications),
            "endpoints" => Some(Table::Endpoints),
            _ => None,
        }
    }
}

impl ConfigCache {
    /// The generation to pass to `fill_*` after reading from the database.
    pub(super) fn generation(&self) -> u64 {
        self.lock().generation
    }

    pub(super) fn notifications(&self) -> Option<Arc<Vec<Notification>>> {
        self.lock().notifications.clone()
    }

    pub(super) fn endpoints(&self) -> Option<Arc<Vec<Endpoint>>> {
        self.lock().endpoints.clone()
    }

    pub(super) fn fill_notifications(
        &self,
        generation: u64,
        read: Vec<Notification>,
    ) -> Arc<Vec<Notification>> {
        self.fill(generation, read, |cached| &mut cached.notifications)
    }

    pub(super) fn fill_endpoints(
        &self,
        generation: u64,
        read: Vec<Endpoint>,
    ) -> Arc<Vec<Endpoint>> {
        self.fill(generation, read, |cached| &mut cached.endpoints)
    }

    /// Keeps what was read unless a write came since `generation`.
    fn fill<T>(
        &self,
        generation: u64,
        read: Vec<T>,
        slot: impl FnOnce(&mut Cached) -> &mut Option<Arc<Vec<T>>>,
    ) -> Arc<Vec<T>> {
        let read = Arc::new(read);
        let mut cached = self.lock();
        if cached.generation == generation {
            *slot(&mut cached) = Some(read.clone());
        }
        read
    }

    /// Drops the copy of a table, after a write to it committed. A read
    /// that saw the rows before the write either filled the cache before
    /// this (and is dropped now) or fills it after (and is refused).
    pub(super) fn forget(&self, table: Table) {
        let mut cached = self.lock();
        cached.generation += 1;
        match table {
            Table::Notifications => cached.notifications = None,
            Table::Endpoints => cached.endpoints = None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cached> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
