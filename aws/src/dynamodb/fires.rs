//! Fires: a due schedule becomes its message and its deliveries.
//!
//! Not a transaction, which bills every item and index entry twice (at a
//! month boundary, most of what a moment writes). Three steps, each safe to
//! repeat: the message is inserted once; the schedule leaves `pending` only
//! if it is still pending at the expected time, noting the ids of the
//! deliveries it fired (`fd`); then the deliveries are inserted once each.
//! A crash after the second step leaves the schedule fired without all of
//! its deliveries: the trigger is retried (its queue message is not deleted),
//! finds the schedule fired at that time by this same fire, and inserts the
//! noted deliveries that are missing. A retry that finds them all, or a
//! schedule another fire took, commits nothing and answers false, as the
//! port asks (only its message may stay, referred to by nothing).

use super::keys::{delivery_item, message_item, schedule_item, schedule_key, time_key};
use super::{s, text, DynamoStore};
use aws_sdk_dynamodb::types::AttributeValue;
use futures::stream::{self, StreamExt, TryStreamExt};
use lifecycle_core::ports::{FireCommit, StoreResult};
use std::collections::HashSet;

/// Fires in flight: a batch of a thousand moments must not wait for a
/// thousand round trips one after another.
const FIRES_IN_FLIGHT: usize = 32;

/// The attribute of a fired schedule listing the deliveries its fire made.
const FIRED_DELIVERIES: &str = "fd";

impl DynamoStore {
    /// Fires side by side, answered in order.
    pub(super) async fn fire_all(&self, fires: &[FireCommit]) -> StoreResult<Vec<bool>> {
        self.note_timeline(fires.iter().flat_map(|f| f.deliveries.iter()))
            .await?;
        stream::iter(0..fires.len())
            .map(|i| self.fire_one(&fires[i]))
            .buffered(FIRES_IN_FLIGHT)
            .try_collect()
            .await
    }

    async fn fire_one(&self, fire: &FireCommit) -> StoreResult<bool> {
        let expected = s(time_key(fire.expected_fire_at));
        // First, so that no delivery is ever stored without its message. A
        // fire that then finds its schedule taken leaves the message behind:
        // a concurrent fire of the same moment may be relying on it, and no
        // delivery refers to it otherwise (it expires with the log).
        if let Some(message) = &fire.message {
            let item = message_item(&message.id, &message.body);
            self.insert_once(self.expiring(item, fire.schedule.updated_at))
                .await?;
        }
        let mut item = schedule_item(&fire.schedule);
        if !fire.deliveries.is_empty() {
            let ids = fire.deliveries.iter().map(|d| d.id.clone()).collect();
            item.insert(FIRED_DELIVERIES.into(), AttributeValue::Ss(ids));
        }
        let values = vec![(":pending", s("pending")), (":fa", expected.clone())];
        let took = self
            .put_when(item, "st = :pending AND fa = :fa", values)
            .await?;
        let owed: Vec<usize> = if took {
            (0..fire.deliveries.len()).collect()
        } else {
            match self.owed_by_earlier_fire(fire, &expected).await? {
                Some(owed) => owed,
                None => return Ok(false),
            }
        };
        let made: Vec<bool> = stream::iter(owed)
            .map(|i| {
                let d = &fire.deliveries[i];
                self.insert_once(self.expiring(delivery_item(d), d.created_at))
            })
            .buffered(FIRES_IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(took || made.contains(&true))
    }

    /// When the schedule was taken by an earlier run of this same fire (in
    /// the state it moves to, at the expected time), the deliveries of this
    /// fire that it noted: some may be missing after a crash.
    async fn owed_by_earlier_fire(
        &self,
        fire: &FireCommit,
        expected: &AttributeValue,
    ) -> StoreResult<Option<Vec<usize>>> {
        let k = schedule_key(&fire.schedule);
        let (pk, sk) = (text(&k, "pk")?.to_string(), text(&k, "sk")?.to_string());
        let Some(stored) = self.get(pk, &sk).await? else {
            return Ok(None);
        };
        let same_fire = text(&stored, "st").ok() == Some(fire.schedule.state.as_str())
            && stored.get("fa") == Some(expected);
        let noted: HashSet<&String> = match stored.get(FIRED_DELIVERIES) {
            Some(AttributeValue::Ss(ids)) if same_fire => ids.iter().collect(),
            _ => return Ok(None),
        };
        let owed = (0..fire.deliveries.len())
            .filter(|&i| noted.contains(&fire.deliveries[i].id))
            .collect();
        Ok(Some(owed))
    }
}
