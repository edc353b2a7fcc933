//! The `api` function: the core's axum router (the same one the local
//! process serves: `/v1`, the page at `/`, `/v1/openapi.json`) over the
//! deferred-fan-out service. `lambda_http` turns API Gateway HTTP API (v2)
//! events into requests for it. Each request is one invocation: once it is
//! answered, the invocation ends (`Runtime::end_invocation`: the per-minute
//! figures flushed, the metrics written) before the response goes back.
//! `GET /metrics` answers 404 here: the metrics are in CloudWatch.

use crate::wiring::InvocationEnd;
use crate::Runtime;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

/// The router for a runtime and API key.
pub fn router(rt: &Runtime, api_key: &str) -> axum::Router {
    lifecycle_core::api::router(rt.api_service.clone(), api_key).layer(
        axum::middleware::from_fn_with_state(rt.invocation_end(), end_invocation),
    )
}

async fn end_invocation(
    State(end): State<InvocationEnd>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    end.run().await;
    response
}

/// The router of a cold start: settings from the environment, the API key
/// from `API_KEY` or the Secrets Manager secret, the system notifications
/// installed if missing (their stream records start empty fan-outs).
pub async fn router_from_env() -> Result<axum::Router, String> {
    let rt = Runtime::from_env().await?;
    let sdk = crate::wiring::sdk_config().await;
    let key = crate::wiring::api_key(&sdk).await?;
    rt.api_service
        .install()
        .await
        .map_err(|e| format!("installing the system notifications: {e:?}"))?;
    Ok(router(&rt, &key))
}
