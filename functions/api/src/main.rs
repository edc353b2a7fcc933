//! The `api` Lambda function: API Gateway HTTP API (payload v2) -> the
//! core's axum router. See functions/README.md.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lifecycle_functions::logging::init();
    let router = lifecycle_functions::api::router_from_env().await?;
    lambda_http::run(router).await
}
