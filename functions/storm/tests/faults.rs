//! A fault inside the deliver function, on moto through the harness of
//! `lifecycle_aws_storm::stack`: a panic in the task that fires a due
//! schedule (here raised by an SDK interceptor on the fire's own write, as
//! a bug anywhere in that task would). The task's messages must come back
//! from the timer queue rather than be deleted, and the webhook must then
//! arrive, once.

use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept};
use aws_sdk_dynamodb::operation::put_item::PutItemInput;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::SharedInterceptor;
use lifecycle_aws_storm::receiver::Receiver;
use lifecycle_aws_storm::stack::{Options, Stack};
use lifecycle_core::time::{format_time, Clock};
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// Once armed, panics on the next put of a schedule item (a fire taking
/// its schedule), once.
#[derive(Debug, Default)]
struct PanicOnFire {
    armed: AtomicBool,
    panicked: AtomicUsize,
}

#[derive(Debug, Clone, Default)]
struct Fault(Arc<PanicOnFire>);

impl Intercept for Fault {
    fn name(&self) -> &'static str {
        "PanicOnFire"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(put) = context.input().downcast_ref::<PutItemInput>() else {
            return Ok(());
        };
        let schedule = (put.item().and_then(|item| item.get("t")))
            .is_some_and(|t| *t == AttributeValue::S("SCH".into()));
        if schedule && self.0.armed.swap(false, Ordering::SeqCst) {
            self.0.panicked.fetch_add(1, Ordering::SeqCst);
            panic!("a bug while firing");
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_delivery_task_leaves_its_message_for_a_retry() {
    let fault = Fault::default();
    let mut stack = Stack::new(Options {
        environments: 1,
        dynamodb_fault: Some(SharedInterceptor::new(fault.clone())),
        ..Options::default()
    })
    .await;
    let receiver = Receiver::start(stack.clock.clone()).await;
    let body = json!({"url": receiver.url, "event_types": ["contract.create"]});
    let (status, endpoint) = stack.api("POST", "/v1/webhook-endpoints", Some(body)).await;
    assert_eq!(status, 201, "{endpoint}");
    receiver.expect_secret(endpoint["secret"].as_str().unwrap());
    let now = stack.clock.now();
    let create = json!({"id": "wr_1", "type": "contract.create", "occurred_at": format_time(now),
        "data": {"id": "k_1", "customer_id": "c_1", "starting_at": format_time(now),
                 "ending_before": format_time(now + chrono::Duration::days(30))}});
    let (status, results) = stack.api("POST", "/v1/events", Some(create)).await;
    assert_eq!(status, 200, "{results}");
    // The stream queues the webhook's timer; the deliver invocation that
    // runs it panics while firing.
    stack.drain().await;
    fault.0.armed.store(true, Ordering::SeqCst);
    // No sweep runs here: a deleted message would leave the schedule unfired.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut reported_failed = 0;
    while receiver.arrivals().is_empty() && std::time::Instant::now() < deadline {
        reported_failed += stack.pump(4).await.failed;
        stack.drain().await;
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    stack.settle(4, std::time::Duration::from_secs(5)).await;
    assert_eq!(
        fault.0.panicked.load(Ordering::SeqCst),
        1,
        "a fire panicked"
    );
    assert!(
        reported_failed >= 1,
        "the panicked task's message was deleted"
    );
    let arrivals = receiver.arrivals();
    assert_eq!(
        arrivals.len(),
        1,
        "delivered once, after the panic: {arrivals:?}"
    );
    let (_, log) = (stack.api("GET", "/v1/deliveries?event_type=contract.create", None)).await;
    assert_eq!(log["data"][0]["status"], "delivered", "{log}");
}
