//! A webhook receiver on loopback that records every request and answers
//! from a programmed queue of statuses (then `decide`, 200 by default).

use crate::signature;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct Received {
    /// Arrival, monotonic.
    pub at: Instant,
    /// Arrival, wall clock (compare with the API's times).
    pub wall: DateTime<Utc>,
    pub headers: HeaderMap,
    pub raw: String,
    /// The body parsed (`Null` if it is not JSON).
    pub body: Value,
    /// What the receiver answered.
    pub status: u16,
}

impl Received {
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    }

    /// Verifies the Standard Webhooks signature with the endpoint's secret.
    pub fn verify(&self, secret: &str) -> bool {
        signature::verify(
            secret,
            &self.header("webhook-id"),
            &self.header("webhook-timestamp"),
            &self.header("webhook-signature"),
            self.raw.as_bytes(),
        )
    }

    /// `type` and `data` for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "{} {} at {}",
            self.body["type"], self.body["data"], self.wall
        )
    }
}

type Decide = Arc<dyn Fn(&Value) -> StatusCode + Send + Sync>;

#[derive(Clone)]
pub struct Receiver {
    url: String,
    log: Arc<Mutex<Vec<Received>>>,
    queue: Arc<Mutex<VecDeque<u16>>>,
}

impl Receiver {
    /// Answers 200 to everything.
    pub async fn start() -> Self {
        Self::start_with(&[], |_| StatusCode::OK).await
    }

    /// Answers these statuses in order, then 200.
    pub async fn answering(statuses: &[u16]) -> Self {
        Self::start_with(statuses, |_| StatusCode::OK).await
    }

    /// `decide` answers each request once the programmed queue is used up.
    pub async fn start_with(
        statuses: &[u16],
        decide: impl Fn(&Value) -> StatusCode + Send + Sync + 'static,
    ) -> Self {
        let log: Arc<Mutex<Vec<Received>>> = Arc::default();
        let queue = Arc::new(Mutex::new(
            statuses.iter().copied().collect::<VecDeque<u16>>(),
        ));
        let decide: Decide = Arc::new(decide);
        let (record, answers) = (log.clone(), queue.clone());
        let app = axum::Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, raw: String| {
                let (record, answers, decide) = (record.clone(), answers.clone(), decide.clone());
                async move {
                    let (at, wall) = (Instant::now(), Utc::now());
                    let body: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
                    let queued = answers.lock().unwrap().pop_front();
                    let status = match queued {
                        Some(code) => StatusCode::from_u16(code).unwrap(),
                        None => decide(&body),
                    };
                    record.lock().unwrap().push(Received {
                        at,
                        wall,
                        headers,
                        raw,
                        body,
                        status: status.as_u16(),
                    });
                    status
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { url, log, queue }
    }

    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Queues more statuses to answer.
    pub fn push_statuses(&self, statuses: &[u16]) {
        self.queue.lock().unwrap().extend(statuses);
    }

    /// Everything received so far, in arrival order.
    pub fn requests(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }

    /// Waits until `n` requests arrived or the timeout passed; returns them all.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        while self.log.lock().unwrap().len() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.requests()
    }

    /// Waits for `n` requests and fails clearly if they do not come.
    pub async fn expect(&self, n: usize, timeout: Duration, what: &str) -> Vec<Received> {
        let got = self.wait_for(n, timeout).await;
        assert!(
            got.len() >= n,
            "{what}: expected {n} webhook(s) within {timeout:?}, got {}:\n{}",
            got.len(),
            got.iter()
                .map(Received::describe)
                .collect::<Vec<_>>()
                .join("\n")
        );
        got
    }
}
