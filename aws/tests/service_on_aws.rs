//! The core's service over the AWS adapters (DynamoDB and EventBridge
//! Scheduler on moto, the real HTTP sender, a receiver on loopback): what the
//! Lambda functions will do, minus the handlers. The scheduler makes a tick
//! per minute that has timers; moto never fires one, so the test does what
//! the deliverer will: read the tick's minute from the due index and run
//! its timers at their time.

mod common;

use async_trait::async_trait;
use axum::http::HeaderMap;
use axum::routing::post;
use lifecycle_aws::{EventBridgeScheduler, NearTimers, SchedulerConfig};
use lifecycle_core::ports::DeliveryFilter;
use lifecycle_core::schedule::{DeliveryStatus, ScheduleState};
use lifecycle_core::service::{Config, Service};

/// The core's configuration as the deployed functions have it
/// (`functions/common/src/wiring.rs`): a write's webhooks are fired as
/// schedules, not in the write's transaction.
fn aws_config() -> Config {
    Config {
        fire_writes_at_ingest: false,
        ..Config::default()
    }
}
use lifecycle_core::signing::verify;
use lifecycle_core::time::{parse_time, Clock, FixedClock, Time};
use lifecycle_local::sender::HttpSender;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

fn t(text: &str) -> Time {
    parse_time(text).unwrap()
}

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

type Requests = Arc<Mutex<Vec<(HeaderMap, String)>>>;

async fn receiver() -> (String, Requests) {
    let requests: Requests = Arc::default();
    let state = requests.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: String| {
            let state = state.clone();
            async move {
                state.lock().unwrap().push((headers, body));
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, requests)
}

/// The stored schedules of the group: name -> (expression, input).
async fn schedules(
    client: &aws_sdk_scheduler::Client,
    group: &str,
) -> Vec<(String, String, Value)> {
    let listed = client
        .list_schedules()
        .group_name(group)
        .send()
        .await
        .unwrap();
    let mut out = Vec::new();
    for summary in listed.schedules() {
        let name = summary.name().unwrap();
        let schedule = client
            .get_schedule()
            .name(name)
            .group_name(group)
            .send()
            .await
            .unwrap();
        let input = serde_json::from_str(schedule.target().unwrap().input().unwrap()).unwrap();
        out.push((
            name.to_string(),
            schedule.schedule_expression().unwrap().to_string(),
            input,
        ));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The timers the due index holds in a minute, over every shard: what a tick reads.
async fn due_in(store: &lifecycle_aws::DynamoStore, minute: Time) -> Vec<(String, Time)> {
    let mut due = Vec::new();
    for shard in 0..lifecycle_aws::dynamodb::DUE_SHARDS {
        let page = store
            .due_page(
                shard,
                minute,
                minute + chrono::Duration::minutes(1),
                None,
                1000,
            )
            .await
            .unwrap();
        due.extend(page.timers.into_iter().map(|d| (d.timer, d.at)));
    }
    due.sort();
    due
}

fn contract(event: &str, action: &str, end: &str, occurred_at: &str) -> Value {
    json!({"id": event, "type": format!("contract.{action}"), "occurred_at": occurred_at,
           "data": {"id": "k_1", "customer_id": "c_1", "starting_at": "2026-11-01T00:00:00Z", "ending_before": end}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contract_is_scheduled_fired_moved_and_archived_on_aws_adapters() {
    let config = common::sdk_config().await;
    let store = Arc::new(common::dynamo_store().await);
    let scheduler_client = aws_sdk_scheduler::Client::new(&config);
    let group = common::schedule_group(&scheduler_client).await;
    let clock = Arc::new(FixedClock::new(t("2026-11-25T10:00:00Z")));
    let near = Arc::new(NearSink::default());
    let scheduler = EventBridgeScheduler::new(
        scheduler_client.clone(),
        SchedulerConfig::new(
            &group,
            &common::deliver_arn(),
            &common::role_arn(),
            &common::dlq_arn(),
        ),
        near.clone(),
        clock.clone(),
    );
    let service = Service::new(
        store.clone(),
        Arc::new(scheduler),
        Arc::new(HttpSender::new()),
        clock.clone(),
        aws_config(),
    );
    service.install().await.unwrap();
    let (url, received) = receiver().await;
    let endpoint = service
        .create_endpoint(&json!({"url": url, "event_types": ["contract.create", "contract.end"]}))
        .await
        .unwrap();
    let secret = endpoint.secrets[0].value.clone();
    service
        .create_notification(
            &json!({"event_type": "contract.end", "offset": "-P1D", "name": "Heads-up"}),
        )
        .await
        .unwrap();

    // A contract: the minutes of its two moments ahead get their ticks; its create webhook is due now.
    let results = service
        .ingest(&contract(
            "wr_1",
            "create",
            "2026-12-05T12:00:00Z",
            "2026-11-25T09:59:00Z",
        ))
        .await
        .unwrap();
    assert_eq!(results[0].status, "accepted");
    let upcoming = service
        .upcoming("c_1", ScheduleState::Pending, None, None, 10)
        .await
        .unwrap();
    let fire_times: Vec<String> = upcoming
        .data
        .iter()
        .map(|s| s.fire_at.to_rfc3339())
        .collect();
    assert_eq!(
        fire_times,
        ["2026-12-04T12:00:00+00:00", "2026-12-05T12:00:00+00:00"]
    );
    let stored = schedules(&scheduler_client, &group).await;
    let minute = lifecycle_aws::dynamodb::minute_of;
    let mut expected: Vec<(String, String)> = upcoming
        .data
        .iter()
        .map(|s| {
            (
                lifecycle_aws::scheduler::tick_name(minute(s.fire_at)),
                lifecycle_aws::scheduler::expression(minute(s.fire_at)),
            )
        })
        .collect();
    expected.sort();
    let names: Vec<(String, String)> = stored
        .iter()
        .map(|(n, e, _)| (n.clone(), e.clone()))
        .collect();
    assert_eq!(names, expected);
    assert!(names.iter().any(|(_, e)| e == "at(2026-12-04T11:59:00)"));

    // The create webhook went to the near sink; run it as the deliverer will.
    let due_now: Vec<(String, Time)> = near.0.lock().unwrap().drain(..).collect();
    assert_eq!(due_now.len(), 1, "{due_now:?}");
    service.run_timer(&due_now[0].0).await.unwrap();
    assert_eq!(received.lock().unwrap().len(), 1);

    // The -P1D minute's tick runs: its input names the minute, whose one
    // timer the due index holds.
    let (name, _, input) = stored
        .iter()
        .find(|(_, e, _)| e == "at(2026-12-04T11:59:00)")
        .unwrap()
        .clone();
    // After its invocation EventBridge deletes it (ActionAfterCompletion DELETE); moto does not.
    scheduler_client
        .delete_schedule()
        .name(&name)
        .group_name(&group)
        .send()
        .await
        .unwrap();
    let tick = t(input["tick"].as_str().unwrap());
    let due = due_in(&store, tick).await;
    assert_eq!(due.len(), 1, "{due:?}");
    let (timer, at) = due[0].clone();
    assert_eq!(at, t("2026-12-04T12:00:00Z"));
    clock.set(at);
    service.run_timer(&timer).await.unwrap();
    // A duplicate sends nothing more; the timer has left the index.
    service.run_timer(&timer).await.unwrap();
    assert!(due_in(&store, tick).await.is_empty());
    let requests = received.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    for (headers, body) in &requests {
        let header = |name: &str| headers[name].to_str().unwrap().to_string();
        verify(
            &secret,
            &header("webhook-id"),
            &header("webhook-timestamp"),
            &header("webhook-signature"),
            body.as_bytes(),
        )
        .expect("a valid Standard Webhooks signature");
    }
    let bodies: Vec<Value> = requests
        .iter()
        .map(|(_, b)| serde_json::from_str(b).unwrap())
        .collect();
    assert_eq!(bodies[0]["type"], "contract.create");
    assert_eq!(bodies[1]["type"], "contract.end");
    assert_eq!(
        requests[1].0["webhook-id"].to_str().unwrap(),
        lifecycle_core::ids::with_prefix(&timer, "msg")
    );
    let log = service
        .deliveries(
            &DeliveryFilter {
                customer_id: Some("c_1".into()),
                ..Default::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    // Two delivered with one attempt each, and the start (past its catch-up) recorded as skipped.
    let mut outcomes: Vec<(&str, usize)> = log
        .data
        .iter()
        .map(|(d, attempts)| (d.status.as_str(), attempts.len()))
        .collect();
    outcomes.sort();
    assert_eq!(
        outcomes,
        [("delivered", 1), ("delivered", 1), ("skipped", 0)]
    );
    let skipped = log
        .data
        .iter()
        .find(|(d, _)| d.status == DeliveryStatus::Skipped)
        .unwrap();
    assert_eq!(skipped.0.event_type.as_str(), "contract.start");

    // An edit moves the end: the new minutes get their ticks; the old end's
    // minute is left with nothing due (its tick, when it runs, reads nothing).
    let old_end = upcoming.data[1].fire_at;
    service
        .ingest(&contract(
            "wr_2",
            "edit",
            "2026-12-10T12:00:00Z",
            &clock.now().to_rfc3339(),
        ))
        .await
        .unwrap();
    let stored = schedules(&scheduler_client, &group).await;
    let mut expressions: Vec<&str> = stored.iter().map(|(_, e, _)| e.as_str()).collect();
    expressions.sort();
    assert_eq!(
        expressions,
        [
            "at(2026-12-05T11:59:00)",
            "at(2026-12-09T11:59:00)",
            "at(2026-12-10T11:59:00)"
        ]
    );
    assert!(
        due_in(&store, minute(old_end)).await.is_empty(),
        "the moved moment left its minute"
    );
    let new_end = t("2026-12-10T12:00:00Z");
    assert_eq!(due_in(&store, new_end).await.len(), 1);

    // An archive cancels what is left: nothing is due in any tick's minute.
    service
        .ingest(&json!({"id": "wr_3", "type": "contract.archive", "occurred_at": clock.now().to_rfc3339(),
                        "data": {"id": "k_1", "customer_id": "c_1"}}))
        .await
        .unwrap();
    for (_, _, input) in schedules(&scheduler_client, &group).await {
        let tick = t(input["tick"].as_str().unwrap());
        assert!(due_in(&store, tick).await.is_empty(), "{tick}");
    }
}

struct Stack {
    service: Service,
    store: Arc<lifecycle_aws::DynamoStore>,
    near: Arc<NearSink>,
    scheduler: aws_sdk_scheduler::Client,
    group: String,
}

async fn stack() -> Stack {
    let config = common::sdk_config().await;
    let scheduler = aws_sdk_scheduler::Client::new(&config);
    let group = common::schedule_group(&scheduler).await;
    let clock = Arc::new(FixedClock::new(t("2026-11-25T10:00:00Z")));
    let near = Arc::new(NearSink::default());
    let store = Arc::new(common::dynamo_store().await);
    let service = Service::new(
        store.clone(),
        Arc::new(EventBridgeScheduler::new(
            scheduler.clone(),
            SchedulerConfig::new(
                &group,
                &common::deliver_arn(),
                &common::role_arn(),
                &common::dlq_arn(),
            ),
            near.clone(),
            clock.clone(),
        )),
        Arc::new(HttpSender::new()),
        clock.clone(),
        aws_config(),
    );
    service.install().await.unwrap();
    Stack {
        service,
        store,
        near,
        scheduler,
        group,
    }
}

impl Stack {
    /// Runs the timers handed to the near sink, as the deliverer will.
    async fn run_near(&self) {
        let due: Vec<(String, Time)> = self.near.0.lock().unwrap().drain(..).collect();
        for (id, _) in due {
            self.service.run_timer(&id).await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_thresholds_cross_once_and_replays_count_nothing() {
    let stack = stack().await;
    let (url, received) = receiver().await;
    stack
        .service
        .create_endpoint(&json!({"url": url}))
        .await
        .unwrap();
    let threshold = stack
        .service
        .create_notification(
            &json!({"event_type": "alerts.usage_threshold_reached", "metric": "calls",
                                     "threshold": 10, "notify_on_resolve": true}),
        )
        .await
        .unwrap();
    let usage = |id: &str, quantity: u32| {
        json!({"id": id, "type": "usage.record", "occurred_at": "2026-11-25T09:00:00Z",
               "data": {"customer_id": "c_1", "metric": "calls", "quantity": quantity,
                        "timestamp": "2026-11-25T09:00:00Z"}})
    };
    let batch = json!({"events": [usage("u_1", 6), usage("u_2", 5)]});
    let results = stack.service.ingest(&batch).await.unwrap();
    assert!(results.iter().all(|r| r.status == "accepted"));
    stack.run_near().await;
    assert_eq!(
        received.lock().unwrap().len(),
        1,
        "one crossing, one webhook"
    );
    let body: Value = serde_json::from_str(&received.lock().unwrap()[0].1).unwrap();
    assert_eq!(body["type"], "alerts.usage_threshold_reached");

    // The replay is a duplicate: the total stays 11, nothing more is sent.
    let results = stack.service.ingest(&batch).await.unwrap();
    assert!(results.iter().all(|r| r.status == "duplicate"));
    stack.run_near().await;
    assert_eq!(received.lock().unwrap().len(), 1);
    let alerts = stack.service.customer_alerts("c_1").await.unwrap();
    let alert = alerts
        .iter()
        .find(|a| a["notification_id"] == json!(threshold.id))
        .unwrap();
    assert_eq!(alert["value"], json!(11.0));
    assert_eq!(alert["state"], "in_alarm", "{alert}");
    assert!(stack
        .scheduler
        .list_schedules()
        .group_name(&stack.group)
        .send()
        .await
        .unwrap()
        .schedules()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_an_offset_moves_the_timers_to_their_new_ticks() {
    let stack = stack().await;
    let notification = stack
        .service
        .create_notification(&json!({"event_type": "contract.end", "offset": "-P3D"}))
        .await
        .unwrap();
    for i in 0..3 {
        let body = json!({"id": format!("wr_{i}"), "type": "contract.create", "occurred_at": "2026-11-25T09:00:00Z",
                          "data": {"id": format!("k_{i}"), "customer_id": "c_1", "starting_at": "2026-11-26T00:00:00Z",
                                   "ending_before": format!("2026-12-1{i}T00:00:00Z")}});
        stack.service.ingest(&body).await.unwrap();
    }
    // The day of every tick, and of every timer due in a tick's minute.
    let ticks = |stack: &Stack| {
        let (client, group) = (stack.scheduler.clone(), stack.group.clone());
        async move {
            let mut days: Vec<String> = schedules(&client, &group)
                .await
                .into_iter()
                .map(|(_, _, input)| input["tick"].as_str().unwrap()[..10].to_string())
                .collect();
            days.sort();
            days
        }
    };
    let due_days = |stack: &Stack| {
        let (client, group) = (stack.scheduler.clone(), stack.group.clone());
        let store = stack.store.clone();
        async move {
            let mut days = Vec::new();
            for (_, _, input) in schedules(&client, &group).await {
                for (_, at) in due_in(&store, t(input["tick"].as_str().unwrap())).await {
                    days.push(at.format("%Y-%m-%d").to_string());
                }
            }
            days.sort();
            days
        }
    };
    // Three starts at one minute (one tick), three user ends (-P3D), three system ends.
    let days = |days: &[&str]| -> Vec<String> { days.iter().map(|d| d.to_string()).collect() };
    let expected = days(&[
        "2026-11-26",
        "2026-12-07",
        "2026-12-08",
        "2026-12-09",
        "2026-12-10",
        "2026-12-11",
        "2026-12-12",
    ]);
    assert_eq!(ticks(&stack).await, expected);
    let mut due = vec!["2026-11-26".to_string(); 3];
    due.extend(expected[1..].iter().cloned());
    assert_eq!(due_days(&stack).await, due);

    stack
        .service
        .update_notification(&notification.id, &json!({"offset": "-P4D"}))
        .await
        .unwrap();
    // The moved timers' new minutes get ticks; the old ones stay, and hold nothing.
    let expected = days(&[
        "2026-11-26",
        "2026-12-06",
        "2026-12-07",
        "2026-12-08",
        "2026-12-09",
        "2026-12-10",
        "2026-12-11",
        "2026-12-12",
    ]);
    assert_eq!(ticks(&stack).await, expected);
    let mut due = vec!["2026-11-26".to_string(); 3];
    due.extend(days(&[
        "2026-12-06",
        "2026-12-07",
        "2026-12-08",
        "2026-12-10",
        "2026-12-11",
        "2026-12-12",
    ]));
    assert_eq!(
        due_days(&stack).await,
        due,
        "each timer at its new minute, none at its old"
    );
    // Only the three contract.create webhooks were due at once.
    assert_eq!(stack.near.0.lock().unwrap().len(), 3);
}

/// A page of the delivery log stays under the budget of a Lambda response
/// (6 MB; API Gateway answers 500 above it) whatever `limit` asks: 200
/// deliveries with eight attempts of 4 KiB excerpts each are about 7 MB.
/// The pages together hold every delivery once, newest first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_the_delivery_log_stays_under_a_lambda_response() {
    use lifecycle_core::event_type::EventType;
    use lifecycle_core::ports::{AttemptCommit, Message, Store};
    use lifecycle_core::schedule::{Attempt, Delivery};
    let stack = stack().await;
    let at = t("2026-11-25T10:00:00Z");
    let excerpt = "e".repeat(4096);
    let mut commits = Vec::new();
    for n in 0..200 {
        let webhook = format!("msg_{n:04}");
        let created = at + chrono::Duration::seconds(n);
        let mut d = Delivery::direct(
            &webhook,
            EventType::ContractEnd,
            "ep_1",
            "c_1",
            None,
            created,
        );
        let message = Message {
            id: webhook.clone(),
            body: "{}".into(),
        };
        stack
            .store
            .add_message(&message, std::slice::from_ref(&d))
            .await
            .unwrap();
        for number in 1..=8 {
            d.attempt_count = number;
            commits.push(AttemptCommit {
                attempt: Attempt {
                    delivery_id: d.id.clone(),
                    number,
                    at: created + chrono::Duration::seconds(number as i64),
                    endpoint_id: "ep_1".into(),
                    status_code: Some(500),
                    latency_ms: 3,
                    error: None,
                    response: Some(excerpt.clone()),
                    manual: false,
                },
                delivery: d.clone(),
                leased_until: None,
            });
        }
    }
    stack.store.commit_attempts(&commits).await.unwrap();
    let filter = DeliveryFilter::default();
    let (mut seen, mut cursor, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        let page = (stack.service)
            .deliveries(&filter, cursor.as_deref(), 500)
            .await
            .unwrap();
        let body = json!({"data": page.data.iter().map(|(d, a)| d.view(a)).collect::<Vec<_>>(),
                          "next_cursor": page.next_cursor});
        let bytes = body.to_string().len();
        assert!(bytes < 6 * 1024 * 1024, "page {pages} is {bytes} bytes");
        assert!(page.data.iter().all(|(_, a)| a.len() == 8));
        seen.extend(page.data.into_iter().map(|(d, _)| d.id));
        pages += 1;
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert!(pages >= 2, "the log did not fit one page");
    let distinct: std::collections::HashSet<&String> = seen.iter().collect();
    assert_eq!(
        (seen.len(), distinct.len()),
        (200, 200),
        "each delivery once across the pages"
    );
}
