//! The Notifications page: one HTML document, a stylesheet and its scripts
//! (the page, the Upcoming timeline, the Health charts), compiled into the
//! binary so that nothing is fetched from the internet.
//! The page signs in with the API key and calls the public `/v1` API.

use super::AppState;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

const INDEX: &str = include_str!("page/index.html");
const SCRIPT: &str = include_str!("page/app.js");
const TIMELINE: &str = include_str!("page/timeline.js");
const HEALTH: &str = include_str!("page/health.js");
const STYLE: &str = include_str!("page/app.css");

/// Everything the page loads comes from this origin.
const POLICY: &str = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| asset("text/html; charset=utf-8", INDEX)))
        .route(
            "/assets/app.js",
            get(|| asset("text/javascript; charset=utf-8", SCRIPT)),
        )
        .route(
            "/assets/timeline.js",
            get(|| asset("text/javascript; charset=utf-8", TIMELINE)),
        )
        .route(
            "/assets/health.js",
            get(|| asset("text/javascript; charset=utf-8", HEALTH)),
        )
        .route(
            "/assets/app.css",
            get(|| asset("text/css; charset=utf-8", STYLE)),
        )
}

async fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, POLICY),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}
