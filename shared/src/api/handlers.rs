//! One handler per route: read the request, call the service, shape the answer.

use super::extract::{page_of, JsonBody, Params};
use super::AppState;
use crate::error::ApiError;
use crate::event_type::EventType;
use crate::ports::DeliveryFilter;
use crate::schedule::{DeliveryStatus, ScheduleState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

type Answer = Result<(StatusCode, Json<Value>), ApiError>;

fn ok(value: Value) -> Answer {
    Ok((StatusCode::OK, Json(value)))
}

fn created(value: Value) -> Answer {
    Ok((StatusCode::CREATED, Json(value)))
}

fn listed(data: Vec<Value>, next_cursor: Option<String>) -> Answer {
    ok(json!({ "data": data, "next_cursor": next_cursor }))
}

fn to_json(value: impl serde::Serialize) -> Value {
    serde_json::to_value(value).expect("API values serialize")
}

pub async fn ingest(State(s): State<AppState>, JsonBody(body): JsonBody) -> Answer {
    let results = s.service.ingest(&body).await?;
    ok(json!({ "results": results }))
}

pub async fn create_notification(State(s): State<AppState>, JsonBody(body): JsonBody) -> Answer {
    created(to_json(s.service.create_notification(&body).await?))
}

pub async fn list_notifications(State(s): State<AppState>, params: Params) -> Answer {
    let all = s.service.list_notifications().await?;
    let (page, next) = page_of(all, |n| &n.id, &params)?;
    listed(page.into_iter().map(to_json).collect(), next)
}

pub async fn get_notification(State(s): State<AppState>, Path(id): Path<String>) -> Answer {
    ok(to_json(s.service.notification(&id).await?))
}

pub async fn update_notification(
    State(s): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Answer {
    ok(to_json(s.service.update_notification(&id, &body).await?))
}

pub async fn delete_notification(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    s.service.delete_notification(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn create_endpoint(State(s): State<AppState>, JsonBody(body): JsonBody) -> Answer {
    created(s.service.create_endpoint(&body).await?.view(true))
}

pub async fn list_endpoints(State(s): State<AppState>, params: Params) -> Answer {
    let all = s.service.list_endpoints().await?;
    let (page, next) = page_of(all, |e| &e.id, &params)?;
    listed(page.iter().map(|e| e.view(false)).collect(), next)
}

pub async fn get_endpoint(State(s): State<AppState>, Path(id): Path<String>) -> Answer {
    ok(s.service.endpoint(&id).await?.view(false))
}

pub async fn update_endpoint(
    State(s): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Answer {
    let before = s.service.endpoint(&id).await?;
    let after = s.service.update_endpoint(&id, &body).await?;
    let mut view = after.view(false);
    if !before.enabled && after.enabled {
        // Re-enabled: offer to re-send what failed while it was down.
        let since = before.failing_since.unwrap_or(before.updated_at);
        view["recovery"] = json!({
            "since": since,
            "how": format!("POST /v1/webhook-endpoints/{id}/recover {{\"since\": \"{}\"}}", crate::time::format_time(since)),
        });
    }
    ok(view)
}

pub async fn delete_endpoint(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    s.service.delete_endpoint(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn rotate_secret(State(s): State<AppState>, Path(id): Path<String>) -> Answer {
    ok(s.service.rotate_secret(&id).await?.view(true))
}

pub async fn send_test_event(State(s): State<AppState>, Path(id): Path<String>) -> Answer {
    let delivery = s.service.send_test_event(&id).await?;
    let (delivery, attempts) = s.service.delivery(&delivery.id).await?;
    Ok((StatusCode::ACCEPTED, Json(delivery.view(&attempts))))
}

pub async fn recover_endpoint(
    State(s): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Answer {
    let since = crate::fields::Fields::of(&body, "")?.time("since")?;
    let resent = s.service.recover_endpoint(&id, since).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "resent": resent }))))
}

pub async fn upcoming(
    State(s): State<AppState>,
    Path(customer_id): Path<String>,
    params: Params,
) -> Answer {
    let state = params
        .parsed("status", |t| {
            [
                ScheduleState::Pending,
                ScheduleState::Skipped,
                ScheduleState::Fired,
                ScheduleState::Cancelled,
            ]
            .into_iter()
            .find(|s| s.as_str() == t)
        })?
        .unwrap_or(ScheduleState::Pending);
    let until = params.time("until")?;
    let page = s
        .service
        .upcoming(
            &customer_id,
            state,
            until,
            params.text("cursor"),
            params.limit()?,
        )
        .await?;
    listed(
        page.data.iter().map(|s| s.upcoming_view()).collect(),
        page.next_cursor,
    )
}

pub async fn customer_alerts(State(s): State<AppState>, Path(customer_id): Path<String>) -> Answer {
    listed(s.service.customer_alerts(&customer_id).await?, None)
}

pub async fn list_deliveries(State(s): State<AppState>, params: Params) -> Answer {
    let filter = DeliveryFilter {
        customer_id: params.text("customer_id").map(str::to_string),
        event_type: params.parsed("event_type", EventType::parse)?,
        status: params.parsed("status", DeliveryStatus::parse)?,
        endpoint_id: params.text("endpoint_id").map(str::to_string),
        since: params.time("since")?,
        until: params.time("until")?,
    };
    let page = s
        .service
        .deliveries(&filter, params.text("cursor"), params.limit()?)
        .await?;
    listed(
        page.data.iter().map(|(d, a)| d.view(a)).collect(),
        page.next_cursor,
    )
}

pub async fn get_delivery(State(s): State<AppState>, Path(id): Path<String>) -> Answer {
    let (delivery, attempts) = s.service.delivery(&id).await?;
    ok(delivery.view(&attempts))
}

pub async fn resend(State(s): State<AppState>, Path(id): Path<String>) -> Answer {
    s.service.resend(&id).await?;
    let (delivery, attempts) = s.service.delivery(&id).await?;
    Ok((StatusCode::ACCEPTED, Json(delivery.view(&attempts))))
}

pub async fn stats(State(s): State<AppState>, params: Params) -> Answer {
    let until = params
        .time("until")?
        .unwrap_or_else(|| s.service.clock.now());
    let since = params
        .time("since")?
        .unwrap_or(until - chrono::Duration::hours(1));
    let minutes = s.service.stats(since, until).await?;
    let backlog = s.service.backlog().await?;
    ok(json!({
        "data": minutes.iter().map(|m| m.view()).collect::<Vec<_>>(),
        "backlog": backlog,
    }))
}

/// The Prometheus families, in the OpenMetrics text format Prometheus reads.
pub async fn metrics(State(s): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let gauges = s.service.gauges().await?;
    let text = s.service.metrics.exposition(&gauges).ok_or_else(|| {
        let mut error = ApiError::not_found("route", "/metrics");
        error.message = "this runtime publishes its metrics to CloudWatch".into();
        error
    })?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    ))
}
