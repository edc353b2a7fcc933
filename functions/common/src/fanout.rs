//! Fan-out of a notification change over every entity of its kind, in
//! pages, continued through the table's own stream: a `JOB#<notification>`
//! item holds the generation (the notification's `updated_at`, or the
//! deletion) and the cursor; each change of that item is a stream record
//! that invokes `schedule` for the next pages. No self-invocation is needed,
//! a crashed invocation is retried by the stream, and a newer edit (a new
//! generation) makes the older job's conditional writes fail, so it stops.
//! Each page is the core's own (`Service::reschedule_page`); the schedule
//! items it writes reach their ticks through the stream like any others.

use crate::Runtime;
use aws_sdk_dynamodb::types::AttributeValue;
use lifecycle_core::notification::Notification;
use lifecycle_core::ports::Store;
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_string())
}

fn job_key(notification_id: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_string(), s(&format!("JOB#{notification_id}"))),
        ("sk".to_string(), s("J")),
    ])
}

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
    let mut item = job_key(&notification.id);
    item.insert("t".into(), s("JOB"));
    item.insert("ntf".into(), s(&notification.id));
    item.insert("gen".into(), s(gen));
    item.insert("exists".into(), AttributeValue::Bool(exists));
    item.insert(
        "r".into(),
        s(&serde_json::to_string(notification).map_err(|e| e.to_string())?),
    );
    item.insert("start".into(), s(&rt.clock.now().to_rfc3339()));
    rt.store
        .client()
        .put_item()
        .table_name(rt.store.table())
        .set_item(Some(item))
        .send()
        .await
        .map_err(|e| format!("starting the fan-out of {}: {e:?}", notification.id))?;
    Ok(())
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
    let client = rt.store.client();
    let condition = |gen: &str| HashMap::from([(":gen".to_string(), s(gen))]);
    let written = if done {
        client
            .delete_item()
            .table_name(rt.store.table())
            .set_key(Some(job_key(id)))
            .condition_expression("gen = :gen")
            .set_expression_attribute_values(Some(condition(gen)))
            .send()
            .await
            .map(drop)
            .map_err(|e| {
                e.into_service_error()
                    .is_conditional_check_failed_exception()
                    .then_some(())
                    .ok_or(())
            })
    } else {
        let mut values = condition(gen);
        values.insert(":after".into(), s(after.as_deref().unwrap_or_default()));
        values.insert(":beat".into(), s(&rt.clock.now().to_rfc3339()));
        client
            .update_item()
            .table_name(rt.store.table())
            .set_key(Some(job_key(id)))
            .update_expression("SET #after = :after, beat = :beat")
            .expression_attribute_names("#after", "after")
            .condition_expression("gen = :gen")
            .set_expression_attribute_values(Some(values))
            .send()
            .await
            .map(drop)
            .map_err(|e| {
                e.into_service_error()
                    .is_conditional_check_failed_exception()
                    .then_some(())
                    .ok_or(())
            })
    };
    match written {
        Ok(()) if done => Ok(Step::Done { entities }),
        Ok(()) => Ok(Step::Continued {
            after: after.unwrap_or_default(),
            entities,
        }),
        // The condition failed: a newer generation took over.
        Err(Ok(())) => Ok(Step::Superseded),
        Err(Err(())) => Err(format!("saving the fan-out of {id} failed")),
    }
}
