//! Fan-out of a notification change over every entity of its kind, in
//! pages, continued through the table's own stream: a job item (the store's
//! `start_fan_out`, `aws/src/dynamodb/jobs.rs`) holds the generation (the
//! notification's `updated_at`, or the deletion) and the cursor; each change
//! of that item is a stream record that invokes `schedule` for the next
//! pages. No self-invocation is needed, a crashed invocation is retried by
//! the stream, and a newer edit (a new generation) makes the older job's
//! conditional writes fail, so it stops.
//! Each page is the core's own (`Service::reschedule_page`); the schedule
//! items it writes reach their ticks through the stream like any others.

use crate::Runtime;
use lifecycle_core::notification::Notification;
use lifecycle_core::ports::Store;
use std::time::{Duration, Instant};

/// Starts (or restarts, superseding a running one) the fan-out of a
/// notification change: writes its job; the job's stream record runs the pages.
pub async fn start(
    rt: &Runtime,
    notification: &Notification,
    exists: bool,
    gen: &str,
) -> Result<(), String> {
    if !notification.event_type.is_time_based() || notification.event_type.kind().is_none() {
        return Ok(());
    }
    rt.store
        .start_fan_out(notification, exists, gen, rt.clock.now())
        .await
        .map_err(|e| format!("starting the fan-out of {}: {e}", notification.id))
}

/// How a job step ended.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// Pages done, the cursor saved: the job's stream record continues it.
    Continued {
        after: String,
        entities: usize,
    },
    Done {
        entities: usize,
    },
    /// A newer change of the notification took over.
    Superseded,
}

/// Runs pages of a job from `after`: at most `Settings::fanout_pages`, and
/// none once less than two minutes remain before `deadline`.
pub async fn step(
    rt: &Runtime,
    job: &crate::stream::Image,
    deadline: Option<Instant>,
) -> Result<Step, String> {
    let (Some(id), Some(gen), Some(record)) = (&job.ntf, &job.gen, &job.r) else {
        return Ok(Step::Superseded);
    };
    let exists = job.exists.unwrap_or(true);
    let recorded: Notification = serde_json::from_str(record).map_err(|e| e.to_string())?;
    let notification = if exists {
        // The notification as it is now; a newer edit has its own job.
        match rt.store.notification(id).await.map_err(|e| e.to_string())? {
            Some(n) if n.updated_at.to_rfc3339() == *gen => n,
            _ => return Ok(Step::Superseded),
        }
    } else {
        recorded
    };
    if notification.event_type.kind().is_none() {
        return Ok(Step::Done { entities: 0 });
    }
    let mut after = job.after.clone();
    let mut entities = 0;
    let mut done = false;
    for _ in 0..rt.settings.fanout_pages.max(1) {
        if deadline
            .is_some_and(|d| d.saturating_duration_since(Instant::now()) < Duration::from_secs(120))
        {
            break;
        }
        // The core's own fan-out, a page at a time from the job's cursor.
        let page = (rt.service)
            .reschedule_page(
                &notification,
                exists,
                after.as_deref(),
                rt.settings.fanout_page,
            )
            .await
            .map_err(|e| e.to_string())?;
        entities += page.entities;
        match page.next {
            Some(next) => after = Some(next),
            None => {
                done = true;
                break;
            }
        }
    }
    let kept = match (done, &after) {
        (true, _) => rt.store.finish_fan_out(id, gen).await,
        (false, after) => {
            let after = after.as_deref().unwrap_or_default();
            rt.store
                .continue_fan_out(id, gen, after, rt.clock.now())
                .await
        }
    }
    .map_err(|e| format!("saving the fan-out of {id} failed: {e}"))?;
    Ok(match (kept, done) {
        // The condition failed: a newer generation took over.
        (false, _) => Step::Superseded,
        (true, true) => Step::Done { entities },
        (true, false) => Step::Continued {
            after: after.unwrap_or_default(),
            entities,
        },
    })
}
