//! Writes retried after a failure in the middle, on moto: the DynamoDB
//! client carries an SDK interceptor that loses one answer or fails chosen
//! transactions (a dropped connection, a function stopped between two
//! transactions), and the write is sent again as the SDK or a client
//! would. What the retry answers and what the table then holds must be
//! what a single write gives.

mod common;

use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_types::body::SdkBody;
use lifecycle_aws::{DynamoStore, EventBridgeScheduler, NearTimers, SchedulerConfig};
use lifecycle_core::ports::{SignalChanges, Store, StoreError, WriteCommit};
use lifecycle_core::service::{Config, Service};
use lifecycle_core::time::{parse_time, FixedClock};
use lifecycle_local::sender::HttpSender;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// What the interceptor does to the `TransactWriteItems` calls while armed.
#[derive(Debug, Default)]
struct Faults {
    /// Replace the next answer with a 500, after DynamoDB committed it.
    lose_next_answer: AtomicBool,
    /// Fail the transactions that store write-event records (`t` = `EVT`)
    /// once this many of them went through.
    fail_event_records_after: AtomicUsize,
    fail_event_records: AtomicBool,
    /// Transactions sent, and answers lost.
    sent: AtomicUsize,
    lost: AtomicUsize,
}

#[derive(Debug, Clone, Default)]
struct Injector(Arc<Faults>);

fn is_transaction(cfg: &ConfigBag) -> bool {
    cfg.load::<Metadata>()
        .is_some_and(|m| m.name() == "TransactWriteItems")
}

impl Intercept for Injector {
    fn name(&self) -> &'static str {
        "Injector"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if !is_transaction(cfg) {
            return Ok(());
        }
        self.0.sent.fetch_add(1, Ordering::SeqCst);
        let body = context.request().body().bytes().unwrap_or_default();
        let records_events = String::from_utf8_lossy(body).contains(r#""t":{"S":"EVT"}"#);
        if records_events && self.0.fail_event_records.load(Ordering::SeqCst) {
            let to_pass = &self.0.fail_event_records_after;
            let passes =
                to_pass.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
            if passes.is_err() {
                return Err("the function stopped before the event records".into());
            }
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if is_transaction(cfg) && self.0.lose_next_answer.swap(false, Ordering::SeqCst) {
            self.0.lost.fetch_add(1, Ordering::SeqCst);
            let response = context.response_mut();
            *response.status_mut() = 500.try_into().expect("a status");
            *response.body_mut() = SdkBody::from(
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"the answer was lost"}"#,
            );
        }
        Ok(())
    }
}

struct NoNear;

#[async_trait::async_trait]
impl NearTimers for NoNear {
    async fn due(&self, _: &[lifecycle_aws::queue::Timer]) -> Result<(), String> {
        Ok(())
    }
}

struct Stack {
    service: Service,
    store: Arc<DynamoStore>,
    faults: Arc<Faults>,
    sdk: aws_config::SdkConfig,
    group: String,
}

async fn stack() -> Stack {
    let config = common::sdk_config().await;
    let injector = Injector::default();
    let faults = injector.0.clone();
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&config)
            .interceptor(injector)
            .build(),
    );
    let table = common::unique("lifecycle");
    lifecycle_aws::create_table(&client, &table).await.unwrap();
    let store = Arc::new(DynamoStore::new(client, table));
    let group = common::schedule_group(&aws_sdk_scheduler::Client::new(&config)).await;
    let service = service_over(&config, &group, store.clone());
    service.install().await.unwrap();
    Stack {
        service,
        store,
        faults,
        sdk: config,
        group,
    }
}

/// The core over a store, as a deployed function runs it.
fn service_over(sdk: &aws_config::SdkConfig, group: &str, store: Arc<DynamoStore>) -> Service {
    let clock = Arc::new(FixedClock::new(parse_time("2026-11-25T10:00:00Z").unwrap()));
    let scheduler = EventBridgeScheduler::new(
        aws_sdk_scheduler::Client::new(sdk),
        SchedulerConfig::new(
            group,
            &common::deliver_arn(),
            &common::role_arn(),
            &common::dlq_arn(),
        ),
        Arc::new(NoNear),
        clock.clone(),
    );
    let config = Config {
        fire_writes_at_ingest: false,
        ..Config::default()
    };
    Service::new(
        store,
        Arc::new(scheduler),
        Arc::new(HttpSender::new()),
        clock,
        config,
    )
}

fn usage(id: &str, customer: &str, quantity: u32) -> Value {
    json!({"id": id, "type": "usage.record", "occurred_at": "2026-11-25T09:00:00Z",
           "data": {"customer_id": customer, "metric": "calls", "quantity": quantity,
                    "timestamp": "2026-11-25T09:00:00Z"}})
}

/// The SDK sends a transaction whose answer was lost again with the same
/// ClientRequestToken (it makes one per call); DynamoDB then answers
/// success without writing again. Without the token honoured (stock moto)
/// the retry's conditions fail, and the ingest answers `duplicate` for
/// events it had just accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_whose_answer_was_lost_answers_as_the_first_time() {
    let stack = stack().await;
    let contract = json!({"id": "e_1", "type": "contract.create", "occurred_at": "2026-11-25T09:00:00Z",
        "data": {"id": "k_1", "customer_id": "c_1", "starting_at": "2026-11-01T00:00:00Z",
                 "ending_before": "2027-11-01T00:00:00Z"}});
    let batch = json!({"events": [contract, usage("u_1", "c_1", 4)]});
    stack.faults.lose_next_answer.store(true, Ordering::SeqCst);
    let sent = stack.faults.sent.load(Ordering::SeqCst);
    let results = stack.service.ingest(&batch).await.unwrap();
    assert_eq!(
        stack.faults.lost.load(Ordering::SeqCst),
        1,
        "an answer lost"
    );
    assert_eq!(
        stack.faults.sent.load(Ordering::SeqCst) - sent,
        2,
        "one transaction, sent twice by the SDK"
    );
    let statuses: Vec<&str> = results.iter().map(|r| r.status).collect();
    assert_eq!(statuses, ["accepted", "accepted"], "as if the answer came");
    let key = (
        "c_1".to_string(),
        "calls".to_string(),
        "2026-11".to_string(),
    );
    let state = stack
        .store
        .signal_state(&["c_1".into()], std::slice::from_ref(&key))
        .await
        .unwrap();
    assert_eq!(state.usage[&key], 4.0, "counted once");
    let again = stack.service.ingest(&batch).await.unwrap();
    assert!(again.iter().all(|r| r.status == "duplicate"), "{again:?}");
}

/// A batch too big for one transaction puts the usage totals before the
/// event records. Stopped after the first transaction of records (of two:
/// 100 and 50), it is sent again: those recorded are duplicates, the rest
/// accepted, and every customer's total counts its event once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_usage_batch_retried_after_a_failure_counts_each_event_once() {
    let stack = stack().await;
    let customers: Vec<String> = (0..150).map(|n| format!("c_{n:03}")).collect();
    let events: Vec<Value> = (customers.iter().enumerate())
        .map(|(n, c)| usage(&format!("u_{n:03}"), c, n as u32 + 1))
        .collect();
    let batch = json!({ "events": events });
    let faults = &stack.faults;
    faults.fail_event_records_after.store(1, Ordering::SeqCst);
    faults.fail_event_records.store(true, Ordering::SeqCst);
    let failed = stack.service.ingest(&batch).await;
    faults.fail_event_records.store(false, Ordering::SeqCst);
    assert!(failed.is_err(), "the first try stops: {failed:?}");

    let results = stack.service.ingest(&batch).await.unwrap();
    let duplicates = results.iter().filter(|r| r.status == "duplicate").count();
    let accepted = results.iter().filter(|r| r.status == "accepted").count();
    // The two transactions of records run side by side: either went first.
    assert!(
        matches!((duplicates, accepted), (100, 50) | (50, 100)),
        "{duplicates} duplicates, {accepted} accepted"
    );
    let keys: Vec<_> = (customers.iter())
        .map(|c| (c.clone(), "calls".to_string(), "2026-11".to_string()))
        .collect();
    let state = stack.store.signal_state(&customers, &keys).await.unwrap();
    for (n, key) in keys.iter().enumerate() {
        assert_eq!(state.usage[key], n as f64 + 1.0, "{key:?}");
    }

    // A later event adds to the total; the stored events are not carried.
    let later = json!({"events": [usage("u_new", "c_149", 1000)]});
    stack.service.ingest(&later).await.unwrap();
    let last = std::slice::from_ref(&keys[149]);
    let state = (stack.store)
        .signal_state(&customers[149..], last)
        .await
        .unwrap();
    assert_eq!(state.usage[&keys[149]], 1150.0);
    assert!(state.counted.is_empty(), "{:?}", state.counted);
}

/// Two writers of one customer's usage (two function invocations) read
/// the same total: the second to commit is refused as a conflict, and
/// read again it adds to the first one's total. Before totals carried a
/// version, the second overwrote the first and its increment was lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_usage_total_is_written_only_over_the_version_it_was_read_at() {
    let stack = stack().await;
    let key = (
        "c_1".to_string(),
        "calls".to_string(),
        "2026-11".to_string(),
    );
    let read = || async {
        (stack.store)
            .signal_state(&["c_1".into()], std::slice::from_ref(&key))
            .await
            .unwrap()
    };
    let commit = |event: &str, total: f64, versions: &HashMap<_, u64>| WriteCommit {
        events: vec![(event.to_string(), "accepted")],
        signals: SignalChanges {
            usage: vec![(key.clone(), total)],
            versions: versions.clone(),
            ..Default::default()
        },
        ..Default::default()
    };
    let first = read().await;
    assert!(first.versions.is_empty(), "no total yet");
    let store = &stack.store;
    store
        .commit_writes(&commit("u_a", 5.0, &first.versions))
        .await
        .unwrap();
    let stale = store
        .commit_writes(&commit("u_b", 3.0, &first.versions))
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    let again = read().await;
    assert_eq!((again.usage[&key], again.versions[&key]), (5.0, 1));
    store
        .commit_writes(&commit("u_b", 8.0, &again.versions))
        .await
        .unwrap();
    let last = read().await;
    assert_eq!((last.usage[&key], last.versions[&key]), (8.0, 2));
}

/// The same through the core: two services over the same table (two
/// function invocations) ingest one customer's usage side by side, and the
/// total counts every event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_of_one_customers_usage_lose_no_increment() {
    let stack = stack().await;
    let other = DynamoStore::new(
        stack.store.client().clone(),
        stack.store.table().to_string(),
    );
    let other = service_over(&stack.sdk, &stack.group, Arc::new(other));
    tokio::join!(ingest_usage(&stack.service, "a"), ingest_usage(&other, "b"));
    let key = (
        "c_1".to_string(),
        "calls".to_string(),
        "2026-11".to_string(),
    );
    let state = (stack.store)
        .signal_state(&["c_1".into()], std::slice::from_ref(&key))
        .await
        .unwrap();
    assert_eq!(state.usage[&key], 30.0, "every increment counted");
}

/// Fifteen usage events of one customer, one request each.
async fn ingest_usage(service: &Service, prefix: &str) {
    for n in 0..15 {
        service
            .ingest(&usage(&format!("{prefix}_{n}"), "c_1", 1))
            .await
            .unwrap();
    }
}
