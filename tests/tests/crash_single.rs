//! SIGKILL in the middle of a burst of single-event requests, the kind
//! that share one commit: every write the process acknowledged before it
//! died is delivered after the restart, each contract's webhook under one
//! id, however many times it arrives. (A request cut off by the kill got no
//! answer, so it may or may not have been applied.)

use lifecycle_e2e::{now, Lifecycle, Options, Receiver};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CLIENTS: usize = 16;
/// Acknowledged writes before the kill, at least.
const BEFORE_KILL: usize = 400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_nine_during_single_event_requests_loses_no_acknowledged_write() {
    let mut app = Lifecycle::start(Options::default()).await;
    let receiver = Receiver::start().await;
    app.endpoint(&receiver.url(), &["contract.create"]).await;

    let acknowledged: Arc<Mutex<HashSet<String>>> = Arc::default();
    let next = Arc::new(AtomicUsize::new(0));
    let http = reqwest::Client::new();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (http, url, key) = (http.clone(), format!("{}/v1/events", app.base), app.key.clone());
            let (acknowledged, next) = (acknowledged.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    let event = json!({"id": format!("wr_{n}"), "type": "contract.create", "occurred_at": now(),
                                       "data": {"id": format!("k_{n}"), "customer_id": format!("c_{}", n % 7),
                                                "starting_at": "2027-06-01T00:00:00Z"}});
                    let sent = http
                        .post(&url)
                        .bearer_auth(&key)
                        .json(&event)
                        .timeout(Duration::from_secs(10))
                        .send()
                        .await;
                    match sent {
                        Ok(answer) if answer.status() == 200 => {
                            acknowledged.lock().unwrap().insert(format!("k_{n}"));
                        }
                        // The process is gone: this client stops.
                        _ => return,
                    }
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acknowledged.lock().unwrap().len() < BEFORE_KILL && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    app.kill9();
    for client in clients {
        client.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= BEFORE_KILL,
        "only {} writes were acknowledged before the kill",
        acknowledged.len()
    );
    app.restart().await;

    let contract_of = |body: &serde_json::Value| {
        body["data"]["contract_id"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let arrived = |receiver: &Receiver| -> HashSet<String> {
        receiver
            .requests()
            .iter()
            .map(|w| contract_of(&w.body))
            .collect()
    };
    while !acknowledged.is_subset(&arrived(&receiver)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let missing: Vec<_> = acknowledged
        .difference(&arrived(&receiver))
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged writes never delivered, e.g. {:?}\n{}",
        missing.len(),
        &missing[..missing.len().min(5)],
        app.log_tail()
    );
    let mut ids: HashMap<String, HashSet<String>> = HashMap::new();
    for webhook in receiver.requests() {
        ids.entry(contract_of(&webhook.body))
            .or_default()
            .insert(webhook.header("webhook-id"));
    }
    let split: Vec<_> = ids.iter().filter(|(_, ids)| ids.len() > 1).collect();
    assert!(
        split.is_empty(),
        "contracts delivered under more than one id: {split:?}"
    );
    println!(
        "{} writes acknowledged before the kill, {} contracts delivered, {} requests",
        acknowledged.len(),
        ids.len(),
        receiver.requests().len()
    );
}
