//! The harness of the service tests: the real SQLite store in a temporary
//! folder, a pinned clock, the real HTTP sender and programmable receivers
//! on loopback.
#![allow(dead_code)]

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::routing::post;
use lifecycle_core::planner::TimerChange;
use lifecycle_core::ports::{Scheduler, Store};
use lifecycle_core::schedule::{Schedule, ScheduleState};
use lifecycle_core::service::{Config, Service};
use lifecycle_core::time::{parse_time, Clock, FixedClock, Time};
use lifecycle_local::sender::HttpSender;
use lifecycle_local::sqlite::SqliteStore;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// Timers are driven by hand here; registering one is a no-op.
pub struct ManualTimers;

#[async_trait::async_trait]
impl Scheduler for ManualTimers {
    async fn apply(&self, _: &[TimerChange]) -> Result<(), String> {
        Ok(())
    }
}

/// One programmed answer: a status, a header or two, and how long to wait first.
#[derive(Clone, Default)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub delay_ms: u64,
    pub body: String,
}

impl From<u16> for Answer {
    fn from(status: u16) -> Self {
        Answer {
            status,
            ..Answer::default()
        }
    }
}

#[derive(Clone, Default)]
pub struct Received {
    pub requests: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    /// When each request arrived, by the system clock.
    pub times: Arc<Mutex<Vec<chrono::DateTime<chrono::Utc>>>>,
    answers: Arc<Mutex<VecDeque<Answer>>>,
}

impl Received {
    /// Arrival times with parsed bodies.
    pub fn arrivals(&self) -> Vec<(chrono::DateTime<chrono::Utc>, Value)> {
        self.times
            .lock()
            .unwrap()
            .iter()
            .cloned()
            .zip(self.bodies())
            .collect()
    }

    pub fn bodies(&self) -> Vec<Value> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| serde_json::from_str(b).unwrap())
            .collect()
    }
}

/// A receiver answering 200 unless told otherwise.
pub async fn receiver(answers: &[u16]) -> (String, Received) {
    receiver_with(answers.iter().map(|s| Answer::from(*s)).collect()).await
}

pub async fn receiver_with(answers: Vec<Answer>) -> (String, Received) {
    let received = Received::default();
    received.answers.lock().unwrap().extend(answers);
    let state = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: String| {
            let state = state.clone();
            async move {
                state.times.lock().unwrap().push(chrono::Utc::now());
                state.requests.lock().unwrap().push((headers, body));
                let answer = state
                    .answers
                    .lock()
                    .unwrap()
                    .pop_front()
                    .unwrap_or(Answer::from(200));
                tokio::time::sleep(std::time::Duration::from_millis(answer.delay_ms)).await;
                let mut headers = HeaderMap::new();
                for (name, value) in answer.headers {
                    headers.insert(
                        HeaderName::from_static(name),
                        HeaderValue::from_str(&value).unwrap(),
                    );
                }
                (
                    StatusCode::from_u16(answer.status).unwrap(),
                    headers,
                    answer.body,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

pub struct Harness {
    pub service: Service,
    pub store: Arc<SqliteStore>,
    pub clock: Arc<FixedClock>,
    _dir: tempfile::TempDir,
}

pub fn t(text: &str) -> Time {
    parse_time(text).unwrap()
}

pub async fn harness(now: &str) -> Harness {
    harness_with(now, Config::default(), HttpSender::new()).await
}

pub async fn harness_with(now: &str, config: Config, sender: HttpSender) -> Harness {
    let clock = Arc::new(FixedClock::new(t(now)));
    open_in(tempfile::tempdir().unwrap(), clock, config, sender).await
}

async fn open_in(
    dir: tempfile::TempDir,
    clock: Arc<FixedClock>,
    config: Config,
    sender: HttpSender,
) -> Harness {
    let store = Arc::new(SqliteStore::open(&dir.path().join("db")).unwrap());
    let timers = Arc::new(ManualTimers);
    let service = Service::new(
        store.clone(),
        timers,
        Arc::new(sender),
        clock.clone(),
        config,
    );
    service.install().await.unwrap();
    Harness {
        service,
        store,
        clock,
        _dir: dir,
    }
}

impl Harness {
    /// The process stops (its store closed, whatever it held in memory
    /// gone) and a new one starts on the same data folder, at the same time.
    pub async fn restart(self) -> Harness {
        let Harness {
            service,
            store,
            clock,
            _dir,
        } = self;
        let config = service.config.clone();
        drop(service);
        drop(store);
        open_in(_dir, clock, config, HttpSender::new()).await
    }

    /// Claims a due delivery for an attempt, under a 45 s lease, as a
    /// process about to send it would; the attempt is never recorded.
    pub async fn claim_for_an_attempt(&self, delivery_id: &str) {
        let now = self.clock.now();
        let claimed = self
            .store
            .claim_delivery(delivery_id, now, now + chrono::Duration::seconds(45))
            .await
            .unwrap();
        assert!(claimed.is_some(), "{delivery_id} is due and unclaimed");
    }

    pub async fn endpoint(&self, url: &str, types: &[&str]) -> String {
        let ep = self
            .service
            .create_endpoint(&json!({"url": url, "event_types": types}))
            .await
            .unwrap();
        ep.secrets[0].value.clone()
    }

    pub async fn contract(
        &self,
        event_id: &str,
        action: &str,
        id: &str,
        end: Option<&str>,
        occurred_at: &str,
    ) -> Value {
        let body = json!({"id": event_id, "type": format!("contract.{action}"), "occurred_at": occurred_at,
            "data": {"id": id, "customer_id": "c_1", "starting_at": "2026-01-01T00:00:00Z", "ending_before": end}});
        let results = self.service.ingest(&body).await.unwrap();
        json!(results[0].status)
    }

    /// Runs every timer due now, as the timer loop would.
    /// Runs what is due now, as the timer loop would: fire the due
    /// schedules, then attempt each endpoint's due deliveries.
    pub async fn run_due(&self) {
        let now = self.clock.now();
        let schedules = self.store.due_schedules(now, 1000).await.unwrap();
        self.service.fire_many(&schedules).await.unwrap();
        for endpoint in self.service.store.endpoints().await.unwrap() {
            for id in self
                .store
                .due_deliveries(endpoint.id, now, 1000)
                .await
                .unwrap()
            {
                self.service.attempt(&id).await.unwrap();
            }
        }
    }

    /// Every endpoint's deliveries due now, unclaimed.
    pub async fn due_deliveries(&self) -> Vec<String> {
        let mut due = Vec::new();
        for endpoint in self.service.store.endpoints().await.unwrap() {
            let now = self.clock.now();
            due.extend(
                self.store
                    .due_deliveries(endpoint.id, now, 1000)
                    .await
                    .unwrap(),
            );
        }
        due
    }

    pub async fn pending(&self) -> Vec<Schedule> {
        self.pending_of("c_1").await
    }

    /// A customer's pending schedules, every page of them.
    pub async fn pending_of(&self, customer: &str) -> Vec<Schedule> {
        let state = ScheduleState::Pending;
        let (mut all, mut cursor) = (Vec::new(), None::<String>);
        loop {
            let page = self
                .service
                .upcoming(customer, state, None, cursor.as_deref(), 500)
                .await
                .unwrap();
            all.extend(page.data);
            cursor = page.next_cursor;
            if cursor.is_none() {
                return all;
            }
        }
    }

    pub async fn of_notification(&self, customer: &str, notification_id: &str) -> Vec<Schedule> {
        self.pending_of(customer)
            .await
            .into_iter()
            .filter(|s| s.notification_id == notification_id)
            .collect()
    }
}
