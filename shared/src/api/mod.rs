//! The HTTP API of the contract, one axum router served by the local
//! process and (through lambda_http) by the AWS api function.

mod extract;
mod handlers;
mod openapi;
mod page;

use crate::error::ApiError;
use crate::service::Service;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::sync::Arc;

/// Request bodies over this are refused with 413. A full batch of 500
/// commits with 12 segments each is about 650 KB.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub service: Arc<Service>,
    api_key: Arc<str>,
}

pub fn router(service: Arc<Service>, api_key: &str) -> Router {
    let state = AppState {
        service,
        api_key: api_key.into(),
    };
    let v1 = Router::new()
        .route("/events", post(handlers::ingest))
        .route(
            "/notifications",
            post(handlers::create_notification).get(handlers::list_notifications),
        )
        .route(
            "/notifications/{id}",
            get(handlers::get_notification)
                .patch(handlers::update_notification)
                .delete(handlers::delete_notification),
        )
        .route(
            "/webhook-endpoints",
            post(handlers::create_endpoint).get(handlers::list_endpoints),
        )
        .route(
            "/webhook-endpoints/{id}",
            get(handlers::get_endpoint)
                .patch(handlers::update_endpoint)
                .delete(handlers::delete_endpoint),
        )
        .route(
            "/webhook-endpoints/{id}/rotate-secret",
            post(handlers::rotate_secret),
        )
        .route(
            "/webhook-endpoints/{id}/test",
            post(handlers::send_test_event),
        )
        .route(
            "/webhook-endpoints/{id}/recover",
            post(handlers::recover_endpoint),
        )
        .route("/customers/{customer_id}/upcoming", get(handlers::upcoming))
        .route(
            "/customers/{customer_id}/alerts",
            get(handlers::customer_alerts),
        )
        .route("/deliveries", get(handlers::list_deliveries))
        .route("/deliveries/{id}", get(handlers::get_delivery))
        .route("/deliveries/{id}/resend", post(handlers::resend))
        .fallback(|| async { ApiError::new_not_found_route() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(middleware::from_fn_with_state(state.clone(), authorize));
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        // Public, so that tools and the page can read it before signing in.
        .route("/v1/openapi.json", get(openapi::spec))
        .merge(page::routes())
        .nest("/v1", v1)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Every `/v1` route needs `Authorization: Bearer <api key>`.
async fn authorize(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !constant_time_eq(given.trim().as_bytes(), state.api_key.as_bytes()) {
        return ApiError::unauthorized().into_response();
    }
    next.run(request).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl ApiError {
    fn new_not_found_route() -> Self {
        let mut error = ApiError::not_found("route", "");
        error.message = "no such route; see the API contract".into();
        error
    }

    fn method_not_allowed() -> Self {
        let mut error = ApiError::malformed("this route does not take that method");
        error.status = 405;
        error.code = "method_not_allowed";
        error
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        (status, Json(serde_json::json!({ "error": self }))).into_response()
    }
}
