//! Ticks in the `deliver` function: a minute's timers read from the `due`
//! index and put on the timer queue, each group due at one second in a
//! message delayed to that second (`lifecycle_aws::queue`).
//!
//! A tick (from its schedule, or from the sweep's re-wake) first takes its
//! generation, so a duplicate invocation does nothing; then it splits into
//! one message per shard of the index, so a boundary of millions is read by
//! many invocations side by side. A shard's step pages from its cursor, queues
//! each page, and moves the cursor conditionally: a retried or duplicated
//! step finds the cursor moved and stops, so a shard's chain never forks
//! (a shard of one page has no chain, and saves no cursor).
//! A step near its deadline continues in a message of its own.

use crate::Runtime;
use chrono::Duration;
use lifecycle_aws::dynamodb::DUE_SHARDS;
use lifecycle_aws::queue::{messages_of, Timer};
use lifecycle_aws::Work;
use lifecycle_core::time::Time;
use std::time::Instant;

/// Timers read per page of a shard (one query of the keys-only index).
pub const PAGE: usize = 1000;

/// A step stops paging this long before its invocation's deadline.
const MARGIN: std::time::Duration = std::time::Duration::from_secs(30);

/// What a tick or a shard step did.
#[derive(Debug, PartialEq, serde::Serialize)]
pub enum TickOutcome {
    /// The generation was taken: one message per shard is queued.
    Split { shards: u16 },
    /// A shard's timers queued; `continues` if a message carries on from a cursor.
    Queued { timers: usize, continues: bool },
    /// Another invocation has this tick or step: nothing done.
    Duplicate,
}

/// Runs a tick (`shard` None) or one shard's step of it.
pub async fn run(
    rt: &Runtime,
    minute: Time,
    gen: u32,
    shard: Option<u16>,
    cursor: Option<String>,
    deadline: Option<Instant>,
) -> Result<TickOutcome, String> {
    let queue = rt.queue()?;
    let Some(shard) = shard else {
        if !rt
            .store
            .take_tick(minute, gen)
            .await
            .map_err(|e| e.to_string())?
        {
            return Ok(TickOutcome::Duplicate);
        }
        let tick = lifecycle_aws::dynamodb::time_key(minute);
        let steps: Vec<(Work, i32)> = (0..DUE_SHARDS)
            .map(|shard| {
                let step = Work::Tick {
                    tick: tick.clone(),
                    gen,
                    shard: Some(shard),
                    cursor: None,
                };
                (step, 0)
            })
            .collect();
        queue.send(&steps).await?;
        return Ok(TickOutcome::Split { shards: DUE_SHARDS });
    };
    let end = minute + Duration::minutes(1);
    let mut cursor = cursor;
    let mut queued = 0;
    loop {
        let page = (rt.store)
            .due_page(shard, minute, end, cursor.as_deref(), PAGE)
            .await
            .map_err(|e| e.to_string())?;
        let timers: Vec<Timer> = page.timers.iter().map(Timer::of).collect();
        let count = timers.len();
        if count > 0 {
            queue.send(&messages_of(timers, rt.clock.now())).await?;
        }
        // A shard read whole in its first page has no chain to fork: a
        // duplicate step reads and queues the same timers again, which fire
        // once. Saving no cursor for it keeps a quiet minute's tick at one
        // write instead of one per shard.
        let whole = cursor.is_none() && page.next.is_none();
        let moved = whole
            || (rt.store)
                .advance_tick(minute, gen, shard, cursor.as_deref(), page.next.as_deref())
                .await
                .map_err(|e| e.to_string())?;
        if !moved {
            return Ok(TickOutcome::Duplicate);
        }
        queued += count;
        let Some(next) = page.next else {
            return Ok(TickOutcome::Queued {
                timers: queued,
                continues: false,
            });
        };
        if deadline.is_some_and(|d| d.saturating_duration_since(Instant::now()) < MARGIN) {
            let step = Work::Tick {
                tick: lifecycle_aws::dynamodb::time_key(minute),
                gen,
                shard: Some(shard),
                cursor: Some(next),
            };
            queue.send(&[(step, 0)]).await?;
            return Ok(TickOutcome::Queued {
                timers: queued,
                continues: true,
            });
        }
        cursor = Some(next);
    }
}
