//! The Scheduler port, run against both implementations: the local one
//! (it wakes the timer loop; the timers themselves are store rows, so a wake
//! is all it shows) and `EventBridgeScheduler` on a real moto server, whose
//! ticks (one schedule per minute with timers) are read back with
//! GetSchedule/ListSchedules.

mod common;

use async_trait::async_trait;
use aws_sdk_scheduler::types::{ActionAfterCompletion, FlexibleTimeWindowMode, ScheduleState};
use lifecycle_aws::scheduler::{expression, fire_minute, tick_name};
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
    async fn due(&self, timers: &[lifecycle_aws::queue::Timer]) -> Result<(), String> {
        let due = timers.iter().map(|t| (t.timer.clone(), t.due().unwrap()));
        self.0.lock().unwrap().extend(due);
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
    let group = common::schedule_group(&client).await;
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

/// A second scheduler on the same group: another execution environment.
async fn eventbridge_in(eb: &Eventbridge) -> EventBridgeScheduler {
    EventBridgeScheduler::new(
        eb.client.clone(),
        SchedulerConfig::new(
            &eb.group,
            &common::deliver_arn(),
            &common::role_arn(),
            &common::dlq_arn(),
        ),
        Arc::new(NearSink::default()),
        Arc::new(FixedClock::new(now())),
    )
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
    name: &str,
) -> Option<aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput> {
    match eb
        .client
        .get_schedule()
        .name(name)
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
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let listed = eb
            .client
            .list_schedules()
            .group_name(&eb.group)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        names.extend(
            listed
                .schedules()
                .iter()
                .filter_map(|s| s.name().map(str::to_string)),
        );
        token = listed.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    names.sort();
    names
}

/// Every field of a stored tick: the full definition.
fn assert_tick(
    eb: &Eventbridge,
    schedule: &aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput,
    minute: Time,
) {
    assert_eq!(schedule.name(), Some(tick_name(minute).as_str()));
    assert_eq!(schedule.group_name(), Some(eb.group.as_str()));
    assert_eq!(
        schedule.schedule_expression(),
        Some(expression(minute).as_str())
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
    assert_eq!(
        input["tick"],
        minute.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        "the minute whose timers the tick reads"
    );
    assert_eq!(input["gen"], 0);
    assert_eq!(input["scheduled_time"], "<aws.scheduler.scheduled-time>");
    assert!(
        matches!(
            serde_json::from_value::<lifecycle_aws::Work>(input).unwrap(),
            lifecycle_aws::Work::Tick { .. }
        ),
        "the deliverer reads the input as a tick"
    );
}

#[tokio::test]
async fn eventbridge_set_creates_the_tick_of_its_minute_in_the_minute_before() {
    let eb = eventbridge().await;
    let at = t("2026-11-26T10:00:30.500Z");
    eb.scheduler.apply(&[set(ID, at)]).await.unwrap();
    let minute = t("2026-11-26T10:00:00Z");
    assert_eq!(names(&eb).await, [tick_name(minute)]);
    assert_eq!(tick_name(minute), "tick-20261126T1000");
    let schedule = stored(&eb, &tick_name(minute)).await.expect("the tick");
    assert_tick(&eb, &schedule, minute);
    // In UTC, the minute before the tick's own: it runs before any of its timers is due.
    assert_eq!(
        schedule.schedule_expression(),
        Some("at(2026-11-26T09:59:00)")
    );
    assert_eq!(fire_minute(minute), t("2026-11-26T09:59:00Z"));
    assert!(eb.near.0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn eventbridge_timers_of_one_minute_share_a_tick_and_moves_cost_nothing_there() {
    let eb = eventbridge().await;
    let minute = t("2026-11-28T00:00:00Z");
    // A boundary: a thousand timers due in the same minute, in three applies.
    let timers: Vec<TimerChange> = (0..1000)
        .map(|i| {
            set(
                &format!("sch_{i:04}"),
                minute + chrono::Duration::milliseconds(i * 37),
            )
        })
        .collect();
    for chunk in timers.chunks(400) {
        eb.scheduler.apply(chunk).await.unwrap();
    }
    assert_eq!(names(&eb).await, [tick_name(minute)]);
    // A move to another minute makes that minute's tick; the old one stays
    // (its run finds the timer gone from its minute) and nothing is updated.
    let moved = minute + chrono::Duration::hours(5) + chrono::Duration::seconds(7);
    eb.scheduler.apply(&[set("sch_0001", moved)]).await.unwrap();
    let later = t("2026-11-28T05:00:00Z");
    assert_eq!(names(&eb).await, [tick_name(minute), tick_name(later)]);
    assert_tick(&eb, &stored(&eb, &tick_name(later)).await.unwrap(), later);
    // A clear needs no call at all.
    eb.scheduler.apply(&[clear("sch_0002")]).await.unwrap();
    assert_eq!(names(&eb).await.len(), 2);
}

#[tokio::test]
async fn eventbridge_a_tick_made_elsewhere_is_a_conflict_and_harmless() {
    let eb = eventbridge().await;
    let minute = t("2026-11-29T12:34:00Z");
    // Another execution environment made it: this one's cache is empty.
    let other = eventbridge_in(&eb).await;
    other.apply(&[set(ID, minute)]).await.unwrap();
    eb.scheduler
        .apply(&[set("sch_other", minute)])
        .await
        .unwrap();
    assert_eq!(names(&eb).await, [tick_name(minute)]);
    let minutes = std::collections::BTreeSet::from([minute]);
    assert_eq!(
        eb.scheduler.ensure_ticks(&minutes).await.unwrap(),
        0,
        "known here now"
    );
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
            ("sch_past".to_string(), past),
            ("sch_soon".to_string(), soon),
            ("sch_edge".to_string(), edge)
        ]
    );
    // No tick is ever made for a minute within the window: its at() would be past.
    let minute = lifecycle_aws::dynamodb::minute_of(later);
    assert_eq!(names(&eb).await, [tick_name(minute)]);
}

#[tokio::test]
async fn eventbridge_applies_the_last_change_of_each_timer() {
    let eb = eventbridge().await;
    let at = now() + chrono::Duration::days(1);
    let (a, b) = ("sch_a", "sch_b");
    eb.scheduler
        .apply(&[
            set(a, at),
            clear(a),
            clear(b),
            set(b, at + chrono::Duration::hours(2)),
        ])
        .await
        .unwrap();
    let minute = lifecycle_aws::dynamodb::minute_of(at + chrono::Duration::hours(2));
    assert_eq!(names(&eb).await, [tick_name(minute)], "only b's minute");
    let many: Vec<TimerChange> = (0..40)
        .map(|i| set(&format!("sch_{i:02}"), at + chrono::Duration::minutes(i)))
        .collect();
    eb.scheduler.apply(&many).await.unwrap();
    assert_eq!(names(&eb).await.len(), 41);
}
