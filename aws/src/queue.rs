//! The timer queue (SQS): what its messages say and how they are sent.
//!
//! A message is work for the `deliver` function, due after its
//! `DelaySeconds`: timers due at one second (up to `TIMERS_PER_MESSAGE`), or
//! a tick (a minute's timers to read from the due index, all shards or one
//! shard from a cursor). Schedules carry a tick too, as their input.

use crate::dynamodb::time_key;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use chrono::{Duration, DurationRound};
use lifecycle_core::time::{parse_time, Time};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Timers in one message: 100 ids and times are about 8 KB (SQS takes 256
/// KB and bills per 64 KB), and a batch of 10 messages is then 1,000
/// moments for one invocation.
pub const TIMERS_PER_MESSAGE: usize = 100;

/// SQS delays reach 15 minutes.
pub const MAX_DELAY_SECONDS: i32 = 900;

/// A timer: its id (`sch_...`, `dlv_...`) and due time, to the millisecond,
/// with its item's base key when the sender knew it (a tick reads it from
/// the due index): the deliverer then reads the item directly, consistently.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Timer {
    pub timer: String,
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sk: Option<String>,
}

impl Timer {
    pub fn new(id: &str, at: Time) -> Self {
        Timer {
            timer: id.to_string(),
            at: time_key(at),
            pk: None,
            sk: None,
        }
    }

    /// A timer of the due index, with its item's key.
    pub fn of(due: &crate::dynamodb::Due) -> Self {
        let (pk, sk) = due.key.clone().unzip();
        Timer {
            pk,
            sk,
            ..Timer::new(&due.timer, due.at)
        }
    }

    pub fn due(&self) -> Option<Time> {
        parse_time(&self.at)
    }
}

/// What a message (or a schedule's input) asks of `deliver`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Work {
    /// Read a minute's timers from the due index: every shard (`shard`
    /// None: split into one message per shard) or one shard from `cursor`.
    Tick {
        tick: String,
        #[serde(default)]
        gen: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        shard: Option<u16>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cursor: Option<String>,
    },
    /// Run these timers (due at about the same second). `tries` counts the
    /// times a timer was sent back because the schedule was not readable yet.
    Timers {
        timers: Vec<Timer>,
        #[serde(default)]
        tries: u32,
    },
    /// One timer: the input of schedules made before ticks, still accepted.
    One(Timer),
}

impl Work {
    pub fn tick(minute: Time, gen: u32) -> Self {
        Work::Tick {
            tick: time_key(minute),
            gen,
            shard: None,
            cursor: None,
        }
    }
}

/// The delay that makes a message arrive a second before `at` (the
/// deliverer holds the rest).
pub fn delay_seconds(at: Time, now: Time) -> i32 {
    ((at - now).num_seconds() - 1).clamp(0, MAX_DELAY_SECONDS as i64) as i32
}

/// Timers as messages: grouped by the second they are due in, each group in
/// messages of up to `TIMERS_PER_MESSAGE`, each with its delay.
pub fn messages_of(timers: Vec<Timer>, now: Time) -> Vec<(Work, i32)> {
    let mut by_second: BTreeMap<Time, Vec<Timer>> = BTreeMap::new();
    for timer in timers {
        let Some(at) = timer.due() else { continue };
        let second = at
            .duration_trunc(Duration::seconds(1))
            .expect("a second divides any time");
        by_second.entry(second).or_default().push(timer);
    }
    let mut messages = Vec::new();
    for (second, timers) in by_second {
        for chunk in timers.chunks(TIMERS_PER_MESSAGE) {
            let work = Work::Timers {
                timers: chunk.to_vec(),
                tries: 0,
            };
            messages.push((work, delay_seconds(second, now)));
        }
    }
    messages
}

/// The queue and a client for it.
#[derive(Clone, Debug)]
pub struct TimerQueue {
    pub client: aws_sdk_sqs::Client,
    pub url: String,
}

impl TimerQueue {
    /// Sends the messages, ten to a request, eight requests in flight; an
    /// error if any message was refused (the caller's trigger is retried,
    /// and sending twice is harmless: timers are idempotent).
    pub async fn send(&self, messages: &[(Work, i32)]) -> Result<(), String> {
        use futures::stream::{self, StreamExt, TryStreamExt};
        // Owned chunks: futures over borrowed ones trip async-trait's lifetimes.
        let chunks: Vec<Vec<(Work, i32)>> = messages.chunks(10).map(<[_]>::to_vec).collect();
        stream::iter(chunks)
            .map(|chunk| async move { self.send_batch(&chunk).await })
            .buffer_unordered(8)
            .try_collect::<Vec<()>>()
            .await
            .map(drop)
    }

    async fn send_batch(&self, chunk: &[(Work, i32)]) -> Result<(), String> {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, (work, delay))| {
                let body = serde_json::to_string(work).map_err(|e| e.to_string())?;
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body)
                    .delay_seconds(*delay)
                    .build()
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, _>>()?;
        let sent = self
            .client
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| format!("sending to the timer queue: {e:?}"))?;
        if sent.failed().is_empty() {
            Ok(())
        } else {
            Err(format!("the timer queue refused: {:?}", sent.failed()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> Time {
        parse_time(text).unwrap()
    }

    #[test]
    fn messages_round_trip_and_old_inputs_parse() {
        let tick = Work::tick(t("2027-01-01T00:00:00Z"), 2);
        let text = serde_json::to_string(&tick).unwrap();
        assert_eq!(serde_json::from_str::<Work>(&text).unwrap(), tick);
        let old = r#"{"timer": "sch_1", "at": "2027-01-01T00:00:00.000Z", "scheduled_time": "x"}"#;
        let Work::One(timer) = serde_json::from_str::<Work>(old).unwrap() else {
            panic!("an old schedule input is one timer");
        };
        assert_eq!(timer.due(), Some(t("2027-01-01T00:00:00Z")));
    }

    #[test]
    fn timers_are_grouped_by_second_and_delayed_to_it() {
        let now = t("2027-01-01T00:00:00Z");
        let mut timers: Vec<(String, Time)> = (0..250)
            .map(|i| (format!("sch_{i}"), t("2027-01-01T00:01:00.250Z")))
            .collect();
        timers.push(("dlv_1".into(), t("2027-01-01T00:00:05Z")));
        let timers: Vec<Timer> = timers.iter().map(|(id, at)| Timer::new(id, *at)).collect();
        let messages = messages_of(timers, now);
        assert_eq!(messages.len(), 4);
        assert_eq!(messages[0].1, 4);
        let sizes: Vec<usize> = messages
            .iter()
            .map(|(w, _)| match w {
                Work::Timers { timers, .. } => timers.len(),
                _ => 0,
            })
            .collect();
        assert_eq!(sizes, vec![1, 100, 100, 50]);
        assert!(messages[1..].iter().all(|(_, delay)| *delay == 59));
        assert_eq!(delay_seconds(now + Duration::hours(1), now), 900);
    }
}
