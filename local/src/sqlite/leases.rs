//! Leases on the deliveries being attempted, held in memory instead of
//! written to the database: an attempt then costs no write before its send,
//! which was a third of the writer's work in a storm. That is sound because
//! one process owns a data folder (the lock file below), and a process that
//! dies takes its leases with it: its deliveries are due again as soon as it
//! restarts, with the same webhook ids.

use lifecycle_core::ports::{StoreError, StoreResult};
use lifecycle_core::schedule::Delivery;
use lifecycle_core::time::Time;
use std::collections::HashMap;
use std::fs::{File, TryLockError};
use std::path::Path;
use std::sync::Mutex;

#[derive(Default)]
pub(super) struct Leases(Mutex<HashMap<String, Time>>);

impl Leases {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Time>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes `id` until `until`, unless it is held past `now`.
    pub(super) fn take(&self, id: &str, now: Time, until: Time) -> bool {
        let mut map = self.map();
        if map.get(id).is_some_and(|&end| end > now) {
            return false;
        }
        map.insert(id.to_string(), until);
        true
    }

    pub(super) fn held(&self, id: &str, now: Time) -> bool {
        self.map().get(id).is_some_and(|&end| end > now)
    }

    /// A delivery as this process sees it: one being attempted is next
    /// attempted when its lease ends, as a store that writes leases says.
    pub(super) fn show(&self, delivery: &mut Delivery) {
        if let Some(&end) = self.map().get(&delivery.id) {
            delivery.next_attempt_at = Some(end);
        }
    }

    /// Whether another claim took `id` since the one that leased it until
    /// `until` (a lease ends, a claim may take the delivery again).
    pub(super) fn taken_since(&self, id: &str, until: Time) -> bool {
        self.map().get(id).is_some_and(|&end| end != until)
    }

    /// Releases each lease that is still the one given (None: whatever is held).
    pub(super) fn release_own<'a>(
        &self,
        leases: impl IntoIterator<Item = (&'a str, Option<Time>)>,
    ) {
        let mut map = self.map();
        for (id, until) in leases {
            if until.is_none_or(|until| map.get(id) == Some(&until)) {
                map.remove(id);
            }
        }
    }

    pub(super) fn release<'a>(&self, ids: impl IntoIterator<Item = &'a str>) {
        let mut map = self.map();
        for id in ids {
            map.remove(id);
        }
    }

    /// When the soonest lease held past `now` ends: its delivery is due
    /// again then, should its attempt never have been recorded.
    pub(super) fn soonest_end(&self, now: Time) -> Option<Time> {
        self.map().values().copied().filter(|&end| end > now).min()
    }
}

/// Locks the database for this process, for as long as the file is open:
/// a second process on the same data folder would send every webhook a
/// second time, so it is refused with an error that says why.
pub(super) fn lock(database: &Path) -> StoreResult<File> {
    let path = database.with_extension("lock");
    super::sealing::private_file(&path)?;
    let file = File::options()
        .write(true)
        .open(&path)
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(StoreError::Unavailable(format!(
            "{} is in use by another process: one process serves a data folder",
            database.display()
        ))),
        Err(TryLockError::Error(e)) => Err(StoreError::Unavailable(format!(
            "cannot lock {}: {e}",
            path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifecycle_core::time::parse_time;

    #[test]
    fn a_lease_holds_until_it_ends_or_is_released() {
        let at = |s: &str| parse_time(s).unwrap();
        let leases = Leases::default();
        let (now, end) = (at("2026-11-25T00:00:00Z"), at("2026-11-25T00:00:45Z"));
        assert!(leases.take("dlv_1", now, end));
        assert!(
            !leases.take("dlv_1", at("2026-11-25T00:00:44Z"), end),
            "held"
        );
        assert!(leases.held("dlv_1", now));
        assert!(leases.take("dlv_2", now, at("2026-11-25T00:00:30Z")));
        assert_eq!(leases.soonest_end(now), Some(at("2026-11-25T00:00:30Z")));
        assert_eq!(leases.soonest_end(at("2026-11-25T00:00:30Z")), Some(end));

        // One that ran out is taken again, by whoever asks first.
        assert!(leases.take("dlv_1", end, at("2026-11-25T00:01:30Z")));
        leases.release(["dlv_1"]);
        assert!(!leases.held("dlv_1", now));
        assert!(leases.take("dlv_1", now, end), "free once released");
    }
}
