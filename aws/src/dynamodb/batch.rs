//! Unconditional puts, 25 to a BatchWriteItem: one write unit per KB each
//! (a transaction bills two), several batches side by side, the items a
//! batch left unprocessed sent again until none is left.

use super::{unavailable, DynamoStore, Item};
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use futures::stream::{self, StreamExt, TryStreamExt};
use lifecycle_core::ports::StoreResult;

/// BatchWriteItem's limit.
const PER_BATCH: usize = 25;
const BATCHES_IN_FLIGHT: usize = 8;

impl DynamoStore {
    /// Puts every item; of two with one key, the later (DynamoDB refuses a
    /// batch that names a key twice).
    pub(crate) async fn batch_put(&self, items: Vec<Item>) -> StoreResult<()> {
        let mut last = std::collections::HashMap::new();
        for (i, item) in items.iter().enumerate() {
            last.insert(super::reads::key_text(item), i);
        }
        let requests: Vec<WriteRequest> = (items.into_iter().enumerate())
            .filter(|(i, item)| last.get(&super::reads::key_text(item)) == Some(i))
            .map(|(_, item)| item)
            .map(|item| {
                let put = PutRequest::builder().set_item(Some(item)).build();
                put.map(|put| WriteRequest::builder().put_request(put).build())
                    .map_err(unavailable)
            })
            .collect::<StoreResult<_>>()?;
        let batches: Vec<Vec<WriteRequest>> =
            requests.chunks(PER_BATCH).map(<[_]>::to_vec).collect();
        stream::iter(batches)
            .map(|batch| self.write_batch(batch))
            .buffer_unordered(BATCHES_IN_FLIGHT)
            .try_collect::<Vec<()>>()
            .await
            .map(drop)
    }

    async fn write_batch(&self, mut batch: Vec<WriteRequest>) -> StoreResult<()> {
        let mut rounds = 0;
        while !batch.is_empty() {
            let answer = self
                .client
                .batch_write_item()
                .request_items(&self.table, batch)
                .send()
                .await
                .map_err(unavailable)?;
            batch = answer
                .unprocessed_items
                .and_then(|mut u| u.remove(&self.table))
                .unwrap_or_default();
            rounds += 1;
            if !batch.is_empty() {
                tokio::time::sleep(std::time::Duration::from_millis(10 * rounds)).await;
            }
        }
        Ok(())
    }
}
