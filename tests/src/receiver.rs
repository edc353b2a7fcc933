//! A webhook receiver on loopback that records what arrives and answers
//! from a programmed list of statuses (200 once the list is used up).

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct Received {
    pub at: Instant,
    pub headers: HeaderMap,
    pub raw: String,
    pub body: Value,
    /// What the receiver answered.
    pub status: u16,
}

impl Received {
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }

    /// Verifies the Standard Webhooks signature with the endpoint's secret.
    pub fn verify(&self, secret: &str) -> bool {
        lifecycle_core::signing::verify(
            secret,
            &self.header("webhook-id"),
            &self.header("webhook-timestamp"),
            &self.header("webhook-signature"),
            self.raw.as_bytes(),
        )
        .is_ok()
    }
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    log: Arc<Mutex<Vec<Received>>>,
}

type Answers = Arc<Mutex<VecDeque<u16>>>;

impl Receiver {
    pub async fn start(answers: &[u16]) -> Self {
        Self::start_with(answers, |_| StatusCode::OK).await
    }

    /// `decide` answers each request once the programmed list is used up.
    pub async fn start_with(
        answers: &[u16],
        decide: impl Fn(&Value) -> StatusCode + Clone + Send + Sync + 'static,
    ) -> Self {
        let log: Arc<Mutex<Vec<Received>>> = Arc::default();
        let answers: Answers = Arc::new(Mutex::new(answers.iter().copied().collect()));
        let (record, queue) = (log.clone(), answers.clone());
        let decide = Arc::new(decide);
        let app = axum::Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, raw: String| {
                let (record, queue, decide) = (record.clone(), queue.clone(), decide.clone());
                async move {
                    let body: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
                    let status = match queue.lock().unwrap().pop_front() {
                        Some(code) => StatusCode::from_u16(code).unwrap(),
                        None => decide(&body),
                    };
                    let answered = status.as_u16();
                    record.lock().unwrap().push(Received {
                        at: Instant::now(),
                        headers,
                        raw,
                        body,
                        status: answered,
                    });
                    status
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { url, log }
    }

    pub fn received(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }

    /// Waits until `n` requests arrived (or the timeout passes) and returns them all.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        while self.log.lock().unwrap().len() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.received()
    }
}
