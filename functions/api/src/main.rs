//! The `api` Lambda function: API Gateway HTTP API (payload v2) -> the
//! core's axum router. See functions/README.md.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .without_time()
        .init();
    let router = lifecycle_functions::api::router_from_env().await?;
    lambda_http::run(router).await
}
