//! The `deliver` Lambda function: schedule inputs and the timer queue.
//! See functions/README.md.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use lifecycle_functions::deliver::{self, deadline};
use lifecycle_functions::Runtime;
use serde_json::Value;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .without_time()
        .init();
    let rt = Arc::new(Runtime::from_env().await?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let rt = rt.clone();
        async move {
            let deadline = Some(deadline(event.context.deadline));
            deliver::dispatch(rt, event.payload, deadline)
                .await
                .map_err(Error::from)
        }
    }))
    .await
}
