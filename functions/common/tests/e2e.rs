//! The AWS functions end to end on moto: the api handler called with API
//! Gateway HTTP API (v2) events, the schedule handler with the records moto's
//! DynamoDB stream holds (read with DescribeStream / GetShardIterator /
//! GetRecords, wrapped into the Lambda DynamoDB event as the event source
//! mapping would), the deliver handler with the input of the schedules moto
//! stores (moto never fires them) and with the timer queue's messages, a
//! receiver on loopback checking the Standard Webhooks signatures.

#[path = "../../../aws/tests/common/mod.rs"]
mod common;
mod stream_filter;

use axum::http::HeaderMap;
use axum::routing::post;
use lambda_http::request::LambdaRequest;
use lambda_http::{Context, LambdaEvent};
use lifecycle_aws::scheduler::expression;
use lifecycle_core::destination::Network;
use lifecycle_core::signing::verify;
use lifecycle_core::time::{parse_time, Clock, Time};
use lifecycle_functions::deliver::{self, Outcome, TimerInput};
use lifecycle_functions::schedule::{self, StreamOutcome};
use lifecycle_functions::{Runtime, Settings};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

const KEY: &str = "e2e-api-key-0123456789";

/// The system clock moved by an offset the test sets, so that a held timer
/// really waits and then finds itself due.
#[derive(Default)]
struct ShiftedClock(Mutex<chrono::Duration>);

impl Clock for ShiftedClock {
    fn now(&self) -> Time {
        chrono::Utc::now() + *self.0.lock().unwrap()
    }
}

impl ShiftedClock {
    fn set(&self, now: Time) {
        *self.0.lock().unwrap() = now - chrono::Utc::now();
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

/// A deployment on moto: table, schedule group, timer queue, the runtime
/// the three functions share, the api router.
struct Stack {
    rt: Arc<Runtime>,
    clock: Arc<ShiftedClock>,
    router: axum::Router,
    scheduler: aws_sdk_scheduler::Client,
    sqs: aws_sdk_sqs::Client,
    group: String,
    queue_url: String,
    stream: StreamReader,
}

async fn stack(fanout_pages: usize) -> Stack {
    let sdk = common::sdk_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = common::unique("lifecycle");
    lifecycle_aws::create_table(&dynamodb, &table)
        .await
        .unwrap();
    let scheduler = aws_sdk_scheduler::Client::new(&sdk);
    let group = common::unique("lifecycle");
    scheduler
        .create_schedule_group()
        .name(&group)
        .send()
        .await
        .unwrap();
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue_url = sqs
        .create_queue()
        .queue_name(common::unique("timers"))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let mut settings = Settings::new(&table);
    // The receiver is plain http on loopback: allowed here, as the
    // AllowedDestinations parameter would allow an internal network.
    settings.allow_http = true;
    settings.destinations.allow = vec![Network::parse("127.0.0.1/32").unwrap()];
    settings.scheduler = Some(lifecycle_aws::SchedulerConfig::new(
        &group,
        &common::deliver_arn(),
        &common::role_arn(),
        &common::dlq_arn(),
    ));
    settings.timer_queue_url = Some(queue_url.clone());
    settings.fanout_pages = fanout_pages;
    let clock = Arc::new(ShiftedClock::default());
    let rt = Arc::new(Runtime::new(&sdk, settings, clock.clone()));
    rt.api_service().install().await.unwrap();
    let router = lifecycle_functions::api::router(&rt, KEY);
    let stream = StreamReader::new(&dynamodb, &table).await;
    Stack {
        rt,
        clock,
        router,
        scheduler,
        sqs,
        group,
        queue_url,
        stream,
    }
}

/// Reads moto's DynamoDB stream through the DynamoDB Streams API (JSON
/// protocol; moto routes it by the target and the credential scope and does
/// not check the signature).
struct StreamReader {
    http: reqwest::Client,
    iterator: Option<String>,
    arn: String,
}

impl StreamReader {
    async fn call(http: &reqwest::Client, action: &str, body: Value) -> Value {
        let response = http
            .post(common::moto())
            .header("X-Amz-Target", format!("DynamoDBStreams_20120810.{action}"))
            .header("Content-Type", "application/x-amz-json-1.0")
            .header(
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=test/20261125/us-east-1/dynamodb/aws4_request, \
                 SignedHeaders=host, Signature=0",
            )
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{action}: {response:?}");
        response.json().await.unwrap()
    }

    async fn new(dynamodb: &aws_sdk_dynamodb::Client, table: &str) -> Self {
        let described = dynamodb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .unwrap();
        let arn = described
            .table()
            .unwrap()
            .latest_stream_arn()
            .unwrap()
            .to_string();
        let http = reqwest::Client::new();
        let stream = Self::call(&http, "DescribeStream", json!({"StreamArn": arn})).await;
        let shard = stream["StreamDescription"]["Shards"][0]["ShardId"].clone();
        let iterator = Self::call(
            &http,
            "GetShardIterator",
            json!({"StreamArn": arn, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"}),
        )
        .await["ShardIterator"]
            .as_str()
            .map(str::to_string);
        StreamReader {
            http,
            iterator,
            arn,
        }
    }

    /// The records written since the last read, as the Lambda event source
    /// hands them over (with `eventSourceARN`; moto gives the creation time
    /// as text, Lambda as epoch seconds).
    async fn read(&mut self) -> Vec<Value> {
        let mut records = Vec::new();
        loop {
            let page = Self::call(
                &self.http,
                "GetRecords",
                json!({"ShardIterator": self.iterator, "Limit": 1000}),
            )
            .await;
            self.iterator = page["NextShardIterator"].as_str().map(str::to_string);
            let batch = page["Records"].as_array().cloned().unwrap_or_default();
            if batch.is_empty() {
                return records;
            }
            for mut record in batch {
                record["eventSourceARN"] = json!(self.arn);
                record["dynamodb"]["ApproximateCreationDateTime"] =
                    json!(chrono::Utc::now().timestamp() as f64);
                records.push(record);
            }
        }
    }
}

impl Stack {
    /// One API Gateway HTTP API (payload 2.0) request, as the template's
    /// `ANY /{proxy+}` route sends it, through lambda_http's adapter (what
    /// `lambda_http::run` does with each invocation): (status, body).
    async fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let (path_only, query) = path.split_once('?').unwrap_or((path, ""));
        let now = chrono::Utc::now();
        let event = json!({
            "version": "2.0",
            "routeKey": "ANY /{proxy+}",
            "rawPath": path_only,
            "rawQueryString": query,
            "headers": {
                "accept": "application/json",
                "authorization": format!("Bearer {KEY}"),
                "content-type": "application/json",
                "host": "abc123.execute-api.us-east-1.amazonaws.com",
                "user-agent": "billing/1.0",
                "x-forwarded-for": "203.0.113.7",
                "x-forwarded-proto": "https"
            },
            "queryStringParameters": query_map(query),
            "pathParameters": {"proxy": path_only.trim_start_matches('/')},
            "requestContext": {
                "accountId": common::ACCOUNT,
                "apiId": "abc123",
                "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
                "domainPrefix": "abc123",
                "http": {"method": method, "path": path_only, "protocol": "HTTP/1.1",
                         "sourceIp": "203.0.113.7", "userAgent": "billing/1.0"},
                "requestId": format!("req-{}", now.timestamp_nanos_opt().unwrap()),
                "routeKey": "ANY /{proxy+}",
                "stage": "$default",
                "time": now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
                "timeEpoch": now.timestamp_millis()
            },
            "body": body.map(|b| b.to_string()),
            "isBase64Encoded": false
        });
        let request: LambdaRequest = serde_json::from_value(event).unwrap();
        let adapter = lambda_http::Adapter::from(self.router.clone());
        let response = adapter
            .oneshot(LambdaEvent::new(request, Context::default()))
            .await
            .unwrap();
        let response = serde_json::to_value(response).unwrap();
        let status = response["statusCode"].as_u64().unwrap() as u16;
        let body = response["body"].as_str().unwrap_or_default();
        let body = serde_json::from_str(body).unwrap_or_else(|_| json!(body));
        (status, body)
    }

    /// Feeds every stream record written so far that the template's filter
    /// admits to the schedule handler, 100 a batch (the template's
    /// BatchSize), until the stream has nothing new: the outcome of every
    /// invocation.
    async fn drain(&mut self) -> Vec<StreamOutcome> {
        let patterns = stream_filter::template_patterns();
        let mut outcomes = Vec::new();
        loop {
            let records = self.stream.read().await;
            if records.is_empty() {
                return outcomes;
            }
            let records: Vec<Value> = records
                .into_iter()
                .filter(|r| stream_filter::admits(&patterns, r))
                .collect();
            for batch in records.chunks(100) {
                let event = serde_json::from_value(json!({"Records": batch})).unwrap();
                let outcome = schedule::handle_stream(&self.rt, &event, None)
                    .await
                    .unwrap();
                outcomes.push(outcome);
            }
        }
    }

    /// How many deliveries `GET /v1/deliveries?{query}` lists.
    async fn delivery_count(&self, query: &str) -> usize {
        let (status, page) = self
            .api("GET", &format!("/v1/deliveries?{query}"), None)
            .await;
        assert_eq!(status, 200, "{page}");
        page["data"].as_array().map_or(0, Vec::len)
    }

    /// The schedules moto holds in the group: name -> the full definition.
    async fn schedules(
        &self,
    ) -> HashMap<String, aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput> {
        let mut names = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .scheduler
                .list_schedules()
                .group_name(&self.group)
                .set_next_token(token)
                .send()
                .await
                .unwrap();
            names.extend(
                page.schedules()
                    .iter()
                    .map(|s| s.name().unwrap().to_string()),
            );
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        let mut out = HashMap::new();
        for name in names {
            let schedule = self
                .scheduler
                .get_schedule()
                .group_name(&self.group)
                .name(&name)
                .send()
                .await
                .unwrap();
            out.insert(name, schedule);
        }
        out
    }

    async fn delete_schedule(&self, name: &str) {
        self.scheduler
            .delete_schedule()
            .group_name(&self.group)
            .name(name)
            .send()
            .await
            .unwrap();
    }

    async fn schedule_names(&self) -> HashSet<String> {
        let mut names = HashSet::new();
        let mut token = None;
        loop {
            let page = self
                .scheduler
                .list_schedules()
                .group_name(&self.group)
                .set_next_token(token)
                .send()
                .await
                .unwrap();
            names.extend(
                page.schedules()
                    .iter()
                    .map(|s| s.name().unwrap().to_string()),
            );
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                return names;
            }
        }
    }

    /// The timer queue's messages, as the SQS event source hands them to `deliver`.
    async fn queued(&self) -> Vec<Value> {
        let mut records = Vec::new();
        loop {
            let received = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap();
            if received.messages().is_empty() {
                return records;
            }
            for m in received.messages() {
                records.push(json!({
                    "messageId": m.message_id(), "receiptHandle": m.receipt_handle(),
                    "body": m.body(), "attributes": {}, "messageAttributes": {},
                    "md5OfBody": m.md5_of_body(), "eventSource": "aws:sqs",
                    "eventSourceARN": format!("arn:aws:sqs:us-east-1:{}:timers", common::ACCOUNT),
                    "awsRegion": "us-east-1"
                }));
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
}

fn query_map(query: &str) -> Value {
    let map: serde_json::Map<String, Value> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    if map.is_empty() {
        Value::Null
    } else {
        Value::Object(map)
    }
}

/// A stored schedule's input with the context attributes EventBridge
/// Scheduler fills in at invocation.
fn invocation_input(
    schedule: &aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput,
) -> TimerInput {
    let expression = schedule.schedule_expression().unwrap();
    let minute = &expression[3..expression.len() - 1];
    let input = schedule
        .target()
        .unwrap()
        .input()
        .unwrap()
        .replace("<aws.scheduler.scheduled-time>", &format!("{minute}Z"))
        .replace("<aws.scheduler.execution-id>", "e2e-execution")
        .replace("<aws.scheduler.attempt-number>", "1");
    serde_json::from_str(&input).unwrap()
}

fn verified(requests: &[(HeaderMap, String)], secret: &str) -> Vec<Value> {
    requests
        .iter()
        .map(|(headers, body)| {
            let header = |name: &str| headers[name].to_str().unwrap().to_string();
            verify(
                secret,
                &header("webhook-id"),
                &header("webhook-timestamp"),
                &header("webhook-signature"),
                body.as_bytes(),
            )
            .expect("a valid Standard Webhooks signature");
            serde_json::from_str(body).unwrap()
        })
        .collect()
}

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

/// Evaluating a new threshold against every customer is deferred from the
/// api (which answers at once) to the schedule function, which runs it from
/// the notification's stream record, as the local process does inline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_threshold_is_evaluated_by_the_schedule_function() {
    let mut stack = stack(100).await;
    let (url, _received) = receiver().await;
    let (status, _) = stack
        .api(
            "POST",
            "/v1/webhook-endpoints",
            Some(json!({"url": url, "event_types": ["alerts.low_credit_balance_reached"]})),
        )
        .await;
    assert_eq!(status, 201);
    let now = iso(chrono::Utc::now());
    let (status, results) = stack
        .api(
            "POST",
            "/v1/events",
            Some(
                json!({"id": "b_1", "type": "balance.update", "occurred_at": now,
                        "data": {"customer_id": "c_1", "credit_balance": 50}}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{results}");
    stack.drain().await;
    let (status, created) = stack
        .api(
            "POST",
            "/v1/notifications",
            Some(json!({"event_type": "alerts.low_credit_balance_reached", "threshold": 100})),
        )
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
    let (status, _) = stack
        .api(
            "PATCH",
            &format!("/v1/notifications/{}", created["id"].as_str().unwrap()),
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
    let (url, received) = receiver().await;
    let (status, endpoint) = stack
        .api(
            "POST",
            "/v1/webhook-endpoints",
            Some(json!({"url": url, "event_types": ["contract.create", "contract.end"]})),
        )
        .await;
    assert_eq!(status, 201, "{endpoint}");
    let secret = endpoint["secret"].as_str().unwrap().to_string();
    let (status, _) = stack
        .api(
            "POST",
            "/v1/notifications",
            Some(json!({"event_type": "contract.end", "offset": "-P1D", "name": "Heads-up"})),
        )
        .await;
    assert_eq!(status, 201);
    // The page and the OpenAPI description come through the same function.
    let (status, page) = stack.api("GET", "/", None).await;
    assert_eq!(status, 200);
    assert!(page.as_str().unwrap().contains("<html"), "{page}");
    let (status, openapi) = stack.api("GET", "/v1/openapi.json", None).await;
    assert_eq!((status, openapi["openapi"].as_str()), (200, Some("3.1.0")));

    // A contract that started two days ago and ends in five days.
    let now = time(&iso(chrono::Utc::now()));
    let end = now + chrono::Duration::days(5);
    let start = now - chrono::Duration::days(2);
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

    // The stream makes the schedule function create one schedule per moment ahead.
    let outcomes = stack.drain().await;
    assert!(
        outcomes.iter().map(|o| o.timers).sum::<usize>() >= 3,
        "{outcomes:?}"
    );
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
    assert_eq!(fire_times, [end - chrono::Duration::days(1), end]);
    let stored = stack.schedules().await;
    assert_eq!(stored.len(), 2, "{:?}", stored.keys());
    for (id, at) in &upcoming {
        let schedule = &stored[id];
        assert_eq!(
            schedule.schedule_expression(),
            Some(expression(*at).as_str())
        );
        assert_eq!(schedule.schedule_expression_timezone(), Some("UTC"));
        assert_eq!(
            schedule.flexible_time_window().unwrap().mode().as_str(),
            "OFF"
        );
        assert_eq!(
            schedule.action_after_completion().map(|a| a.as_str()),
            Some("DELETE")
        );
        let target = schedule.target().unwrap();
        assert_eq!(target.arn(), common::deliver_arn());
        assert_eq!(target.role_arn(), common::role_arn());
        assert_eq!(
            target.dead_letter_config().and_then(|d| d.arn()),
            Some(common::dlq_arn().as_str())
        );
        let input: Value = serde_json::from_str(target.input().unwrap()).unwrap();
        assert_eq!(input["timer"], json!(id));
        assert_eq!(time(input["at"].as_str().unwrap()), *at);
        assert_eq!(input["scheduled_time"], "<aws.scheduler.scheduled-time>");
    }

    // The contract.create webhook was due at once: the timer queue holds it.
    let queued = stack.queued().await;
    assert_eq!(queued.len(), 1, "{queued:?}");
    let response = deliver::handle_sqs(
        stack.rt.clone(),
        serde_json::from_value(json!({"Records": queued})).unwrap(),
    )
    .await;
    assert!(response.batch_item_failures.is_empty());
    let bodies = verified(&received.lock().unwrap(), &secret);
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["type"], "contract.create");

    // EventBridge invokes the -P1D schedule in the minute before its time;
    // the deliverer holds the remainder and sends it on its second.
    let (heads_up, heads_up_at) = upcoming[0].clone();
    let input = invocation_input(&stored[&heads_up]);
    stack.clock.set(heads_up_at - chrono::Duration::seconds(2));
    let held = std::time::Instant::now();
    let outcome = deliver::handle_timer(&stack.rt, &input).await.unwrap();
    assert_eq!(outcome, Outcome::Ran);
    assert!(held.elapsed() >= std::time::Duration::from_millis(1500));
    // What ActionAfterCompletion: DELETE does after an invocation on AWS.
    stack.delete_schedule(&heads_up).await;
    let requests = received.lock().unwrap().clone();
    let bodies = verified(&requests, &secret);
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[1]["type"], "contract.end");
    assert_eq!(
        requests[1].0["webhook-id"].to_str().unwrap(),
        lifecycle_core::ids::with_prefix(&heads_up, "msg")
    );
    let sent_at: i64 = requests[1].0["webhook-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(sent_at >= heads_up_at.timestamp(), "sent before its second");
    // A duplicate invocation is harmless.
    let again = deliver::handle_timer(&stack.rt, &input).await.unwrap();
    assert_eq!(again, Outcome::Stale);
    assert_eq!(received.lock().unwrap().len(), 2);
    // A schedule the lookup index does not show yet is retried, not dropped as stale.
    let unseen = TimerInput {
        timer: "sch_00000000000000000000000000000000".into(),
        ..input.clone()
    };
    let error = deliver::handle_timer(&stack.rt, &unseen).await.unwrap_err();
    assert_eq!(error.status, 503, "{error:?}");
    // An invocation ten minutes early goes back to the queue with a delay.
    let (end_id, end_at) = upcoming[1].clone();
    let input = invocation_input(&stored[&end_id]);
    stack.clock.set(end_at - chrono::Duration::minutes(10));
    let outcome = deliver::handle_timer(&stack.rt, &input).await.unwrap();
    assert!(
        matches!(outcome, Outcome::Requeued { delay_seconds } if (595..=600).contains(&delay_seconds)),
        "{outcome:?}"
    );
    stack.clock.set(heads_up_at);
    stack.drain().await;
    stack.queued().await;

    // An edit moves the end: the old end's schedule goes, the new moments come.
    let new_end = end + chrono::Duration::days(3);
    let (status, _) = stack
        .api(
            "POST",
            "/v1/events",
            Some(contract("wr_2", "edit", start, new_end, stack.clock.now())),
        )
        .await;
    assert_eq!(status, 200);
    stack.drain().await;
    let stored = stack.schedules().await;
    assert!(!stored.contains_key(&end_id), "{:?}", stored.keys());
    let mut expressions: Vec<&str> = stored
        .values()
        .map(|s| s.schedule_expression().unwrap())
        .collect();
    expressions.sort();
    assert_eq!(
        expressions,
        [
            expression(new_end - chrono::Duration::days(1)),
            expression(new_end)
        ]
    );

    // An archive deletes what is left.
    let (status, _) = stack
        .api(
            "POST",
            "/v1/events",
            Some(json!({"id": "wr_3", "type": "contract.archive", "occurred_at": iso(stack.clock.now()),
                        "data": {"id": "k_1", "customer_id": "c_1"}})),
        )
        .await;
    assert_eq!(status, 200);
    stack.drain().await;
    assert!(stack.schedule_names().await.is_empty());
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
    let (status, notification) = stack
        .api(
            "POST",
            "/v1/notifications",
            Some(json!({"event_type": "contract.end", "offset": "-P1D"})),
        )
        .await;
    assert_eq!(status, 201);
    let id = notification["id"].as_str().unwrap().to_string();
    // Contracts ending in 30 days: the -P1D moments are beyond the 14-day horizon.
    let now = time(&iso(chrono::Utc::now()));
    let end = now + chrono::Duration::days(30);
    for batch in 0..CONTRACTS / 500 {
        let events: Vec<Value> = (0..500)
            .map(|i| {
                let n = batch * 500 + i;
                json!({"id": format!("wr_{n}"), "type": "contract.create", "occurred_at": iso(now),
                       "data": {"id": format!("k_{n:05}"), "customer_id": format!("c_{n}"),
                                "starting_at": iso(now + chrono::Duration::days(20)), "ending_before": iso(end)}})
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

    // Every contract's schedule exists in EventBridge, at the new time.
    let names = stack.schedule_names().await;
    assert_eq!(names.len(), CONTRACTS);
    let keys: Vec<_> = (0..CONTRACTS)
        .map(|n| lifecycle_core::entity::EntityKey {
            kind: lifecycle_core::entity::EntityKind::Contract,
            id: format!("k_{n:05}"),
        })
        .collect();
    let schedules = lifecycle_core::ports::Store::schedules_of(stack.rt.store.as_ref(), &id, &keys)
        .await
        .unwrap();
    let pending: HashSet<String> = schedules
        .iter()
        .filter(|s| s.fire_at == end - chrono::Duration::days(25))
        .map(|s| s.entity.id.clone())
        .collect();
    assert_eq!(pending.len(), CONTRACTS);
    assert!(schedules.iter().all(|s| names.contains(&s.id)));
    let sample = stack.schedules().await;
    let one = sample.values().next().unwrap();
    assert_eq!(
        one.schedule_expression(),
        Some(expression(end - chrono::Duration::days(25)).as_str())
    );
    println!(
        "fan-out of {CONTRACTS} contracts: {invocations} schedule invocations ran it ({} batches in all)",
        outcomes.len()
    );
}
