//! A deployment on moto, driven as AWS would drive it: a table, a schedule
//! group and a timer queue on a moto server on loopback; the functions'
//! runtimes (one per simulated execution environment) with every SDK client
//! counted (`calls`); the api router called with API Gateway HTTP API v2
//! events; the table's stream read from moto and handed to the schedule
//! handler through the template's own filter; the ticks' schedules, which
//! moto stores but never fires, invoked from their stored input; the timer
//! queue received from moto and handed to the deliver handler as the SQS
//! event source would, several batches at a time.

use crate::calls::Counter;
use crate::moto;
use crate::stream_filter;
use aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput;
use aws_smithy_runtime_api::client::interceptors::SharedInterceptor;
use lambda_http::request::LambdaRequest;
use lambda_http::{Context, LambdaEvent};
use lifecycle_core::destination::Network;
use lifecycle_core::time::{Clock, Time};
use lifecycle_functions::emf::Captured;
use lifecycle_functions::schedule::{self, StreamOutcome};
use lifecycle_functions::wiring::Clients;
use lifecycle_functions::{deliver, Runtime, Settings};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

pub const KEY: &str = "aws-storm-api-key-0123456789";

/// `deliver` invocations between two reads of the stream in `settle`: an
/// invocation writes up to about 5,000 records (1,000 moments, each its
/// message, schedule, delivery and attempt), and moto keeps the last
/// 60,000 (`scripts/moto_server.py`).
const DRAIN_EVERY: usize = 4;

/// The system clock moved by an offset the driver sets, so that a held
/// timer really waits and then finds itself due.
#[derive(Default)]
pub struct ShiftedClock(Mutex<chrono::Duration>);

impl Clock for ShiftedClock {
    fn now(&self) -> Time {
        chrono::Utc::now() + *self.0.lock().unwrap()
    }
}

impl ShiftedClock {
    pub fn set(&self, now: Time) {
        *self.0.lock().unwrap() = now - chrono::Utc::now();
    }
}

/// How a stack is set up.
#[derive(Clone, Debug)]
pub struct Options {
    /// Simulated execution environments of `deliver` (each with its own caches).
    pub environments: usize,
    /// Fan-out pages per schedule invocation.
    pub fanout_pages: usize,
    /// The retry timetable (`RETRY_DELAYS`), if not the default one.
    pub retry_delays: Option<String>,
    /// An interceptor on the functions' DynamoDB client, after the counter
    /// (a fault inside a function).
    pub dynamodb_fault: Option<SharedInterceptor>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            environments: 4,
            fanout_pages: 100,
            retry_delays: None,
            dynamodb_fault: None,
        }
    }
}

pub struct Stack {
    /// The runtime of `api` and `schedule`, and the first of `deliver`'s.
    pub rt: Arc<Runtime>,
    /// `deliver`'s execution environments.
    pub environments: Vec<Arc<Runtime>>,
    pub clock: Arc<ShiftedClock>,
    pub counter: Counter,
    pub router: axum::Router,
    pub scheduler: aws_sdk_scheduler::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub group: String,
    pub queue_url: String,
    pub table: String,
    stream: StreamReader,
    patterns: Vec<Value>,
    /// The most schedules seen alive in the group.
    pub schedules_alive_max: usize,
    /// The records the last read of the stream brought (`replay`).
    last_records: Vec<Value>,
    /// The metrics lines (EMF) every execution environment wrote, which a
    /// function writes to standard output.
    pub metrics: Captured,
}

/// What one pump of the queue did.
#[derive(Debug, Default)]
pub struct Pumped {
    /// `deliver` invocations (SQS batches) and the messages they took.
    pub invocations: usize,
    pub messages: usize,
    /// Messages reported failed (made visible again at once).
    pub failed: usize,
}

impl Stack {
    pub async fn new(options: Options) -> Stack {
        let sdk = moto::sdk_config().await;
        let counter = Counter::default();
        let mut dynamodb =
            aws_sdk_dynamodb::config::Builder::from(&sdk).interceptor(counter.clone());
        if let Some(fault) = options.dynamodb_fault.clone() {
            dynamodb.push_interceptor(fault);
        }
        let clients = Clients {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb.build()),
            sqs: aws_sdk_sqs::Client::from_conf(
                aws_sdk_sqs::config::Builder::from(&sdk)
                    .interceptor(counter.clone())
                    .build(),
            ),
            scheduler: aws_sdk_scheduler::Client::from_conf(
                aws_sdk_scheduler::config::Builder::from(&sdk)
                    .interceptor(counter.clone())
                    .build(),
            ),
            eventbridge: aws_sdk_eventbridge::Client::from_conf(
                aws_sdk_eventbridge::config::Builder::from(&sdk)
                    .interceptor(counter.clone())
                    .build(),
            ),
        };
        let table = moto::unique("lifecycle");
        lifecycle_aws::create_table(&clients.dynamodb, &table)
            .await
            .expect("create the table on moto");
        let group = moto::unique("lifecycle");
        (clients.scheduler.create_schedule_group())
            .name(&group)
            .send()
            .await
            .expect("create the schedule group on moto");
        let queue_url = (clients.sqs.create_queue())
            .queue_name(moto::unique("timers"))
            .attributes(
                aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
                "120",
            )
            .send()
            .await
            .expect("create the timer queue on moto")
            .queue_url()
            .expect("a queue url")
            .to_string();
        let mut settings = Settings::new(&table);
        // The receiver is plain http on loopback: allowed here, as the
        // AllowedDestinations parameter would allow an internal network.
        settings.allow_http = true;
        settings.destinations.allow = vec![Network::parse("127.0.0.1/32").expect("a network")];
        settings.scheduler = Some(lifecycle_aws::SchedulerConfig::new(
            &group,
            &moto::deliver_arn(),
            &moto::role_arn(),
            &moto::dlq_arn(),
        ));
        settings.timer_queue_url = Some(queue_url.clone());
        // The template's default: eventbridge and sqs endpoints in this account.
        settings.aws_destinations =
            lifecycle_core::endpoint_kind::AwsAllowList::parse(moto::ACCOUNT);
        settings.fanout_pages = options.fanout_pages;
        if let Some(delays) = &options.retry_delays {
            settings.retry =
                lifecycle_core::retry::RetryPolicy::from_list(delays).expect("retry delays");
        }
        // As the template deploys it: endpoint secrets sealed under the main key.
        settings.main_key = Some(lifecycle_core::sealing::MainKey::generate());
        let clock = Arc::new(ShiftedClock::default());
        let environments: Vec<Arc<Runtime>> = (0..options.environments.max(1))
            .map(|_| {
                Arc::new(Runtime::with_clients(
                    clients.clone(),
                    settings.clone(),
                    clock.clone(),
                ))
            })
            .collect();
        let rt = environments[0].clone();
        let metrics = Captured::default();
        for environment in &environments {
            environment.metrics.write_to(Box::new(metrics.clone()));
            (environment.store.check_main_key())
                .await
                .expect("every environment has the table's main key");
        }
        rt.api_service
            .install()
            .await
            .expect("install the system notifications");
        let router = lifecycle_functions::api::router(&rt, KEY);
        // The harness's own calls (what EventBridge Scheduler and the SQS
        // event source do in a deployment) are not the functions': uncounted.
        let harness = Clients::new(&sdk);
        let stream = StreamReader::new(&harness.dynamodb, &table).await;
        Stack {
            rt,
            environments,
            clock,
            counter,
            router,
            scheduler: harness.scheduler,
            sqs: harness.sqs,
            dynamodb: harness.dynamodb,
            group,
            queue_url,
            table,
            stream,
            patterns: stream_filter::template_patterns(),
            schedules_alive_max: 0,
            last_records: Vec::new(),
            metrics,
        }
    }

    /// One API Gateway HTTP API (payload 2.0) request, as the template's
    /// `ANY /{proxy+}` route sends it, through lambda_http's adapter (what
    /// `lambda_http::run` does with each invocation): (status, body).
    pub async fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
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
                "accountId": moto::ACCOUNT,
                "apiId": "abc123",
                "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
                "domainPrefix": "abc123",
                "http": {"method": method, "path": path_only, "protocol": "HTTP/1.1",
                         "sourceIp": "203.0.113.7", "userAgent": "billing/1.0"},
                "requestId": format!("req-{}", now.timestamp_nanos_opt().unwrap_or_default()),
                "routeKey": "ANY /{proxy+}",
                "stage": "$default",
                "time": now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
                "timeEpoch": now.timestamp_millis()
            },
            "body": body.map(|b| b.to_string()),
            "isBase64Encoded": false
        });
        let request: LambdaRequest = serde_json::from_value(event).expect("an API Gateway event");
        let adapter = lambda_http::Adapter::from(self.router.clone());
        let response = adapter
            .oneshot(LambdaEvent::new(request, Context::default()))
            .await
            .expect("the api answers");
        let response = serde_json::to_value(response).expect("a response");
        let status = response["statusCode"].as_u64().unwrap_or_default() as u16;
        let body = response["body"].as_str().unwrap_or_default();
        let body = serde_json::from_str(body).unwrap_or_else(|_| json!(body));
        (status, body)
    }

    /// Feeds every stream record written so far that the template's filter
    /// admits to the schedule handler, 100 a batch (the template's
    /// BatchSize), until the stream has nothing new. A batch that reports a
    /// failed record is retried from that record, as the event source does.
    pub async fn drain(&mut self) -> Vec<StreamOutcome> {
        let mut outcomes = Vec::new();
        loop {
            let records = self.stream.read().await;
            if records.is_empty() {
                break;
            }
            let records: Vec<Value> = records
                .into_iter()
                .filter(|r| stream_filter::admits(&self.patterns, r))
                .collect();
            self.last_records = records.clone();
            for batch in records.chunks(100) {
                let mut batch = batch.to_vec();
                for _ in 0..10 {
                    let event =
                        serde_json::from_value(json!({"Records": batch})).expect("a stream event");
                    let (outcome, failed) = (self.rt)
                        .invocation(schedule::handle_records(&self.rt, &event, None))
                        .await;
                    outcomes.push(outcome);
                    let Some((sequence, error)) = failed else {
                        break;
                    };
                    tracing::warn!(%error, "stream batch failed; retried from its record");
                    let from = batch
                        .iter()
                        .position(|r| r["dynamodb"]["SequenceNumber"] == json!(sequence))
                        .unwrap_or(0);
                    batch = batch.split_off(from);
                }
            }
        }
        self.note_schedules().await;
        outcomes
    }

    /// Hands the last records read to the schedule handler again, as the
    /// event source does when it retries a batch.
    pub async fn replay(&self) -> Vec<StreamOutcome> {
        let mut outcomes = Vec::new();
        for batch in self.last_records.chunks(100) {
            let event = serde_json::from_value(json!({"Records": batch})).expect("a stream event");
            let (outcome, failed) = (self.rt)
                .invocation(schedule::handle_records(&self.rt, &event, None))
                .await;
            assert!(failed.is_none(), "a replayed batch fails: {failed:?}");
            outcomes.push(outcome);
        }
        outcomes
    }

    /// Runs the queue and the stream until both are empty, waiting up to
    /// `max` for delayed messages: the `deliver` invocations it made. The
    /// stream is read after every few invocations, as the event source
    /// does, long before moto trims what the harness has not read.
    pub async fn settle(&mut self, concurrency: usize, max: std::time::Duration) -> usize {
        let until = std::time::Instant::now() + max;
        let mut invocations = 0;
        loop {
            loop {
                let pumped = self.pump_some(concurrency, DRAIN_EVERY).await;
                invocations += pumped.invocations;
                self.drain().await;
                if pumped.invocations < DRAIN_EVERY {
                    break;
                }
            }
            let (visible, in_flight, delayed) = self.queue_depth().await;
            if visible + in_flight + delayed == 0 || std::time::Instant::now() > until {
                return invocations;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }

    async fn note_schedules(&mut self) {
        let alive = self.schedule_names().await.len();
        self.schedules_alive_max = self.schedules_alive_max.max(alive);
    }

    /// The schedules moto holds in the group: name -> the full definition.
    pub async fn schedules(&self) -> BTreeMap<String, GetScheduleOutput> {
        let mut out = BTreeMap::new();
        for name in self.schedule_names().await {
            let schedule = (self.scheduler.get_schedule())
                .group_name(&self.group)
                .name(&name)
                .send()
                .await
                .expect("get a schedule");
            out.insert(name, schedule);
        }
        out
    }

    pub async fn schedule_names(&self) -> HashSet<String> {
        let mut names = HashSet::new();
        let mut token = None;
        loop {
            let page = (self.scheduler.list_schedules())
                .group_name(&self.group)
                .set_next_token(token)
                .send()
                .await
                .expect("list schedules");
            names.extend(
                page.schedules()
                    .iter()
                    .filter_map(|s| s.name())
                    .map(str::to_string),
            );
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                return names;
            }
        }
    }

    /// Invokes `deliver` with a stored schedule's input, as EventBridge
    /// Scheduler would in its minute, then deletes it (what
    /// `ActionAfterCompletion: DELETE` does after an invocation).
    pub async fn invoke_schedule(&self, name: &str) -> Result<Value, String> {
        let schedule = (self.scheduler.get_schedule())
            .group_name(&self.group)
            .name(name)
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        let result = self.invoke_input(&schedule).await;
        (self.scheduler.delete_schedule())
            .group_name(&self.group)
            .name(name)
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        result
    }

    /// Invokes `deliver` with a schedule's input, leaving the schedule.
    pub async fn invoke_input(&self, schedule: &GetScheduleOutput) -> Result<Value, String> {
        let input = invocation_input(schedule);
        (self.rt)
            .invocation(deliver::dispatch(self.rt.clone(), input, None))
            .await
    }

    /// Receives the timer queue's visible messages and runs them through
    /// `deliver` as the SQS event source would: batches of up to 10, up to
    /// `concurrency` invocations at once, spread over the execution
    /// environments; the messages a batch reports failed are made visible
    /// again at once, the others deleted. Ends when a receive finds nothing
    /// and nothing is running.
    pub async fn pump(&self, concurrency: usize) -> Pumped {
        self.pump_some(concurrency, usize::MAX).await
    }

    /// `pump`, ending once `most` invocations were started and ran.
    pub async fn pump_some(&self, concurrency: usize, most: usize) -> Pumped {
        let mut pumped = Pumped::default();
        let mut running = tokio::task::JoinSet::new();
        let mut next_environment = 0;
        loop {
            let received = if running.len() < concurrency.max(1) && pumped.invocations < most {
                (self.sqs.receive_message())
                    .queue_url(&self.queue_url)
                    .max_number_of_messages(10)
                    .send()
                    .await
                    .expect("receive from the timer queue")
                    .messages
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
            if received.is_empty() {
                match running.join_next().await {
                    Some(done) => {
                        let failed: usize = done.expect("a deliver invocation");
                        pumped.failed += failed;
                        continue;
                    }
                    None => return pumped,
                }
            }
            pumped.invocations += 1;
            pumped.messages += received.len();
            let rt = self.environments[next_environment % self.environments.len()].clone();
            next_environment += 1;
            let (sqs, url) = (self.sqs.clone(), self.queue_url.clone());
            running.spawn(async move { invoke_batch(rt, sqs, url, received).await });
        }
    }

    /// How many deliveries `GET /v1/deliveries?{query}` lists.
    pub async fn delivery_count(&self, query: &str) -> usize {
        let (status, page) = self
            .api("GET", &format!("/v1/deliveries?{query}"), None)
            .await;
        assert_eq!(status, 200, "{page}");
        page["data"].as_array().map_or(0, Vec::len)
    }

    /// Messages the queue holds: (visible, in flight, delayed).
    pub async fn queue_depth(&self) -> (u64, u64, u64) {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let attributes = (self.sqs.get_queue_attributes())
            .queue_url(&self.queue_url)
            .attribute_names(A::All)
            .send()
            .await
            .expect("queue attributes")
            .attributes
            .unwrap_or_default();
        let count = |name: A| {
            attributes
                .get(&name)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (
            count(A::ApproximateNumberOfMessages),
            count(A::ApproximateNumberOfMessagesNotVisible),
            count(A::ApproximateNumberOfMessagesDelayed),
        )
    }
}

/// One `deliver` invocation of an SQS batch: the messages it reports
/// failed become visible again, the rest are deleted. Returns the failures.
async fn invoke_batch(
    rt: Arc<Runtime>,
    sqs: aws_sdk_sqs::Client,
    url: String,
    messages: Vec<aws_sdk_sqs::types::Message>,
) -> usize {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            json!({
                "messageId": m.message_id(), "receiptHandle": m.receipt_handle(),
                "body": m.body(), "attributes": {}, "messageAttributes": {},
                "md5OfBody": m.md5_of_body(), "eventSource": "aws:sqs",
                "eventSourceARN": format!("arn:aws:sqs:us-east-1:{}:timers", moto::ACCOUNT),
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    let event = serde_json::from_value(json!({"Records": records})).expect("an SQS event");
    let response = rt
        .clone()
        .invocation(deliver::handle_sqs(rt, event, None))
        .await;
    let failed: HashSet<String> = (response.batch_item_failures.iter())
        .map(|f| f.item_identifier.clone())
        .collect();
    for message in &messages {
        let handle = message.receipt_handle().unwrap_or_default();
        if failed.contains(message.message_id().unwrap_or_default()) {
            let _ = (sqs.change_message_visibility())
                .queue_url(&url)
                .receipt_handle(handle)
                .visibility_timeout(0)
                .send()
                .await;
        } else {
            let _ = (sqs.delete_message())
                .queue_url(&url)
                .receipt_handle(handle)
                .send()
                .await;
        }
    }
    failed.len()
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
pub fn invocation_input(schedule: &GetScheduleOutput) -> Value {
    let expression = schedule.schedule_expression().unwrap_or_default();
    let minute = expression
        .strip_prefix("at(")
        .and_then(|e| e.strip_suffix(')'))
        .unwrap_or_default();
    let input = (schedule.target())
        .and_then(|t| t.input())
        .unwrap_or_default()
        .replace("<aws.scheduler.scheduled-time>", &format!("{minute}Z"))
        .replace("<aws.scheduler.execution-id>", "storm-execution")
        .replace("<aws.scheduler.attempt-number>", "1");
    serde_json::from_str(&input).unwrap_or(Value::Null)
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
            .post(moto::moto())
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
            .expect("moto answers");
        assert!(response.status().is_success(), "{action}: {response:?}");
        response.json().await.expect("a JSON answer")
    }

    async fn new(dynamodb: &aws_sdk_dynamodb::Client, table: &str) -> Self {
        let described = (dynamodb.describe_table())
            .table_name(table)
            .send()
            .await
            .expect("describe the table");
        let arn = (described.table())
            .and_then(|t| t.latest_stream_arn())
            .expect("the table has a stream")
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
