//! Request parsing that answers in the contract's error shape.

use crate::error::ApiError;
use crate::time::{parse_time, Time};
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde_json::Value;
use std::collections::HashMap;

/// A JSON object body: 413 over the size limit, 400 if it is not JSON or not
/// an object (every route with a body takes an object).
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::too_large()
                } else {
                    ApiError::malformed(rejection.body_text())
                }
            })?;
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::malformed(format!("the body is not valid JSON: {e}")))?;
        if !value.is_object() {
            return Err(ApiError::malformed("the body must be a JSON object"));
        }
        Ok(JsonBody(value))
    }
}

/// Query parameters, read with the contract's errors.
pub struct Params(pub HashMap<String, String>);

impl Params {
    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.0.get("limit") {
            None => Ok(50),
            Some(text) => text
                .parse()
                .ok()
                .filter(|n| (1..=500).contains(n))
                .ok_or_else(|| {
                    ApiError::invalid("limit", "`limit` must be a whole number from 1 to 500")
                }),
        }
    }

    pub fn text(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn time(&self, name: &str) -> Result<Option<Time>, ApiError> {
        self.text(name)
            .map(|text| {
                parse_time(text).ok_or_else(|| {
                    ApiError::invalid(name, format!("`{name}` must be an RFC 3339 time"))
                })
            })
            .transpose()
    }

    /// A parsed value, or 422 naming the parameter.
    pub fn parsed<T>(
        &self,
        name: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, ApiError> {
        self.text(name)
            .map(|text| {
                parse(text).ok_or_else(|| {
                    ApiError::invalid(name, format!("`{text}` is not a valid {name}"))
                })
            })
            .transpose()
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map(|q| Params(q.0))
            .map_err(|e| ApiError::malformed(e.body_text()))
    }
}

/// One page of an in-memory list, the cursor being the last id shown.
pub fn page_of<T>(
    items: Vec<T>,
    id: impl Fn(&T) -> &str,
    params: &Params,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let limit = params.limit()?;
    let start = match params.text("cursor") {
        None => 0,
        Some(cursor) => {
            items
                .iter()
                .position(|item| id(item) == cursor)
                .ok_or_else(|| {
                    ApiError::invalid("cursor", "`cursor` is not one this list gave out")
                })?
                + 1
        }
    };
    let mut rest: Vec<T> = items.into_iter().skip(start).collect();
    let next = (rest.len() > limit).then(|| id(&rest[limit - 1]).to_string());
    rest.truncate(limit);
    Ok((rest, next))
}
