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
    api_keys: Arc<ApiKeys>,
}

/// The API keys that authorize `/v1`, several at once so that a key can be
/// rotated: add the new one, move the integrations, remove the old. Only
/// their SHA-256 digests are kept, and a key given is compared with every
/// one in constant time: neither its length nor how much of it matched
/// shows in the time taken.
#[derive(Clone, Debug, Default)]
pub struct ApiKeys(Vec<[u8; 32]>);

impl ApiKeys {
    pub fn new<K: AsRef<str>>(keys: impl IntoIterator<Item = K>) -> Self {
        ApiKeys(
            keys.into_iter()
                .map(|k| k.as_ref().trim().to_string())
                .filter(|k| !k.is_empty())
                .map(|k| digest(&k))
                .collect(),
        )
    }

    /// One key per line; blank lines and lines starting with `#` are not keys.
    pub fn from_text(text: &str) -> Self {
        ApiKeys::new(text.lines().filter(|l| !l.trim_start().starts_with('#')))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn accepts(&self, given: &str) -> bool {
        use subtle::ConstantTimeEq;
        let given = digest(given.trim());
        let matched =
            (self.0.iter()).fold(subtle::Choice::from(0), |any, key| any | key.ct_eq(&given));
        bool::from(matched)
    }
}

/// The text of one or more keys, one per line (as the AWS secret holds them).
impl From<&str> for ApiKeys {
    fn from(text: &str) -> Self {
        ApiKeys::from_text(text)
    }
}

fn digest(key: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(key.as_bytes()).into()
}

pub fn router(service: Arc<Service>, api_keys: impl Into<ApiKeys>) -> Router {
    let state = AppState {
        service,
        api_keys: Arc::new(api_keys.into()),
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
        .route("/stats", get(handlers::stats))
        .fallback(|| async { ApiError::new_not_found_route() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(middleware::from_fn_with_state(state.clone(), authorize));
    let metrics = Router::new()
        .route("/metrics", get(handlers::metrics))
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
        .merge(metrics)
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
    if given.trim().is_empty() || !state.api_keys.accepts(given) {
        return ApiError::unauthorized().into_response();
    }
    next.run(request).await
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

#[cfg(test)]
mod key_tests {
    use super::ApiKeys;

    #[test]
    fn every_listed_key_is_accepted_and_nothing_else() {
        let keys = ApiKeys::from_text("# rotating\nlk_old\n\n  lk_new  \n");
        assert_eq!(keys.len(), 2);
        assert!(keys.accepts("lk_old") && keys.accepts("lk_new"));
        assert!(!keys.accepts("lk_ol") && !keys.accepts("lk_oldx") && !keys.accepts("# rotating"));
        assert!(!ApiKeys::default().accepts(""));
    }
}
