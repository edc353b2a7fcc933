//! AWS-native destinations and the ingest queue, on moto: an `eventbridge`
//! endpoint delivering to a bus whose rule targets an SQS queue, an `sqs`
//! endpoint on a FIFO queue deduplicating a resend, a `PutEvents` refused
//! (a bus that does not exist) retried on the webhook timetable and logged,
//! the allow-list; write events arriving on the ingest queue, a refused
//! message moved to the dead-letter queue with its error, a redelivery
//! taken as a duplicate.

use aws_lambda_events::event::sqs::SqsEvent;
use lifecycle_aws_storm::moto;
use lifecycle_aws_storm::stack::{Options, Stack};
use lifecycle_core::time::Clock;
use lifecycle_functions::ingest::{self, DeadLetters};
use serde_json::{json, Value};
use std::time::Duration;

fn iso(t: lifecycle_core::time::Time) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn contract(stack: &Stack, n: usize) -> Value {
    let now = stack.clock.now();
    json!({"id": format!("wr_{n}"), "type": "contract.create", "occurred_at": iso(now),
           "data": {"id": format!("k_{n}"), "customer_id": format!("c_{n}"),
                    "starting_at": iso(now - chrono::Duration::days(1)),
                    "ending_before": iso(now + chrono::Duration::days(30))}})
}

async fn stack() -> Stack {
    Stack::new(Options {
        environments: 1,
        retry_delays: Some("2s,2s".into()),
        ..Options::default()
    })
    .await
}

async fn queue(sqs: &aws_sdk_sqs::Client, fifo: bool) -> (String, String) {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let name = moto::unique("dest") + if fifo { ".fifo" } else { "" };
    let mut create = sqs.create_queue().queue_name(&name);
    if fifo {
        create = create.attributes(A::FifoQueue, "true");
    }
    let url = create
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let arn = (sqs.get_queue_attributes())
        .queue_url(&url)
        .attribute_names(A::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .and_then(|a| a.get(&A::QueueArn).cloned())
        .unwrap();
    (url, arn)
}

/// Every message the queue holds (received, not deleted: each once).
async fn messages(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<aws_sdk_sqs::types::Message> {
    let mut all = Vec::new();
    loop {
        let page = (sqs.receive_message())
            .queue_url(url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .visibility_timeout(600)
            .send()
            .await
            .unwrap();
        if page.messages().is_empty() {
            return all;
        }
        all.extend(page.messages().iter().cloned());
    }
}

/// Runs the stream and the timer queue until `done` holds or `max` passes.
async fn run_until(stack: &mut Stack, max: Duration, mut done: impl AsyncFnMut(&Stack) -> bool) {
    let until = std::time::Instant::now() + max;
    while std::time::Instant::now() < until {
        stack.drain().await;
        stack.pump(2).await;
        if done(stack).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn deliveries(stack: &Stack, endpoint: &Value) -> Vec<Value> {
    let query = format!(
        "/v1/deliveries?endpoint_id={}",
        endpoint["id"].as_str().unwrap()
    );
    let (status, page) = stack.api("GET", &query, None).await;
    assert_eq!(status, 200, "{page}");
    page["data"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eventbridge_endpoint_delivers_each_notification_once_to_a_rules_queue() {
    let mut stack = stack().await;
    let sdk = moto::sdk_config().await;
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let bus_name = moto::unique("billing");
    let bus = (events
        .create_event_bus()
        .name(&bus_name)
        .send()
        .await
        .unwrap())
    .event_bus_arn()
    .unwrap()
    .to_string();
    let (queue_url, queue_arn) = queue(&stack.sqs, false).await;
    (events.put_rule())
        .name("to-queue")
        .event_bus_name(&bus_name)
        .event_pattern(json!({"source": ["lifecycle.notifications"]}).to_string())
        .send()
        .await
        .unwrap();
    let target = aws_sdk_eventbridge::types::Target::builder()
        .id("q")
        .arn(&queue_arn)
        .build()
        .unwrap();
    (events.put_targets())
        .rule("to-queue")
        .event_bus_name(&bus_name)
        .targets(target)
        .send()
        .await
        .unwrap();

    let elsewhere = "arn:aws:events:us-east-1:999999999999:event-bus/theirs";
    let body = json!({"kind": "eventbridge", "event_bus_arn": elsewhere});
    let (status, refused) = stack.api("POST", "/v1/webhook-endpoints", Some(body)).await;
    assert_eq!(
        (status, refused["error"]["field"].as_str()),
        (422, Some("event_bus_arn")),
        "{refused}"
    );
    let body =
        json!({"kind": "eventbridge", "event_bus_arn": bus, "event_types": ["contract.create"]});
    let (status, endpoint) = stack.api("POST", "/v1/webhook-endpoints", Some(body)).await;
    assert_eq!(status, 201, "{endpoint}");
    assert_eq!(
        (
            endpoint["kind"].as_str(),
            endpoint["event_bus_arn"].as_str()
        ),
        (Some("eventbridge"), Some(bus.as_str()))
    );
    let (_, listed) = stack.api("GET", "/v1/webhook-endpoints", None).await;
    assert_eq!(
        listed["data"].as_array().unwrap().len(),
        1,
        "the refused one was not stored: {listed}"
    );

    let contracts = 12;
    let batch: Vec<Value> = (0..contracts).map(|n| contract(&stack, n)).collect();
    let (status, results) = stack
        .api("POST", "/v1/events", Some(json!({"events": batch})))
        .await;
    assert_eq!(status, 200, "{results}");
    run_until(&mut stack, Duration::from_secs(60), async |s: &Stack| {
        let delivered = deliveries(s, &endpoint).await;
        delivered.len() == contracts && delivered.iter().all(|d| d["status"] == "delivered")
    })
    .await;
    let delivered = deliveries(&stack, &endpoint).await;
    assert_eq!(delivered.len(), contracts, "{delivered:?}");
    let webhook_ids: std::collections::HashSet<String> = delivered
        .iter()
        .map(|d| {
            assert_eq!(d["status"], "delivered", "{d}");
            d["webhook_id"].as_str().unwrap().to_string()
        })
        .collect();

    let arrived = messages(&stack.sqs, &queue_url).await;
    assert_eq!(
        arrived.len(),
        contracts,
        "each notification once on the rule's queue"
    );
    let mut seen = std::collections::HashSet::new();
    for message in &arrived {
        let event: Value = serde_json::from_str(message.body().unwrap()).unwrap();
        assert_eq!(event["source"], "lifecycle.notifications");
        assert_eq!(event["detail-type"], "contract.create");
        assert_eq!(
            event["detail"]["type"], "contract.create",
            "the detail is the webhook body"
        );
        seen.insert(event["detail"]["id"].as_str().unwrap().to_string());
    }
    assert_eq!(seen, webhook_ids, "every entry carries its webhook id");
}

/// Creates the endpoint, then a contract whose `contract.create` it takes.
async fn endpoint_with_a_contract(stack: &Stack, body: Value) -> Value {
    let (status, endpoint) = stack.api("POST", "/v1/webhook-endpoints", Some(body)).await;
    assert_eq!(status, 201, "{endpoint}");
    let (status, results) = stack
        .api("POST", "/v1/events", Some(contract(stack, 1)))
        .await;
    assert_eq!(status, 200, "{results}");
    endpoint
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqs_endpoint_on_a_fifo_queue_dedupes_a_resend() {
    let mut stack = stack().await;
    let (queue_url, _) = queue(&stack.sqs, true).await;
    let body = json!({"kind": "sqs", "queue_url": queue_url, "event_types": ["contract.create"]});
    let endpoint = endpoint_with_a_contract(&stack, body).await;
    assert_eq!(endpoint["queue_url"].as_str(), Some(queue_url.as_str()));
    run_until(&mut stack, Duration::from_secs(60), async |s: &Stack| {
        deliveries(s, &endpoint)
            .await
            .iter()
            .any(|d| d["status"] == "delivered")
    })
    .await;
    let delivery = deliveries(&stack, &endpoint).await.remove(0);
    assert_eq!(delivery["status"], "delivered", "{delivery}");
    let id = delivery["id"].as_str().unwrap();
    let (status, resent) = stack
        .api("POST", &format!("/v1/deliveries/{id}/resend"), None)
        .await;
    assert_eq!(status, 202, "{resent}");
    run_until(&mut stack, Duration::from_secs(60), async |s: &Stack| {
        let (_, one) = s.api("GET", &format!("/v1/deliveries/{id}"), None).await;
        one["attempts"].as_array().map_or(0, Vec::len) >= 2
    })
    .await;
    let (_, one) = stack
        .api("GET", &format!("/v1/deliveries/{id}"), None)
        .await;
    assert_eq!(
        one["attempts"].as_array().unwrap().len(),
        2,
        "sent twice: {one}"
    );
    let arrived = messages(&stack.sqs, &queue_url).await;
    assert_eq!(arrived.len(), 1, "the FIFO queue kept one of the two sends");
    let attribute = arrived[0]
        .message_attributes()
        .and_then(|a| a.get("webhook_id"));
    assert_eq!(
        attribute.and_then(|a| a.string_value()),
        delivery["webhook_id"].as_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_put_events_is_retried_on_the_timetable_and_logged() {
    let mut stack = stack().await;
    let sdk = moto::sdk_config().await;
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let bus_name = moto::unique("later");
    let bus = format!(
        "arn:aws:events:us-east-1:{}:event-bus/{bus_name}",
        moto::ACCOUNT
    );
    let body =
        json!({"kind": "eventbridge", "event_bus_arn": bus, "event_types": ["contract.create"]});
    let endpoint = endpoint_with_a_contract(&stack, body).await;
    run_until(&mut stack, Duration::from_secs(60), async |s: &Stack| {
        deliveries(s, &endpoint)
            .await
            .iter()
            .any(|d| d["attempt_count"].as_u64() >= Some(1))
    })
    .await;
    let delivery = deliveries(&stack, &endpoint).await.remove(0);
    let id = delivery["id"].as_str().unwrap().to_string();
    let (_, one) = stack
        .api("GET", &format!("/v1/deliveries/{id}"), None)
        .await;
    assert_eq!(one["status"], "pending", "retried, not failed: {one}");
    let first = &one["attempts"][0];
    assert!(
        first["error"]
            .as_str()
            .unwrap_or_default()
            .contains("ResourceNotFoundException"),
        "the AWS error code is in the attempt log: {one}"
    );
    assert!(first["status_code"].is_null(), "{one}");
    // The bus appears; the next attempt on the timetable gets through.
    events
        .create_event_bus()
        .name(&bus_name)
        .send()
        .await
        .unwrap();
    run_until(&mut stack, Duration::from_secs(60), async |s: &Stack| {
        let (_, one) = s.api("GET", &format!("/v1/deliveries/{id}"), None).await;
        one["status"] == "delivered"
    })
    .await;
    let (_, one) = stack
        .api("GET", &format!("/v1/deliveries/{id}"), None)
        .await;
    assert_eq!(one["status"], "delivered", "{one}");
    let attempts = one["attempts"].as_array().unwrap();
    assert!(attempts.len() >= 2, "{one}");
    assert_eq!(attempts.last().unwrap()["status_code"], 200, "{one}");
}

/// What the SQS event source hands the function: the queue's messages.
async fn ingest_event(sqs: &aws_sdk_sqs::Client, url: &str) -> SqsEvent {
    let records: Vec<Value> = messages(sqs, url)
        .await
        .iter()
        .map(|m| {
            json!({"messageId": m.message_id(), "receiptHandle": m.receipt_handle(),
                   "body": m.body(), "attributes": {}, "messageAttributes": {},
                   "eventSource": "aws:sqs", "awsRegion": "us-east-1"})
        })
        .collect();
    serde_json::from_value(json!({"Records": records})).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ingest_queue_takes_events_as_the_api_does_and_dead_letters_a_refused_message() {
    let mut stack = stack().await;
    let (ingest_url, _) = queue(&stack.sqs, false).await;
    let (dead_url, _) = queue(&stack.sqs, false).await;
    let (notices_url, _) = queue(&stack.sqs, false).await;
    let dead_letters = DeadLetters {
        client: stack.sqs.clone(),
        url: dead_url.clone(),
    };
    let body = json!({"kind": "sqs", "queue_url": notices_url, "event_types": ["contract.create"]});
    let (status, endpoint) = stack.api("POST", "/v1/webhook-endpoints", Some(body)).await;
    assert_eq!(status, 201, "{endpoint}");
    let good = contract(&stack, 1);
    let batch = json!({"events": [contract(&stack, 2), contract(&stack, 3)]});
    let invalid = json!({"id": "wr_bad", "type": "contract.create", "occurred_at": "yesterday",
                         "data": {"id": "k_bad", "customer_id": "c_bad"}});
    for body in [
        good.to_string(),
        batch.to_string(),
        invalid.to_string(),
        "{not json".into(),
    ] {
        (stack.sqs.send_message())
            .queue_url(&ingest_url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    let event = ingest_event(&stack.sqs, &ingest_url).await;
    assert_eq!(event.records.len(), 4);
    let (outcome, response) = ingest::handle(&stack.rt, &dead_letters, event.clone()).await;
    assert_eq!(
        (outcome.ingested, outcome.refused, outcome.retried),
        (2, 2, 0)
    );
    assert!(
        response.batch_item_failures.is_empty(),
        "nothing for SQS to retry"
    );
    run_until(&mut stack, Duration::from_secs(60), async |s: &Stack| {
        let delivered = deliveries(s, &endpoint).await;
        delivered.len() == 3 && delivered.iter().all(|d| d["status"] == "delivered")
    })
    .await;
    let customers: std::collections::BTreeSet<String> = deliveries(&stack, &endpoint)
        .await
        .iter()
        .map(|d| d["customer_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        customers,
        ["c_1", "c_2", "c_3"].map(String::from).into(),
        "the refused message changed nothing"
    );
    assert_eq!(messages(&stack.sqs, &notices_url).await.len(), 3);

    let dead = messages(&stack.sqs, &dead_url).await;
    assert_eq!(dead.len(), 2);
    let errors: Vec<Value> = dead
        .iter()
        .map(|m| {
            let text = m
                .message_attributes()
                .and_then(|a| a.get("error"))
                .and_then(|a| a.string_value());
            serde_json::from_str(text.unwrap()).unwrap()
        })
        .collect();
    let invalid_error = errors.iter().find(|e| {
        e["error"]["field"]
            .as_str()
            .is_some_and(|f| f.contains("occurred_at"))
    });
    assert!(
        invalid_error.is_some(),
        "the API's own error, naming the field: {errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e["error"]["code"] == "malformed_request"),
        "{errors:?}"
    );
    let bodies: Vec<&str> = dead.iter().filter_map(|m| m.body()).collect();
    assert!(
        bodies.contains(&"{not json"),
        "the message itself is kept: {bodies:?}"
    );

    // The good messages again (a redelivery): duplicates, nothing new sent.
    let mut again = event;
    again.records.truncate(2);
    let (outcome, response) = ingest::handle(&stack.rt, &dead_letters, again).await;
    assert_eq!((outcome.ingested, outcome.refused), (2, 0));
    assert!(response.batch_item_failures.is_empty());
    run_until(&mut stack, Duration::from_secs(3), async |_: &Stack| false).await;
    assert_eq!(
        deliveries(&stack, &endpoint).await.len(),
        3,
        "a redelivery is a duplicate"
    );
    assert!(
        messages(&stack.sqs, &notices_url).await.is_empty(),
        "nothing more arrived"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_runtime_sends_to_an_sqs_queue_where_aws_is_configured() {
    use lifecycle_e2e::{Lifecycle, Options as Process};
    let sdk = moto::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (url, _) = queue(&sqs, false).await;
    let body = json!({"kind": "sqs", "queue_url": url, "event_types": ["contract.create"]});

    let without = Lifecycle::start(Process::default()).await;
    let (status, refused) = without.post("/v1/webhook-endpoints", &body).await;
    assert_eq!(
        (status, refused["error"]["field"].as_str()),
        (422, Some("kind")),
        "{refused}"
    );
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("AWS credentials"),
        "{refused}"
    );

    let env = [
        ("AWS_ENDPOINT_URL", moto::moto()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ];
    let app = Lifecycle::start(Process {
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Process::default()
    })
    .await;
    let (status, endpoint) = app.post("/v1/webhook-endpoints", &body).await;
    assert_eq!(status, 201, "{endpoint}");
    let now = chrono::Utc::now();
    app.events(&json!({"id": "wr_local", "type": "contract.create", "occurred_at": iso(now),
                       "data": {"id": "k_local", "customer_id": "c_local", "starting_at": iso(now)}}))
        .await;
    let until = std::time::Instant::now() + Duration::from_secs(30);
    let mut arrived = Vec::new();
    while arrived.is_empty() && std::time::Instant::now() < until {
        arrived = messages(&sqs, &url).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(arrived.len(), 1, "{}", app.log_tail());
    let delivered = app
        .deliveries(&format!("endpoint_id={}", endpoint["id"].as_str().unwrap()))
        .await;
    let attribute = arrived[0]
        .message_attributes()
        .and_then(|a| a.get("webhook_id"));
    assert_eq!(
        attribute.and_then(|a| a.string_value()),
        delivered[0]["webhook_id"].as_str()
    );
    let sent: Value = serde_json::from_str(arrived[0].body().unwrap()).unwrap();
    assert_eq!(
        (sent["type"].as_str(), sent["id"].as_str()),
        (
            Some("contract.create"),
            attribute.and_then(|a| a.string_value())
        ),
        "the body is the webhook's: {sent}"
    );
}

/// A batch does not hang on the send that opened it: that send's caller
/// goes away while it lingers, and the next send of its batch sends both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_sent_when_the_send_that_opened_it_is_dropped() {
    use lifecycle_core::endpoint_kind::EndpointKind;
    use lifecycle_core::event_type::EventType;
    use lifecycle_core::ports::{OutgoingWebhook, Sender};
    let sdk = moto::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (url, _) = queue(&sqs, false).await;
    let sender = lifecycle_aws_sender::AwsSender::new(&sdk);
    let webhook = |id: &str| OutgoingWebhook {
        kind: EndpointKind::Sqs,
        url: url.clone(),
        event_type: EventType::ContractCreate,
        webhook_id: id.into(),
        timestamp: 0,
        signature: String::new(),
        body: json!({"id": id}).to_string(),
    };
    let first = webhook("msg_first");
    let abandoned = tokio::time::timeout(Duration::from_millis(1), sender.send(&first)).await;
    assert!(abandoned.is_err(), "the first send was still lingering");
    let second = webhook("msg_second");
    let sent = tokio::time::timeout(Duration::from_secs(10), sender.send(&second))
        .await
        .expect("the second send did not wait on the dropped one");
    assert_eq!(sent.status, Some(200), "{sent:?}");
    let ids: std::collections::BTreeSet<String> = messages(&sqs, &url)
        .await
        .iter()
        .filter_map(|m| {
            m.message_attributes()?
                .get("webhook_id")?
                .string_value()
                .map(String::from)
        })
        .collect();
    assert!(ids.contains("msg_second"), "{ids:?}");
}
