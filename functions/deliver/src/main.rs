//! The `deliver` Lambda function: schedule inputs and the timer queue.
//! See functions/README.md.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use lifecycle_functions::deliver::{self, deadline};
use lifecycle_functions::Runtime;
use serde_json::Value;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lifecycle_functions::logging::init();
    let rt = Arc::new(Runtime::from_env().await?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let rt = rt.clone();
        async move {
            let deadline = Some(deadline(event.context.deadline));
            rt.clone()
                .invocation(deliver::dispatch(rt, event.payload, deadline))
                .await
                .map_err(Error::from)
        }
    }))
    .await
}
