//! Fires: a due schedule becomes its message and its deliveries.
//!
//! Not a transaction, which bills every item and index entry twice (at a
//! month boundary, most of what a moment writes). Three steps, each safe to
//! repeat, each taken for a whole batch of fires before the next: every
//! schedule leaves `pending` only if it is still pending at the expected
//! time, noting the ids of the deliveries it fired (`fd`); then the messages
//! of the schedules taken are put, 25 to a call; then their deliveries. A
//! crash between the steps leaves a schedule fired without its message or
//! some of its deliveries: the trigger is retried (its queue message is not
//! deleted), finds the schedule fired at that time by this same fire, and
//! inserts the message and the noted deliveries that are missing, each only
//! if absent. A retry that finds them all, or a schedule another fire took,
//! commits nothing and answers false, as the port asks.
//!
//! The batched puts are unconditional: only the fire that took a schedule
//! writes them, and a retry running beside it writes the same ids (nothing
//! is attempted before the fire's own queue step, after all three).

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

/// What taking a fire's schedule found.
enum Take {
    /// Taken now: the message and every delivery are still to be written.
    Taken,
    /// Taken by an earlier run of this fire: the deliveries (indexes) it
    /// noted, with the message, each written unless present.
    Resumed(Vec<usize>),
    /// Taken by another fire, or no longer due: nothing to write.
    Lost,
}

impl DynamoStore {
    /// Fires side by side, answered in order.
    pub(super) async fn fire_all(&self, fires: &[FireCommit]) -> StoreResult<Vec<bool>> {
        self.note_timeline(fires.iter().flat_map(|f| f.deliveries.iter()))
            .await?;
        let takes: Vec<Take> = stream::iter(0..fires.len())
            .map(|i| self.take(&fires[i]))
            .buffered(FIRES_IN_FLIGHT)
            .try_collect()
            .await?;
        let taken = || {
            (fires.iter().zip(&takes))
                .filter(|(_, take)| matches!(take, Take::Taken))
                .map(|(fire, _)| fire)
        };
        let messages = taken()
            .filter_map(|fire| fire.message.as_ref().map(|m| (fire, m)))
            .map(|(fire, m)| self.expiring(message_item(&m.id, &m.body), fire.schedule.updated_at))
            .collect();
        self.batch_put(messages).await?;
        let deliveries = taken()
            .flat_map(|fire| fire.deliveries.iter())
            .map(|d| self.expiring(delivery_item(d), d.created_at))
            .collect();
        self.batch_put(deliveries).await?;
        stream::iter(takes.into_iter().enumerate())
            .map(|(i, take)| async move {
                match take {
                    Take::Taken => Ok(true),
                    Take::Resumed(owed) => self.resume(&fires[i], owed).await,
                    Take::Lost => Ok(false),
                }
            })
            .buffered(FIRES_IN_FLIGHT)
            .try_collect()
            .await
    }

    /// Moves the schedule out of `pending`, if it still is at the expected time.
    async fn take(&self, fire: &FireCommit) -> StoreResult<Take> {
        let expected = s(time_key(fire.expected_fire_at));
        let mut item = schedule_item(&fire.schedule);
        if !fire.deliveries.is_empty() {
            let ids = fire.deliveries.iter().map(|d| d.id.clone()).collect();
            item.insert(FIRED_DELIVERIES.into(), AttributeValue::Ss(ids));
        }
        let values = vec![(":pending", s("pending")), (":fa", expected.clone())];
        if self
            .put_when(item, "st = :pending AND fa = :fa", values)
            .await?
        {
            return Ok(Take::Taken);
        }
        Ok(match self.owed_by_earlier_fire(fire, &expected).await? {
            Some(owed) => Take::Resumed(owed),
            None => Take::Lost,
        })
    }

    /// Finishes what an earlier run of this fire took: its message, then
    /// the noted deliveries, each inserted unless present. Whether any was.
    async fn resume(&self, fire: &FireCommit, owed: Vec<usize>) -> StoreResult<bool> {
        if let Some(message) = &fire.message {
            let item = message_item(&message.id, &message.body);
            self.insert_once(self.expiring(item, fire.schedule.updated_at))
                .await?;
        }
        let made: Vec<bool> = stream::iter(owed)
            .map(|i| {
                let d = &fire.deliveries[i];
                self.insert_once(self.expiring(delivery_item(d), d.created_at))
            })
            .buffered(FIRES_IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(made.contains(&true))
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
