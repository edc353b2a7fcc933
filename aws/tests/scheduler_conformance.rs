//! The Scheduler port, run against both implementations: the local one
//! (it wakes the timer loop; the timers themselves are store rows, so a wake
//! is all it shows) and `EventBridgeScheduler` on a real moto server, whose
//! schedules are read back with GetSchedule/ListSchedules.

mod common;

use async_trait::async_trait;
use aws_sdk_scheduler::types::{ActionAfterCompletion, FlexibleTimeWindowMode, ScheduleState};
use lifecycle_aws::scheduler::{expression, fire_minute, schedule_name};
use lifecycle_aws::{EventBridgeScheduler, NearTimers, SchedulerConfig};
use lifecycle_core::planner::TimerChange;
use lifecycle_core::ports::Scheduler;
use lifecycle_core::time::{parse_time, FixedClock, Time};
use lifecycle_local::timers::LocalScheduler;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

fn t(text: &str) -> Time {
    parse_time(text).unwrap()
}

fn now() -> Time {
    t("2026-11-25T10:00:00Z")
}

const ID: &str = "sch_5f0c1d2e3f405162738495a6b7c8d9e0";

fn set(id: &str, at: Time) -> TimerChange {
    TimerChange::Set { id: id.into(), at }
}

fn clear(id: &str) -> TimerChange {
    TimerChange::Clear { id: id.into() }
}

/// Records the timers handed over as due too soon for a schedule.
#[derive(Default)]
struct NearSink(Mutex<Vec<(String, Time)>>);

#[async_trait]
impl NearTimers for NearSink {
    async fn due(&self, timers: &[(String, Time)]) -> Result<(), String> {
        self.0.lock().unwrap().extend_from_slice(timers);
        Ok(())
    }
}

struct Eventbridge {
    scheduler: Arc<EventBridgeScheduler>,
    client: aws_sdk_scheduler::Client,
    group: String,
    near: Arc<NearSink>,
}

async fn eventbridge() -> Eventbridge {
    let config = common::sdk_config().await;
    let client = aws_sdk_scheduler::Client::new(&config);
    let group = common::unique("lifecycle");
    // moto answers a schedule in a missing group with HTTP 500: create it first.
    client
        .create_schedule_group()
        .name(&group)
        .send()
        .await
        .expect("create the schedule group on moto");
    let near = Arc::new(NearSink::default());
    let scheduler = EventBridgeScheduler::new(
        client.clone(),
        SchedulerConfig::new(
            &group,
            &common::deliver_arn(),
            &common::role_arn(),
            &common::dlq_arn(),
        ),
        near.clone(),
        Arc::new(FixedClock::new(now())),
    );
    Eventbridge {
        scheduler: Arc::new(scheduler),
        client,
        group,
        near,
    }
}

fn local() -> (Arc<dyn Scheduler>, Arc<Notify>) {
    let wake = Arc::new(Notify::new());
    (Arc::new(LocalScheduler::new(wake.clone())), wake)
}

/// The port's contract, for any implementation: every change is accepted,
/// setting twice and clearing what is not there are harmless.
async fn accepts_repeats_and_unknown_clears(scheduler: Arc<dyn Scheduler>) {
    let at = now() + chrono::Duration::days(3);
    scheduler.apply(&[]).await.unwrap();
    scheduler.apply(&[set(ID, at)]).await.unwrap();
    scheduler.apply(&[set(ID, at)]).await.unwrap();
    scheduler
        .apply(&[set(ID, at + chrono::Duration::hours(1))])
        .await
        .unwrap();
    scheduler.apply(&[clear(ID)]).await.unwrap();
    scheduler.apply(&[clear(ID)]).await.unwrap();
    scheduler
        .apply(&[clear("sch_never_set"), set("dlv_0a", now())])
        .await
        .unwrap();
}

#[tokio::test]
async fn local_accepts_repeats_and_unknown_clears() {
    accepts_repeats_and_unknown_clears(local().0).await;
}

#[tokio::test]
async fn eventbridge_accepts_repeats_and_unknown_clears() {
    accepts_repeats_and_unknown_clears(eventbridge().await.scheduler).await;
}

async fn woken(wake: &Notify) -> bool {
    tokio::time::timeout(Duration::from_millis(200), wake.notified())
        .await
        .is_ok()
}

/// All the local scheduler shows: a set wakes the timer loop (which reads
/// what is due from the store); a clear alone does not.
#[tokio::test]
async fn local_wakes_the_loop_on_set_only() {
    let (scheduler, wake) = local();
    scheduler.apply(&[clear(ID)]).await.unwrap();
    assert!(!woken(&wake).await);
    scheduler
        .apply(&[set(ID, now() + chrono::Duration::days(1)), clear("sch_x")])
        .await
        .unwrap();
    assert!(woken(&wake).await);
    assert!(!woken(&wake).await, "one wake per apply");
}

/// What moto holds for a schedule of the group.
async fn stored(
    eb: &Eventbridge,
    id: &str,
) -> Option<aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput> {
    match eb
        .client
        .get_schedule()
        .name(schedule_name(id))
        .group_name(&eb.group)
        .send()
        .await
    {
        Ok(schedule) => Some(schedule),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            None
        }
        Err(e) => panic!("GetSchedule failed: {e:?}"),
    }
}

async fn names(eb: &Eventbridge) -> Vec<String> {
    let listed = eb
        .client
        .list_schedules()
        .group_name(&eb.group)
        .send()
        .await
        .unwrap();
    let mut names: Vec<String> = listed
        .schedules()
        .iter()
        .filter_map(|s| s.name().map(str::to_string))
        .collect();
    names.sort();
    names
}

/// Every field of a stored schedule: the full definition, whatever call wrote it last.
fn assert_definition(
    eb: &Eventbridge,
    schedule: &aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput,
    id: &str,
    at: Time,
) {
    assert_eq!(schedule.name(), Some(id));
    assert_eq!(schedule.group_name(), Some(eb.group.as_str()));
    assert_eq!(
        schedule.schedule_expression(),
        Some(expression(at).as_str())
    );
    assert_eq!(schedule.schedule_expression_timezone(), Some("UTC"));
    assert_eq!(
        schedule.flexible_time_window().map(|w| w.mode()),
        Some(&FlexibleTimeWindowMode::Off)
    );
    assert_eq!(
        schedule.action_after_completion(),
        Some(&ActionAfterCompletion::Delete)
    );
    assert_eq!(schedule.state(), Some(&ScheduleState::Enabled));
    let target = schedule.target().expect("a target");
    assert_eq!(target.arn(), common::deliver_arn());
    assert_eq!(target.role_arn(), common::role_arn());
    let retry = target.retry_policy().expect("a retry policy");
    assert_eq!(retry.maximum_retry_attempts(), Some(10));
    assert_eq!(retry.maximum_event_age_in_seconds(), Some(3600));
    assert_eq!(
        target.dead_letter_config().and_then(|d| d.arn()),
        Some(common::dlq_arn().as_str())
    );
    let input: Value = serde_json::from_str(target.input().expect("an input")).unwrap();
    assert_eq!(input["timer"], id);
    assert_eq!(
        input["at"],
        at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        "the fire time to the millisecond: the deliverer's dedupe key"
    );
    assert_eq!(input["scheduled_time"], "<aws.scheduler.scheduled-time>");
}

#[tokio::test]
async fn eventbridge_set_creates_a_one_time_schedule_in_the_minute_before() {
    let eb = eventbridge().await;
    let at = t("2026-11-26T10:00:30.500Z");
    eb.scheduler.apply(&[set(ID, at)]).await.unwrap();
    let schedule = stored(&eb, ID).await.expect("the schedule");
    assert_definition(&eb, &schedule, ID, at);
    // In UTC, to the minute, 60-120 s ahead of the fire time.
    assert_eq!(
        schedule.schedule_expression(),
        Some("at(2026-11-26T09:59:00)")
    );
    let lead = at - fire_minute(at);
    assert!(lead > chrono::Duration::seconds(60) && lead <= chrono::Duration::seconds(120));
    // A fire time on the minute: the minute before.
    assert_eq!(
        expression(t("2026-12-01T00:00:00Z")),
        "at(2026-11-30T23:59:00)"
    );
    assert!(eb.near.0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn eventbridge_set_twice_is_harmless_and_a_new_time_moves_it() {
    let eb = eventbridge().await;
    let at = now() + chrono::Duration::days(2);
    eb.scheduler.apply(&[set(ID, at)]).await.unwrap();
    eb.scheduler.apply(&[set(ID, at)]).await.unwrap();
    assert_eq!(names(&eb).await, [ID]);
    assert_definition(&eb, &stored(&eb, ID).await.unwrap(), ID, at);

    // Moved: the same schedule, updated with the full definition.
    let moved = at + chrono::Duration::hours(5) + chrono::Duration::seconds(7);
    eb.scheduler.apply(&[set(ID, moved)]).await.unwrap();
    assert_eq!(names(&eb).await, [ID]);
    assert_definition(&eb, &stored(&eb, ID).await.unwrap(), ID, moved);
}

#[tokio::test]
async fn eventbridge_clear_deletes_and_tolerates_missing() {
    let eb = eventbridge().await;
    let other = "dlv_00112233445566778899aabbccddeeff";
    let at = now() + chrono::Duration::days(1);
    eb.scheduler
        .apply(&[set(ID, at), set(other, at + chrono::Duration::minutes(30))])
        .await
        .unwrap();
    assert_eq!(names(&eb).await, [other, ID]);
    eb.scheduler.apply(&[clear(ID)]).await.unwrap();
    assert!(stored(&eb, ID).await.is_none());
    assert_eq!(names(&eb).await, [other]);
    eb.scheduler
        .apply(&[clear(ID), clear("sch_unknown")])
        .await
        .unwrap();
    assert_eq!(names(&eb).await, [other]);
}

#[tokio::test]
async fn eventbridge_hands_timers_due_soon_to_the_near_sink() {
    let eb = eventbridge().await;
    let soon = now() + chrono::Duration::minutes(5);
    let past = now() - chrono::Duration::minutes(3);
    let edge = now() + chrono::Duration::minutes(14);
    let later = edge + chrono::Duration::seconds(1);
    eb.scheduler
        .apply(&[
            set("sch_soon", soon),
            set("sch_past", past),
            set("sch_edge", edge),
            set("sch_later", later),
        ])
        .await
        .unwrap();
    assert_eq!(
        *eb.near.0.lock().unwrap(),
        vec![
            ("sch_soon".to_string(), soon),
            ("sch_past".to_string(), past),
            ("sch_edge".to_string(), edge)
        ]
    );
    // No schedule is ever created with an at() in the past or within the window.
    assert_eq!(names(&eb).await, ["sch_later"]);
}

#[tokio::test]
async fn eventbridge_names_are_valid_and_deterministic() {
    let eb = eventbridge().await;
    let odd = "timer with spaces/and:colons, longer than sixty-four characters in all, surely";
    let name = schedule_name(odd);
    assert_eq!(name, schedule_name(odd));
    assert_ne!(name, schedule_name("timer with spaces"));
    assert!((1..=64).contains(&name.len()));
    assert!(name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'));
    assert_eq!(schedule_name(ID), ID, "schedule ids are names already");
    let at = now() + chrono::Duration::days(1);
    eb.scheduler.apply(&[set(odd, at)]).await.unwrap();
    let schedule = stored(&eb, odd)
        .await
        .expect("stored under the hashed name");
    assert_eq!(schedule.name(), Some(name.as_str()));
    let input: Value = serde_json::from_str(schedule.target().unwrap().input().unwrap()).unwrap();
    assert_eq!(input["timer"], odd, "the input carries the timer id itself");
}

#[tokio::test]
async fn eventbridge_applies_the_last_change_of_each_timer_and_many_at_once() {
    let eb = eventbridge().await;
    let at = now() + chrono::Duration::days(1);
    let (a, b) = ("sch_a", "sch_b");
    eb.scheduler
        .apply(&[set(a, at), clear(a), clear(b), set(b, at)])
        .await
        .unwrap();
    assert_eq!(names(&eb).await, [b]);
    let many: Vec<TimerChange> = (0..40)
        .map(|i| set(&format!("sch_{i:02}"), at + chrono::Duration::minutes(i)))
        .collect();
    eb.scheduler.apply(&many).await.unwrap();
    assert_eq!(names(&eb).await.len(), 41);
    let schedule = stored(&eb, "sch_39").await.unwrap();
    assert_definition(&eb, &schedule, "sch_39", at + chrono::Duration::minutes(39));
}
