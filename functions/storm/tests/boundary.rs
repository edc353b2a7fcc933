//! The month boundary on moto (issue 14's acceptance): N contracts, each
//! with a commit of 12 monthly segments aligned to midnight UTC, crossing
//! 2027-01-01T00:00Z through the real handlers. Every moment of the boundary
//! reaches the endpoint once under its one webhook id; every trigger
//! delivered again (a stream batch, an SQS message, the tick's invocation,
//! a shard step) sends nothing new and forks nothing; an edit that moves a
//! moment and an archive that cancels two, made after their tick was
//! registered, are honoured when it runs.

use chrono::Duration;
use lifecycle_aws::queue::{Timer, Work};
use lifecycle_aws::scheduler::tick_name;
use lifecycle_aws_storm::receiver::Receiver;
use lifecycle_aws_storm::stack::{invocation_input, Options, Stack};
use lifecycle_aws_storm::workload::{self, boundary};
use lifecycle_functions::deliver;
use serde_json::json;
use std::collections::HashMap;

/// Contracts of the boundary: `AWS_STORM_BOUNDARY_CONTRACTS`, 300 by
/// default. Issue 14 asks for 2,000; on moto that takes over ten minutes of
/// a debug build and more than 20 GB of moto's memory at the boundary (see
/// BENCHMARKS.md), too much for the suite on a 2-core machine, so the suite
/// runs 300 and `AWS_STORM_BOUNDARY_CONTRACTS=2000 cargo test -p
/// lifecycle-aws-storm --test boundary` the size.
fn contracts() -> usize {
    std::env::var("AWS_STORM_BOUNDARY_CONTRACTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300)
}
/// Longest wait for delayed messages: the moved moment fires 32.5 s after the
/// clock is set to 2.5 s before the boundary, so a 30 s window could close
/// before it when the tick's split ran fast (CI saw that once moto got faster).
const SETTLE: std::time::Duration = std::time::Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_boundary_is_delivered_once_each_and_redeliveries_send_nothing() {
    let mut stack = Stack::new(Options::default()).await;
    let receiver = Receiver::start(stack.clock.clone()).await;
    let prepared = workload::prepare(&mut stack, &receiver.url, contracts()).await;
    receiver.expect_secret(&prepared.secret);
    stack.settle(8, SETTLE).await;
    let tick = tick_name(boundary());
    assert!(
        stack.schedule_names().await.contains(&tick),
        "the boundary's tick was made at ingest"
    );
    let schedules_before = stack.counter.tally().calls_of("scheduler");

    // After registration: commit 0's December segment now ends 30 s past
    // midnight (the moment moves within the tick's minute), and commit 1 is
    // archived (its two boundary moments are cancelled).
    let [_, mut commit] =
        workload::events(0, lifecycle_core::time::Clock::now(stack.clock.as_ref()));
    commit["id"] = json!("wc_0_edit");
    commit["type"] = json!("commit.edit");
    commit["data"]["access_schedule"][0]["ending_before"] = json!("2027-01-01T00:00:30Z");
    let archive = json!({"id": "wc_1_archive", "type": "commit.archive", "occurred_at": "2026-12-29T00:00:00Z",
                         "data": {"id": "cm_1", "customer_id": "c_1"}});
    let (status, body) = stack
        .api(
            "POST",
            "/v1/events",
            Some(json!({"events": [commit, archive]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    stack.drain().await;
    let due = workload::due_at_boundary(&stack).await;
    assert_eq!(
        due,
        2 * contracts() - 2,
        "cm_1's two moments cancelled; cm_0's end moved within the minute"
    );

    // The boundary: EventBridge invokes the tick in the minute before.
    receiver.clear();
    stack.clock.set(boundary() - Duration::milliseconds(2500));
    let schedule = stack.schedules().await.remove(&tick).expect("the tick");
    let input = invocation_input(&schedule);
    let split = deliver::dispatch(stack.rt.clone(), input.clone(), None)
        .await
        .unwrap();
    let shards = lifecycle_aws::dynamodb::DUE_SHARDS;
    assert_eq!(split, json!({"Split": {"shards": shards}}));
    stack.settle(8, SETTLE).await;
    let arrivals = receiver.arrivals();
    let mut by_id: HashMap<&str, usize> = HashMap::new();
    for arrival in &arrivals {
        *by_id.entry(arrival.webhook_id.as_str()).or_default() += 1;
    }
    assert_eq!(receiver.rejected(), 0, "every signature verifies");
    assert!(by_id.values().all(|n| *n == 1), "a webhook arrived twice");
    let at_midnight = arrivals
        .iter()
        .filter(|a| a.scheduled_for == Some(boundary()))
        .count();
    assert_eq!(
        at_midnight,
        2 * contracts() - 3,
        "every moment due at midnight, once"
    );
    let moved: Vec<_> = arrivals
        .iter()
        .filter(|a| a.scheduled_for == Some(boundary() + Duration::seconds(30)))
        .collect();
    assert_eq!(moved.len(), 1, "the edited moment fires at its new time");
    assert_eq!(moved[0].body["data"]["commit_id"], "cm_0");
    assert!(moved[0].arrived >= boundary() + Duration::seconds(30));
    assert!(
        arrivals
            .iter()
            .all(|a| a.body["data"]["commit_id"] != "cm_1"),
        "the archived commit sends nothing"
    );
    assert!(
        arrivals
            .iter()
            .all(|a| a.arrived >= a.scheduled_for.unwrap()),
        "nothing early"
    );
    let (_, deliveries) = stack
        .api("GET", "/v1/deliveries?status=delivered&limit=3", None)
        .await;
    assert_eq!(
        deliveries["data"].as_array().unwrap().len(),
        3,
        "{deliveries}"
    );
    assert_eq!(
        stack.counter.tally().calls_of("scheduler"),
        schedules_before,
        "the boundary itself makes no Scheduler call"
    );
    let delivered = arrivals.len();

    // Every trigger again. The tick's own invocation: its generation is taken.
    let again = deliver::dispatch(stack.rt.clone(), input, None)
        .await
        .unwrap();
    assert_eq!(again, json!("Duplicate"));
    // A shard step delivered twice: a shard of one page keeps no cursor, so
    // it reads its minute again and finds its moments gone from the due
    // index (they fired): it queues nothing.
    let step = Work::Tick {
        tick: "2027-01-01T00:00:00.000Z".into(),
        gen: 0,
        shard: Some(7),
        cursor: None,
    };
    let again = deliver::dispatch(stack.rt.clone(), serde_json::to_value(&step).unwrap(), None)
        .await
        .unwrap();
    assert_eq!(again, json!({"Queued": {"timers": 0, "continues": false}}));
    // An SQS message of timers delivered twice: those moments have fired.
    let timers: Vec<Timer> = arrivals
        .iter()
        .filter(|a| a.scheduled_for == Some(boundary()))
        .take(100)
        .map(|a| Timer::new(&a.webhook_id.replacen("msg_", "sch_", 1), boundary()))
        .collect();
    assert_eq!(timers.len(), 100);
    let message = Work::Timers { timers, tries: 0 };
    deliver::dispatch(
        stack.rt.clone(),
        serde_json::to_value(&message).unwrap(),
        None,
    )
    .await
    .unwrap();
    // The last stream batch retried, as the event source would.
    stack.replay().await;
    stack.settle(8, SETTLE).await;
    assert_eq!(
        receiver.arrivals().len(),
        delivered,
        "redelivered triggers sent nothing new"
    );
    let (_, listed) = stack
        .api("GET", "/v1/deliveries?customer_id=c_0", None)
        .await;
    let count = |t: &str| {
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["event_type"] == json!(t))
            .count()
    };
    assert_eq!(
        count("commit.segment.end"),
        1,
        "one delivery per moment and endpoint: {listed}"
    );
}
