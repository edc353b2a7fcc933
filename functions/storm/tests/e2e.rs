//! The AWS functions end to end on moto, through the harness of
//! `lifecycle_aws_storm::stack`: the api handler called with API Gateway
//! HTTP API (v2) events, the schedule handler with the records moto's
//! DynamoDB stream holds (through the template's own filter), the deliver
//! handler with the input of the ticks moto stores (moto never fires them)
//! and with the timer queue's messages, a receiver on loopback checking the
//! Standard Webhooks signatures.

use chrono::Duration;
use lifecycle_aws::dynamodb::minute_of;
use lifecycle_aws::scheduler::{expression, tick_name};
use lifecycle_aws_storm::receiver::Receiver;
use lifecycle_aws_storm::stack::{invocation_input, Options, Stack};
use lifecycle_core::time::{parse_time, Clock, Time};
use lifecycle_functions::deliver;
use serde_json::{json, Value};
use std::collections::HashSet;

fn time(text: &str) -> Time {
    parse_time(text).unwrap()
}

fn iso(t: Time) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn contract(event: &str, action: &str, start: Time, end: Time, occurred_at: Time) -> Value {
    json!({"id": event, "type": format!("contract.{action}"), "occurred_at": iso(occurred_at),
           "data": {"id": "k_1", "customer_id": "c_1", "starting_at": iso(start), "ending_before": iso(end)}})
}

const SETTLE: std::time::Duration = std::time::Duration::from_secs(40);

async fn stack(fanout_pages: usize) -> Stack {
    Stack::new(Options {
        environments: 2,
        fanout_pages,
        ..Options::default()
    })
    .await
}

/// Evaluating a new threshold against every customer is deferred from the
/// api (which answers at once) to the schedule function, which runs it from
/// the notification's stream record, as the local process does inline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_threshold_is_evaluated_by_the_schedule_function() {
    let mut stack = stack(100).await;
    let receiver = Receiver::start(stack.clock.clone()).await;
    let body = json!({"url": receiver.url, "event_types": ["alerts.low_credit_balance_reached"]});
    let (status, _) = stack.api("POST", "/v1/webhook-endpoints", Some(body)).await;
    assert_eq!(status, 201);
    let now = iso(chrono::Utc::now());
    let signal = json!({"id": "b_1", "type": "balance.update", "occurred_at": now,
                        "data": {"customer_id": "c_1", "credit_balance": 50}});
    let (status, results) = stack.api("POST", "/v1/events", Some(signal)).await;
    assert_eq!(status, 200, "{results}");
    stack.drain().await;
    let threshold = json!({"event_type": "alerts.low_credit_balance_reached", "threshold": 100});
    let (status, created) = stack
        .api("POST", "/v1/notifications", Some(threshold))
        .await;
    assert_eq!(status, 201, "{created}");
    let alarm = |alerts: &Value| {
        alerts["data"]
            .as_array()
            .and_then(|a| a.iter().find(|v| v["notification_id"] == created["id"]))
            .map(|v| v["state"].clone())
    };
    let (_, alerts) = stack.api("GET", "/v1/customers/c_1/alerts", None).await;
    assert_eq!(
        alarm(&alerts),
        Some(json!("ok")),
        "the api deferred it: {alerts}"
    );

    let outcomes = stack.drain().await;
    let evaluated: usize = outcomes.iter().map(|o| o.thresholds_evaluated).sum();
    assert_eq!(evaluated, 1);
    let (_, alerts) = stack.api("GET", "/v1/customers/c_1/alerts", None).await;
    assert_eq!(alarm(&alerts), Some(json!("in_alarm")), "{alerts}");
    let crossings = "customer_id=c_1&event_type=alerts.low_credit_balance_reached";
    assert_eq!(stack.delivery_count(crossings).await, 1);
    // An edit evaluates again and finds the crossing already recorded.
    let id = created["id"].as_str().unwrap();
    let (status, _) = stack
        .api(
            "PATCH",
            &format!("/v1/notifications/{id}"),
            Some(json!({"name": "Low balance"})),
        )
        .await;
    assert_eq!(status, 200);
    stack.drain().await;
    assert_eq!(
        stack.delivery_count(crossings).await,
        1,
        "an edit sends nothing more"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contract_through_the_api_schedule_and_deliver_functions() {
    let mut stack = stack(100).await;
    let receiver = Receiver::start(stack.clock.clone()).await;
    let body = json!({"url": receiver.url, "event_types": ["contract.create", "contract.end"]});
    let (status, endpoint) = stack.api("POST", "/v1/webhook-endpoints", Some(body)).await;
    assert_eq!(status, 201, "{endpoint}");
    let secret = endpoint["secret"].as_str().unwrap();
    receiver.expect_secret(secret);
    // Sealed in the table: the item holds no secret in the clear (the
    // receiver verifies every webhook with it all the same).
    let item = (stack.rt.store.client().get_item())
        .table_name(stack.rt.store.table())
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("EP".into()),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S(endpoint["id"].as_str().unwrap().into()),
        )
        .send()
        .await
        .unwrap()
        .item
        .expect("the endpoint item");
    let item = format!("{item:?}");
    assert!(
        !item.contains(secret.trim_start_matches("whsec_")) && item.contains("sealed:v1:"),
        "{item}"
    );
    let heads_up = json!({"event_type": "contract.end", "offset": "-P1D", "name": "Heads-up"});
    let (status, _) = stack.api("POST", "/v1/notifications", Some(heads_up)).await;
    assert_eq!(status, 201);
    // The page and the OpenAPI description come through the same function.
    let (status, page) = stack.api("GET", "/", None).await;
    assert_eq!(status, 200);
    assert!(page.as_str().unwrap().contains("<html"), "{page}");
    let (status, openapi) = stack.api("GET", "/v1/openapi.json", None).await;
    assert_eq!((status, openapi["openapi"].as_str()), (200, Some("3.1.0")));

    // A contract that started two days ago and ends in five days, at 30 s past a minute.
    let now = time(&iso(chrono::Utc::now()));
    let end = minute_of(now + Duration::days(5)) + Duration::seconds(30);
    let start = now - Duration::days(2);
    let (status, results) = stack
        .api(
            "POST",
            "/v1/events",
            Some(contract("wr_1", "create", start, end, now)),
        )
        .await;
    assert_eq!(status, 200, "{results}");
    assert!(
        stack.schedule_names().await.is_empty(),
        "the api calls no scheduler"
    );

    // The stream makes the schedule function create one tick per minute with moments.
    stack.drain().await;
    let (status, upcoming) = stack.api("GET", "/v1/customers/c_1/upcoming", None).await;
    assert_eq!(status, 200, "{upcoming}");
    let upcoming: Vec<(String, Time)> = upcoming["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["schedule_id"].as_str().unwrap().to_string(),
                time(s["fire_at"].as_str().unwrap()),
            )
        })
        .collect();
    let fire_times: Vec<Time> = upcoming.iter().map(|(_, at)| *at).collect();
    assert_eq!(fire_times, [end - Duration::days(1), end]);
    let ticks = stack.schedules().await;
    let expected: HashSet<String> = fire_times
        .iter()
        .map(|at| tick_name(minute_of(*at)))
        .collect();
    assert_eq!(ticks.keys().cloned().collect::<HashSet<_>>(), expected);
    for at in &fire_times {
        let tick = &ticks[&tick_name(minute_of(*at))];
        assert_eq!(
            tick.schedule_expression(),
            Some(expression(minute_of(*at)).as_str())
        );
        assert_eq!(tick.schedule_expression_timezone(), Some("UTC"));
        assert_eq!(tick.flexible_time_window().unwrap().mode().as_str(), "OFF");
        assert_eq!(
            tick.action_after_completion().map(|a| a.as_str()),
            Some("DELETE")
        );
        let target = tick.target().unwrap();
        assert_eq!(target.arn(), lifecycle_aws_storm::moto::deliver_arn());
        assert_eq!(target.role_arn(), lifecycle_aws_storm::moto::role_arn());
    }

    // The contract.create webhook was due at once: the timer queue holds it.
    stack.settle(4, SETTLE).await;
    let arrivals = receiver.arrivals();
    assert_eq!(arrivals.len(), 1, "{arrivals:?}");
    assert_eq!(arrivals[0].body["type"], "contract.create");
    assert_eq!(receiver.rejected(), 0);

    // EventBridge invokes the -P1D tick in the minute before its own: it
    // splits into shard steps, which queue the timer to its second; the
    // deliverer holds the last of it and sends it on its second.
    let (heads_up_id, heads_up_at) = upcoming[0].clone();
    let tick = &ticks[&tick_name(minute_of(heads_up_at))];
    let input = invocation_input(tick);
    // 20 s ahead: time for the 256 shard steps on a loaded machine (EventBridge gives up to 60).
    stack.clock.set(heads_up_at - Duration::seconds(20));
    let split = deliver::dispatch(stack.rt.clone(), input.clone(), None)
        .await
        .unwrap();
    let shards = lifecycle_aws::dynamodb::DUE_SHARDS;
    assert_eq!(split, json!({"Split": {"shards": shards}}));
    stack.settle(4, SETTLE).await;
    let arrivals = receiver.arrivals();
    assert_eq!(arrivals.len(), 2, "{arrivals:?}");
    let sent = &arrivals[1];
    assert_eq!(sent.body["type"], "contract.end");
    assert_eq!(
        sent.webhook_id,
        lifecycle_core::ids::with_prefix(&heads_up_id, "msg")
    );
    assert_eq!(sent.scheduled_for, Some(heads_up_at));
    assert!(
        sent.arrived >= heads_up_at,
        "sent before its second: {:?}",
        sent.arrived
    );
    assert!(
        sent.arrived < heads_up_at + Duration::seconds(20),
        "late: {:?}",
        sent.arrived
    );
    // A duplicate invocation of the tick takes nothing: its generation is taken.
    let again = deliver::dispatch(stack.rt.clone(), input, None)
        .await
        .unwrap();
    assert_eq!(again, json!("Duplicate"));
    stack.settle(4, SETTLE).await;
    assert_eq!(receiver.arrivals().len(), 2);

    // An edit moves the end: a tick for the new minutes; the old end's tick
    // finds nothing due in its minute.
    let (end_id, _) = upcoming[1].clone();
    let new_end = end + Duration::days(3);
    let edit = contract("wr_2", "edit", start, new_end, stack.clock.now());
    let (status, _) = stack.api("POST", "/v1/events", Some(edit)).await;
    assert_eq!(status, 200);
    stack.drain().await;
    let names = stack.schedule_names().await;
    assert!(names.contains(&tick_name(minute_of(new_end))), "{names:?}");
    assert!(
        names.contains(&tick_name(minute_of(new_end - Duration::days(1)))),
        "{names:?}"
    );
    stack.clock.set(end - Duration::seconds(3));
    let old = invocation_input(&ticks[&tick_name(minute_of(end))]);
    deliver::dispatch(stack.rt.clone(), old, None)
        .await
        .unwrap();
    stack.settle(4, SETTLE).await;
    assert_eq!(
        receiver.arrivals().len(),
        2,
        "the moved moment does not fire at its old time"
    );
    let (_, upcoming) = stack.api("GET", "/v1/customers/c_1/upcoming", None).await;
    let ends: Vec<(String, Time)> = (upcoming["data"].as_array().unwrap().iter())
        .filter(|s| s["offset"] == "PT0S")
        .map(|s| {
            let id = s["schedule_id"].as_str().unwrap().to_string();
            (id, time(s["fire_at"].as_str().unwrap()))
        })
        .collect();
    assert_eq!(ends.len(), 1, "{upcoming}");
    assert_eq!(ends[0].1, new_end);
    assert_ne!(
        ends[0].0, end_id,
        "a moved moment is a new moment, with its own id"
    );

    // An archive cancels what is left: its ticks, when they run, find nothing.
    let archive = json!({"id": "wr_3", "type": "contract.archive", "occurred_at": iso(stack.clock.now()),
                         "data": {"id": "k_1", "customer_id": "c_1"}});
    let (status, _) = stack.api("POST", "/v1/events", Some(archive)).await;
    assert_eq!(status, 200);
    stack.drain().await;
    let (_, upcoming) = stack.api("GET", "/v1/customers/c_1/upcoming", None).await;
    assert_eq!(upcoming["data"], json!([]), "{upcoming}");
    for name in stack.schedule_names().await {
        stack.invoke_schedule(&name).await.unwrap();
    }
    stack.settle(4, SETTLE).await;
    assert_eq!(receiver.arrivals().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_edit_fans_out_over_5000_contracts_across_invocations() {
    const CONTRACTS: usize = 5_000;
    // One page of 500 entities per invocation, so the fan-out must continue.
    let mut stack = stack(1).await;
    // Only the user's notification applies (fewer items to write on moto).
    for system in ["contract_create", "contract_start", "contract_end"] {
        let (status, body) = stack
            .api(
                "PATCH",
                &format!("/v1/notifications/ntf_system_{system}"),
                Some(json!({"enabled": false})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let notification = json!({"event_type": "contract.end", "offset": "-P1D"});
    let (status, notification) = stack
        .api("POST", "/v1/notifications", Some(notification))
        .await;
    assert_eq!(status, 201);
    let id = notification["id"].as_str().unwrap().to_string();
    // Contracts ending in 30 days: the -P1D moments are beyond the 14-day horizon.
    let now = time(&iso(chrono::Utc::now()));
    let end = now + Duration::days(30);
    for batch in 0..CONTRACTS / 500 {
        let events: Vec<Value> = (0..500)
            .map(|i| {
                let n = batch * 500 + i;
                json!({"id": format!("wr_{n}"), "type": "contract.create", "occurred_at": iso(now),
                       "data": {"id": format!("k_{n:05}"), "customer_id": format!("c_{n}"),
                                "starting_at": iso(now + Duration::days(20)), "ending_before": iso(end)}})
            })
            .collect();
        let (status, body) = stack
            .api("POST", "/v1/events", Some(json!({"events": events})))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    stack.drain().await;
    assert!(
        stack.schedule_names().await.is_empty(),
        "nothing within the horizon yet"
    );

    // The edit brings every contract's moment within the horizon. The api
    // only writes the notification; the stream runs the fan-out.
    let (status, _) = stack
        .api(
            "PATCH",
            &format!("/v1/notifications/{id}"),
            Some(json!({"offset": "-P25D"})),
        )
        .await;
    assert_eq!(status, 200);
    assert!(stack.schedule_names().await.is_empty());
    let outcomes = stack.drain().await;
    let steps: Vec<&String> = outcomes.iter().flat_map(|o| &o.fanout_steps).collect();
    let planned: usize = outcomes.iter().map(|o| o.entities_planned).sum();
    let invocations = outcomes
        .iter()
        .filter(|o| !o.fanout_steps.is_empty())
        .count();
    assert!(invocations > 1, "{steps:?}");
    assert_eq!(planned, CONTRACTS, "{steps:?}");
    assert!(steps.last().unwrap().ends_with("done"), "{steps:?}");

    // Every contract's schedule is at the new time; their one minute has its one tick.
    let keys: Vec<_> = (0..CONTRACTS)
        .map(|n| lifecycle_core::entity::EntityKey {
            kind: lifecycle_core::entity::EntityKind::Contract,
            id: format!("k_{n:05}"),
        })
        .collect();
    let schedules = lifecycle_core::ports::Store::schedules_of(stack.rt.store.as_ref(), &id, &keys)
        .await
        .unwrap();
    let new_time = end - Duration::days(25);
    let pending: HashSet<String> = schedules
        .iter()
        .filter(|s| s.fire_at == new_time)
        .map(|s| s.entity.id.clone())
        .collect();
    assert_eq!(pending.len(), CONTRACTS);
    let names = stack.schedule_names().await;
    assert_eq!(names, HashSet::from([tick_name(minute_of(new_time))]));
    println!(
        "fan-out of {CONTRACTS} contracts: {invocations} schedule invocations ran it ({} batches in all)",
        outcomes.len()
    );
}

/// A moment beyond the 14-day horizon is not stored: the contract defers
/// it, the upcoming view derives it, and the sweep plans it as it comes
/// within the horizon, under the same schedule id, so it fires as any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moment_beyond_the_horizon_is_planned_by_the_sweep_and_fires() {
    use lifecycle_core::ports::Store;
    let mut stack = stack(100).await;
    let receiver = Receiver::start(stack.clock.clone()).await;
    let body = json!({"url": receiver.url, "event_types": ["contract.end"]});
    let (status, endpoint) = stack.api("POST", "/v1/webhook-endpoints", Some(body)).await;
    assert_eq!(status, 201, "{endpoint}");
    receiver.expect_secret(endpoint["secret"].as_str().unwrap());
    let now = time(&iso(chrono::Utc::now()));
    stack.clock.set(now);
    let end = minute_of(now + Duration::days(20)) + Duration::seconds(30);
    let create = contract("wr_1", "create", now - Duration::days(1), end, now);
    let (status, results) = stack.api("POST", "/v1/events", Some(create)).await;
    assert_eq!(status, 200, "{results}");
    stack.drain().await;

    let upcoming_end = |page: &Value| -> Vec<(String, Time)> {
        (page["data"].as_array().unwrap().iter())
            .filter(|s| s["event_type"] == "contract.end")
            .map(|s| {
                let id = s["schedule_id"].as_str().unwrap().to_string();
                (id, time(s["fire_at"].as_str().unwrap()))
            })
            .collect()
    };
    let (_, upcoming) = stack.api("GET", "/v1/customers/c_1/upcoming", None).await;
    let derived = upcoming_end(&upcoming);
    assert_eq!(derived.len(), 1, "{upcoming}");
    assert_eq!(derived[0].1, end);
    let store = stack.rt.store.clone();
    let k_1 = lifecycle_core::entity::EntityKey {
        kind: lifecycle_core::entity::EntityKind::Contract,
        id: "k_1".into(),
    };
    assert_eq!(
        store.schedule(&derived[0].0).await.unwrap(),
        None,
        "not stored"
    );
    let deferred = store.deferred_entities(end, 10).await.unwrap();
    assert_eq!(deferred, [k_1]);
    let tick = tick_name(minute_of(end));
    assert!(!stack.schedule_names().await.contains(&tick));

    // A sweep while the end is beyond the horizon plans nothing.
    let sweep = json!({"sweep": {}});
    let outcome = lifecycle_functions::schedule::dispatch(&stack.rt, sweep.clone(), None)
        .await
        .unwrap();
    assert_eq!(outcome["materialised"], 0, "{outcome}");

    // Thirteen days on, the end is within it: the sweep stores it, the
    // stream makes its tick.
    stack.clock.set(end - Duration::days(13));
    let outcome = lifecycle_functions::schedule::dispatch(&stack.rt, sweep, None)
        .await
        .unwrap();
    assert_eq!(outcome["materialised"], 1, "{outcome}");
    stack.drain().await;
    let stored = store
        .schedule(&derived[0].0)
        .await
        .unwrap()
        .expect("stored now");
    assert_eq!(stored.fire_at, end);
    assert!(store.deferred_entities(end, 10).await.unwrap().is_empty());
    assert!(stack.schedule_names().await.contains(&tick));
    let (_, upcoming) = stack.api("GET", "/v1/customers/c_1/upcoming", None).await;
    assert_eq!(
        upcoming_end(&upcoming),
        derived,
        "the same moment, listed once"
    );

    // It fires at its second under the id it was listed with.
    stack.clock.set(end - Duration::seconds(20));
    stack.invoke_schedule(&tick).await.unwrap();
    stack.settle(4, SETTLE).await;
    let arrivals = receiver.arrivals();
    assert_eq!(arrivals.len(), 1, "{arrivals:?}");
    assert_eq!(
        arrivals[0].webhook_id,
        lifecycle_core::ids::with_prefix(&derived[0].0, "msg")
    );
    assert_eq!(arrivals[0].scheduled_for, Some(end));
}

/// An entity too big for a DynamoDB item (700 KB of JSON that gzip cannot
/// shrink under 400 KB) is refused with a 422 naming its `data`, before
/// anything is written: not a 500 that a client would retry for ever. One
/// as large that compresses is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entity_too_big_for_an_item_is_refused_naming_it_and_changes_nothing() {
    let mut stack = stack(100).await;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let noise: String = (0..700_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ALPHABET[(state % 64) as usize] as char
        })
        .collect();
    let now = chrono::Utc::now();
    let big = json!({"id": "wr_big", "type": "contract.create", "occurred_at": iso(now),
        "data": {"id": "k_big", "customer_id": "c_big", "name": noise, "starting_at": iso(now)}});
    let small = contract("wr_small", "create", now, now + Duration::days(30), now);
    let (status, refused) = stack
        .api("POST", "/v1/events", Some(json!({"events": [small, big]})))
        .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["field"], "events[1].data", "{refused}");
    stack.drain().await;
    let (_, upcoming) = stack.api("GET", "/v1/customers/c_1/upcoming", None).await;
    assert_eq!(
        upcoming["data"].as_array().map(Vec::len),
        Some(0),
        "the batch wrote nothing: {upcoming}"
    );
    let (status, accepted) = stack
        .api(
            "POST",
            "/v1/events",
            Some(contract(
                "wr_small",
                "create",
                now,
                now + Duration::days(30),
                now,
            )),
        )
        .await;
    assert_eq!(
        (status, accepted["results"][0]["status"].as_str()),
        (200, Some("accepted")),
        "{accepted}"
    );
    // A 1000 KiB entity that compresses (the contract takes bodies up to 1 MiB) fits its item.
    let roomy = json!({"id": "wr_roomy", "type": "contract.create", "occurred_at": iso(now),
        "data": {"id": "k_roomy", "customer_id": "c_roomy", "name": "x".repeat(1000 * 1024), "starting_at": iso(now)}});
    let (status, accepted) = stack.api("POST", "/v1/events", Some(roomy)).await;
    assert_eq!(
        (status, accepted["results"][0]["status"].as_str()),
        (200, Some("accepted")),
        "{accepted}"
    );
}
