//! The ingest-http scenario: the plan scenario's write events through
//! `POST /v1/events` over loopback, in batches of 500 from several clients,
//! against the same server answering a trivial route with the same bodies.

use super::plan::{self, CONTRACTS_PER_BATCH};
use super::traffic::{post_events, KEY};
use super::{report::Report, Result, BATCH};
use axum::body::Bytes;
use axum::routing::post;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

pub async fn run(contracts: usize, clients: usize) -> Result<Report> {
    let dir = super::tempfile_dir()?;
    let runtime = super::service_with(
        &dir.join("lifecycle.db"),
        lifecycle_local::sender::HttpSender::new(),
    )
    .await?;
    plan::notifications(&runtime.service).await?;
    let app = runtime.router(KEY).route(
        "/bench/trivial",
        post(|body: Bytes| async move { axum::Json(json!({"received": body.len()})) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let (trivial_bytes, trivial_secs) = post_all(
        &format!("{base}/bench/trivial"),
        contracts,
        clients,
        "trivial route",
    )
    .await?;
    let (bytes, secs) = post_all(
        &format!("{base}/v1/events"),
        contracts,
        clients,
        "ingesting",
    )
    .await?;
    std::fs::remove_dir_all(&dir).ok();

    let mut report = Report::new(
        "ingest-http",
        json!({"contracts": contracts, "clients": clients, "batch_events": BATCH,
               "body_bytes": bytes}),
    );
    report.compared(
        "request bodies ingested",
        bytes as f64 / secs / 1e6,
        "MB/s",
        "trivial route MB/s",
        trivial_bytes as f64 / trivial_secs / 1e6,
        Some("ratio >= 0.50"),
    );
    report.figure(
        "contracts ingested",
        contracts as f64 / secs,
        "contracts/s",
        None,
    );
    report.figure(
        "schedules planned",
        (contracts * plan::SCHEDULES_PER_CONTRACT) as f64 / secs,
        "schedules/s",
        None,
    );
    Ok(report)
}

/// POSTs every batch to `url` from `clients` concurrent clients; the bytes
/// sent and the seconds it took.
async fn post_all(url: &str, contracts: usize, clients: usize, what: &str) -> Result<(usize, f64)> {
    let batches = contracts.div_ceil(CONTRACTS_PER_BATCH);
    let next = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(AtomicUsize::new(0));
    let bar = super::report::progress(contracts, what);
    let client = reqwest::Client::new();
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (client, url, next, sent, bar) = (
                client.clone(),
                url.to_string(),
                next.clone(),
                sent.clone(),
                bar.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let batch = next.fetch_add(1, Ordering::Relaxed);
                    if batch >= batches {
                        return Ok::<_, String>(());
                    }
                    let first = batch * CONTRACTS_PER_BATCH;
                    let last = (first + CONTRACTS_PER_BATCH).min(contracts);
                    let body = json!({ "events": plan::events(first..last) }).to_string();
                    sent.fetch_add(body.len(), Ordering::Relaxed);
                    post_events(&client, &url, body).await?;
                    bar.inc((last - first) as u64);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await??;
    }
    bar.finish_and_clear();
    Ok((
        sent.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
    ))
}
