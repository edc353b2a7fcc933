//! Endpoint signing secrets sealed under the main key
//! (`lifecycle_core::sealing`), as the local store seals them: the table
//! and its backups hold no secret in the clear. The key's fingerprint sits
//! in `CFG/KEY`, so a function given another key refuses to start instead
//! of sealing new secrets under a second key.

use super::{key, s, text, to_json, unavailable, DynamoStore};
use lifecycle_core::endpoint::Endpoint;
use lifecycle_core::ports::{StoreError, StoreResult};
use lifecycle_core::sealing::MainKey;
use std::sync::Arc;

impl DynamoStore {
    /// Seals endpoint secrets under `key` (see `check_main_key`).
    pub fn with_main_key(mut self, key: MainKey) -> Self {
        self.main_key = Some(Arc::new(key));
        self
    }

    /// Once per execution environment: the key must be the one the table's
    /// secrets are sealed under. The first environment with a key records
    /// its fingerprint and seals the secrets written before; any other key
    /// is an error, with nothing written.
    pub async fn check_main_key(&self) -> StoreResult<()> {
        let Some(main_key) = &self.main_key else {
            return Ok(());
        };
        let fingerprint = main_key.fingerprint();
        if let Some(item) = self.get("CFG".into(), "KEY").await? {
            let stored = text(&item, "fp")?;
            if stored == fingerprint {
                return Ok(());
            }
            return Err(StoreError::Unavailable(format!(
                "the main key (fingerprint {fingerprint}) is not the one this table's signing \
                 secrets are sealed under (fingerprint {stored})"
            )));
        }
        let mut item = key("CFG", "KEY");
        item.insert("fp".into(), s(&fingerprint));
        if !self.insert_once(item).await? {
            // Another environment recorded one first: check against it.
            return Box::pin(self.check_main_key()).await;
        }
        let plain: Vec<Endpoint> = self.load_partition("EP").await?;
        for endpoint in plain {
            self.put_config_record("EP", &endpoint.id, to_json(&self.sealed(&endpoint)), "EP")
                .await?;
        }
        Ok(())
    }

    pub(super) fn sealed(&self, endpoint: &Endpoint) -> Endpoint {
        lifecycle_core::sealing::sealed(self.main_key.as_deref(), endpoint)
    }

    pub(super) fn opened(&self, endpoint: Endpoint) -> StoreResult<Endpoint> {
        lifecycle_core::sealing::opened(self.main_key.as_deref(), endpoint).map_err(unavailable)
    }
}
