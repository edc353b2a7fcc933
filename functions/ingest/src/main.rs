//! The `ingest` Lambda function: write events and usage signals from the
//! ingest queue (`functions/common/src/ingest.rs`). See functions/README.md.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use lifecycle_functions::ingest::{self, DeadLetters};
use lifecycle_functions::Runtime;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lifecycle_functions::logging::init();
    let rt = Arc::new(Runtime::from_env().await?);
    let url = std::env::var("INGEST_DLQ_URL").map_err(|_| "INGEST_DLQ_URL is not set")?;
    let dead_letters = Arc::new(DeadLetters {
        client: rt.sqs.clone(),
        url,
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let (rt, dead_letters) = (rt.clone(), dead_letters.clone());
        async move {
            let (_, response) = rt
                .invocation(ingest::handle(&rt, &dead_letters, event.payload))
                .await;
            Ok::<_, Error>(response)
        }
    }))
    .await
}
