//! The webhook receiver on loopback: verifies every Standard Webhooks
//! signature with the endpoint's secret and records what arrived, when (on
//! the stack's clock), under which webhook id.

use crate::stack::ShiftedClock;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use lifecycle_core::signing::verify;
use lifecycle_core::time::{parse_time, Clock, Time};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One webhook as it arrived.
#[derive(Clone, Debug)]
pub struct Arrival {
    pub webhook_id: String,
    pub body: Value,
    /// When it arrived, on the stack's clock.
    pub arrived: Time,
    /// The moment it is for (`scheduled_for`), if time-based.
    pub scheduled_for: Option<Time>,
}

#[derive(Clone, Default)]
pub struct Receiver {
    pub url: String,
    secret: Arc<Mutex<Option<String>>>,
    arrivals: Arc<Mutex<Vec<Arrival>>>,
    /// Requests whose signature did not verify.
    rejected: Arc<Mutex<usize>>,
}

impl Receiver {
    pub async fn start(clock: Arc<ShiftedClock>) -> Receiver {
        let mut receiver = Receiver::default();
        let state = receiver.clone();
        let app = axum::Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: String| {
                let (state, clock) = (state.clone(), clock.clone());
                async move { state.take(&headers, &body, clock.now()) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        receiver.url = format!("http://{}/hook", listener.local_addr().expect("an address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        receiver
    }

    /// The endpoint's secret, once the API has given it out.
    pub fn expect_secret(&self, secret: &str) {
        *self.secret.lock().unwrap() = Some(secret.to_string());
    }

    fn take(&self, headers: &HeaderMap, body: &str, arrived: Time) -> StatusCode {
        let header = |name: &str| {
            (headers.get(name))
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let secret = self.secret.lock().unwrap().clone().unwrap_or_default();
        let id = header("webhook-id");
        let signed = verify(
            &secret,
            &id,
            &header("webhook-timestamp"),
            &header("webhook-signature"),
            body.as_bytes(),
        );
        if signed.is_err() {
            *self.rejected.lock().unwrap() += 1;
            return StatusCode::UNAUTHORIZED;
        }
        let body: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        let scheduled_for = body["data"]["scheduled_for"].as_str().and_then(parse_time);
        self.arrivals.lock().unwrap().push(Arrival {
            webhook_id: id,
            body,
            arrived,
            scheduled_for,
        });
        StatusCode::NO_CONTENT
    }

    pub fn arrivals(&self) -> Vec<Arrival> {
        self.arrivals.lock().unwrap().clone()
    }

    pub fn rejected(&self) -> usize {
        *self.rejected.lock().unwrap()
    }

    /// Arrivals per webhook id.
    pub fn by_id(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for arrival in self.arrivals.lock().unwrap().iter() {
            *counts.entry(arrival.webhook_id.clone()).or_default() += 1;
        }
        counts
    }

    pub fn clear(&self) {
        self.arrivals.lock().unwrap().clear();
    }
}
