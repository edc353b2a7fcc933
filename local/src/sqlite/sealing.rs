//! Endpoint signing secrets sealed under the main key
//! (`lifecycle_core::sealing`), and the data folder's files readable by
//! their owner only. The database keeps the key's fingerprint (`meta`), so a
//! wrong key is refused at open, before anything is written, instead of
//! sealing new secrets under a second key.

use super::{unavailable, SqliteStore};
use lifecycle_core::endpoint::Endpoint;
use lifecycle_core::ports::{StoreError, StoreResult};
use lifecycle_core::sealing::{is_sealed, MainKey};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::Arc;

const FINGERPRINT: &str = "main_key_fingerprint";

pub(super) fn private_file(path: &Path) -> StoreResult<()> {
    crate::data_folder::private_file(path).map_err(StoreError::Unavailable)
}

/// The database's own files beside it, narrowed as `private_file` does.
pub(super) fn private_files(database: &Path) -> StoreResult<()> {
    private_file(database)?;
    for suffix in ["-wal", "-shm"] {
        let mut name = database.as_os_str().to_owned();
        name.push(suffix);
        let path = std::path::PathBuf::from(name);
        if path.exists() {
            private_file(&path)?;
        }
    }
    Ok(())
}

impl SqliteStore {
    /// Opens the database with endpoint secrets sealed under `key`. On the
    /// first open with a key, every secret is sealed; with `previous` (the
    /// key they are sealed under now), every secret is sealed again under
    /// `key`. Any other key is an error, and nothing is written.
    pub fn open_sealed(path: &Path, key: MainKey, previous: Option<MainKey>) -> StoreResult<Self> {
        let mut store = Self::open(path)?;
        {
            let mut c = store
                .connection
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            seal_all(&mut c, &key, previous.as_ref())?;
        }
        store.main_key = Some(Arc::new(key));
        Ok(store)
    }

    pub(super) fn sealed(&self, endpoint: &Endpoint) -> Endpoint {
        lifecycle_core::sealing::sealed(self.main_key.as_deref(), endpoint)
    }

    pub(super) fn opened(&self, endpoint: Endpoint) -> StoreResult<Endpoint> {
        lifecycle_core::sealing::opened(self.main_key.as_deref(), endpoint).map_err(unavailable)
    }
}

fn seal_all(c: &mut Connection, key: &MainKey, previous: Option<&MainKey>) -> StoreResult<()> {
    let stored: Option<String> = c
        .query_row(
            "SELECT value FROM meta WHERE name = ?1",
            [FINGERPRINT],
            |r| r.get(0),
        )
        .optional()
        .map_err(unavailable)?;
    let sealed_under = match stored {
        None => None,
        Some(f) if f == key.fingerprint() => Some(key),
        Some(f) if previous.is_some_and(|p| p.fingerprint() == f) => previous,
        Some(f) => {
            return Err(StoreError::Unavailable(format!(
                "the main key given (fingerprint {}) is not the one this data folder's \
                 signing secrets are sealed under (fingerprint {f}): start with that key, or \
                 to change keys give the new one as the main key and that one with \
                 --previous-secret-key-file",
                key.fingerprint()
            )))
        }
    };
    let tx = c.transaction().map_err(unavailable)?;
    let rows: Vec<(String, String)> = {
        let mut statement = tx
            .prepare("SELECT id, record FROM endpoints")
            .map_err(unavailable)?;
        let rows = statement
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(unavailable)?;
        rows.collect::<Result<_, _>>().map_err(unavailable)?
    };
    for (id, record) in rows {
        let mut endpoint: Endpoint = serde_json::from_str(&record).map_err(unavailable)?;
        let plain = endpoint.secrets.iter().any(|s| !is_sealed(&s.value));
        if !plain && sealed_under.is_some_and(|k| k.fingerprint() == key.fingerprint()) {
            continue;
        }
        if let Some(under) = sealed_under {
            endpoint = under.open_endpoint(endpoint).map_err(unavailable)?;
        }
        let resealed = serde_json::to_string(&key.seal_endpoint(&endpoint)).map_err(unavailable)?;
        tx.execute(
            "UPDATE endpoints SET record = ?2 WHERE id = ?1",
            params![id, resealed],
        )
        .map_err(unavailable)?;
    }
    tx.execute(
        "INSERT OR REPLACE INTO meta (name, value) VALUES (?1, ?2)",
        params![FINGERPRINT, key.fingerprint()],
    )
    .map_err(unavailable)?;
    tx.commit().map_err(unavailable)
}
