//! What the traffic scenarios share (ingest-single, burst, paced): the
//! `lifecycle` binary on a fresh data folder with one endpoint for
//! `contract.create`, the write events sent to it (each one webhook, known
//! by its contract id), when each webhook arrived, and the figures about
//! the server process every scenario reports.

use super::fire_storm::{receiver, Arrivals};
use super::report::{progress, quantile, Report};
use super::server::{self, folder_bytes, Running};
use super::Result;
use chrono::{DateTime, Utc};
use lifecycle_core::time::format_time;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub const KEY: &str = "bench";

/// A running server with an endpoint on a loopback receiver.
pub struct Target {
    pub server: Running,
    pub data: PathBuf,
    dir: PathBuf,
    pub arrivals: Arrivals,
    pub client: reqwest::Client,
    pub events_url: String,
    /// The receiver's URL, for baselines that POST to it directly.
    pub receiver: String,
}

impl Drop for Target {
    /// Removes the data folder, unless `LIFECYCLE_BENCH_KEEP` is set (to
    /// look inside it: `sqlite3 <folder>/lifecycle.db`).
    fn drop(&mut self) {
        if std::env::var_os("LIFECYCLE_BENCH_KEEP").is_some() {
            eprintln!("kept {}", self.data.display());
            return;
        }
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

impl Target {
    pub async fn start() -> Result<Self> {
        let dir = super::tempfile_dir()?;
        let data = dir.join("data");
        let server = server::start(&server::binary()?, &data)?;
        let (receiver, arrivals) = receiver().await;
        let client = reqwest::Client::new();
        let base = format!("http://{}", server.address);
        let created = client
            .post(format!("{base}/v1/webhook-endpoints"))
            .bearer_auth(KEY)
            .json(&json!({"url": receiver, "event_types": ["contract.create"]}))
            .send()
            .await?;
        if !created.status().is_success() {
            return Err(format!("the endpoint was refused: {}", created.text().await?).into());
        }
        Ok(Target {
            server,
            data,
            dir,
            arrivals,
            client,
            events_url: format!("{base}/v1/events"),
            receiver,
        })
    }

    /// POSTs a body of write events; an error unless it is accepted.
    pub async fn post(&self, body: String) -> std::result::Result<(), String> {
        post_events(&self.client, &self.events_url, body).await
    }

    /// Waits until `count` webhooks have arrived (or 10 minutes), with a bar.
    pub async fn wait_for(&self, count: usize) {
        let bar = progress(count, "arriving");
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let arrived = self.arrivals.lock().unwrap().len();
            bar.set_position(arrived as u64);
            if arrived >= count || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bar.finish_and_clear();
    }

    /// When each contract's webhook first arrived (by contract index), and
    /// how many arrived again.
    pub fn arrivals_by_contract(&self, count: usize) -> (Vec<Option<DateTime<Utc>>>, usize) {
        let mut first = vec![None; count];
        let mut again = 0;
        for (at, body) in self.arrivals.lock().unwrap().iter() {
            let Some(i) = contract_index(body).filter(|i| *i < count) else {
                continue;
            };
            match first[i] {
                None => first[i] = Some(*at),
                Some(_) => again += 1,
            }
        }
        (first, again)
    }

    /// The process's figures once the run is over: CPU per 1,000 webhooks
    /// (since `cpu_before`), the data folder and its WAL at rest, peak RSS.
    pub async fn report_process(
        &self,
        report: &mut Report,
        webhooks: usize,
        cpu_before: f64,
        cpu_target: Option<&str>,
    ) {
        let cpu = self.server.cpu_seconds() - cpu_before;
        report.figure(
            "server CPU per 1,000 webhooks",
            cpu * 1000.0 / webhooks.max(1) as f64,
            "s",
            cpu_target,
        );
        // At rest: after the checkpointer's next turns.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (total, wal) = folder_bytes(&self.data);
        report.figure(
            "data folder",
            total as f64 / MIB,
            "MiB",
            Some("at most 200 MiB after 100,000"),
        );
        report.figure(
            "WAL at rest",
            wal as f64 / MIB,
            "MiB",
            Some("at most 64 MiB"),
        );
        report.figure(
            "server peak resident memory",
            self.server.peak_rss_kb() / 1024.0,
            "MiB",
            Some("at most 100 MiB"),
        );
    }
}

const MIB: f64 = 1024.0 * 1024.0;

/// POSTs a body of write events to `url` with the bench's key; an error
/// unless it is accepted.
pub async fn post_events(
    client: &reqwest::Client,
    url: &str,
    body: String,
) -> std::result::Result<(), String> {
    let response = client
        .post(url)
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        let status = response.status();
        return Err(format!(
            "{status}: {}",
            response.text().await.unwrap_or_default()
        ));
    }
    Ok(())
}

/// The write event of contract `i`: one `contract.create` webhook. The
/// contract starts next month and runs a year, as one signed today would:
/// its start and end are beyond the horizon, deferred, not webhooks yet.
pub fn event(i: usize) -> Value {
    let now = Utc::now();
    let start = now + chrono::Duration::days(30);
    let end = start + chrono::Duration::days(365);
    json!({"id": format!("wr_{i}"), "type": "contract.create", "occurred_at": format_time(now),
           "data": {"id": format!("k_{i}"), "customer_id": format!("c_{}", i % 1000),
                    "starting_at": format_time(start), "ending_before": format_time(end)}})
}

fn contract_index(body: &str) -> Option<usize> {
    let webhook: Value = serde_json::from_str(body).ok()?;
    webhook["data"]["contract_id"]
        .as_str()?
        .strip_prefix("k_")?
        .parse()
        .ok()
}

/// Milliseconds from each contract's start (request sent or answered) to
/// its webhook's arrival, sorted; None if any is missing.
pub fn latencies(starts: &[Option<DateTime<Utc>>], arrived: &[Option<DateTime<Utc>>]) -> Vec<i64> {
    let mut lags: Vec<i64> = starts
        .iter()
        .zip(arrived)
        .filter_map(|(start, at)| Some(((*at)? - (*start)?).num_milliseconds()))
        .collect();
    lags.sort();
    lags
}

/// p50, p99 and max of sorted latencies into a report.
pub fn report_latencies(report: &mut Report, what: &str, lags: &[i64], p99_target: Option<&str>) {
    report.figure(
        &format!("{what} p50"),
        quantile(lags, 0.5) as f64,
        "ms",
        None,
    );
    report.figure(
        &format!("{what} p99"),
        quantile(lags, 0.99) as f64,
        "ms",
        p99_target,
    );
    report.figure(
        &format!("{what} max"),
        lags.last().copied().unwrap_or(0) as f64,
        "ms",
        None,
    );
}
