//! The `schedule` Lambda function: the table's stream, the sweep, fan-outs.
//! See functions/README.md.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use lifecycle_functions::{deliver::deadline, schedule, Runtime};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lifecycle_functions::logging::init();
    let rt = &*Box::leak(Box::new(Runtime::from_env().await?));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = deadline(event.context.deadline);
        rt.invocation(schedule::dispatch(rt, event.payload, Some(deadline)))
            .await
            .map_err(Error::from)
    }))
    .await
}
