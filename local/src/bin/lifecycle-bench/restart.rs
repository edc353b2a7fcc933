//! The restart scenario: the `lifecycle` binary started on a database of
//! pending schedules. Time to serving, time to the first due delivery (a
//! moment that fell due while it was down) and resident memory, against the
//! same start on an empty database.

use super::plan::{self, CONTRACTS_PER_BATCH, SCHEDULES_PER_CONTRACT};
use super::{report::Report, Result};
use lifecycle_core::time::format_time;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub async fn run(schedules: usize) -> Result<Report> {
    let binary = std::env::current_exe()?.with_file_name("lifecycle");
    if !binary.exists() {
        return Err(format!(
            "{} is missing: cargo build --release --bin lifecycle",
            binary.display()
        )
        .into());
    }
    let dir = super::tempfile_dir()?;
    let (url, arrivals) = super::fire_storm::receiver().await;
    let contracts = schedules.div_ceil(SCHEDULES_PER_CONTRACT);
    populate(&dir.join("full"), contracts, &url).await?;

    let empty = start(&binary, &dir.join("empty"))?;
    let baseline_serving = empty.serving_ms;
    let baseline_rss = peak_rss_kb(&empty, Duration::from_millis(500)).await;
    drop(empty);

    let started_at = chrono::Utc::now();
    let full = start(&binary, &dir.join("full"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while arrivals.lock().unwrap().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let first = arrivals
        .lock()
        .unwrap()
        .first()
        .map(|(at, _)| (*at - started_at).num_milliseconds() as f64)
        .ok_or("the due moment was not delivered within 60 s")?;
    let rss = peak_rss_kb(&full, Duration::from_secs(2)).await;
    let serving = full.serving_ms;
    drop(full);
    std::fs::remove_dir_all(&dir).ok();

    let mut report = Report::new(
        "restart",
        json!({"pending_schedules": contracts * SCHEDULES_PER_CONTRACT + 1, "contracts": contracts}),
    );
    report.compared(
        "start to serving",
        serving,
        "ms",
        "start to serving, empty database (ms)",
        baseline_serving,
        Some("under 1,000 ms"),
    );
    report.figure("start to first due delivery", first, "ms", None);
    report.compared(
        "resident memory (peak)",
        rss / 1024.0,
        "MiB",
        "empty database (MiB)",
        baseline_rss / 1024.0,
        Some("under 200 MiB"),
    );
    Ok(report)
}

/// Pending schedules for `contracts` contracts, and one moment that fell due
/// 5 s ago (within its catch-up) for an endpoint at `url`. Planned with no
/// horizon, so that every one is a row: the database the process starts on
/// is as large as pending schedules can make it.
async fn populate(data: &Path, contracts: usize, url: &str) -> Result<()> {
    std::fs::create_dir_all(data)?;
    let service = super::service_with_horizon(
        &data.join("lifecycle.db"),
        lifecycle_local::sender::HttpSender::new(),
        None,
    )
    .await?
    .service;
    plan::notifications(&service).await?;
    service
        .create_endpoint(&json!({"url": url, "event_types": ["contract.end"]}))
        .await?;
    let bar = super::report::progress(contracts, "populating");
    for first in (0..contracts).step_by(CONTRACTS_PER_BATCH) {
        let last = (first + CONTRACTS_PER_BATCH).min(contracts);
        service
            .ingest(&json!({ "events": plan::events(first..last) }))
            .await?;
        bar.set_position(last as u64);
    }
    bar.finish_and_clear();
    // Its -P30D moment is 5 s past: due the moment the process starts.
    let end = chrono::Utc::now() + chrono::Duration::days(30) - chrono::Duration::seconds(5);
    service
        .ingest(&json!({"id": "wr_due", "type": "contract.create", "occurred_at": format_time(chrono::Utc::now()),
                        "data": {"id": "k_due", "customer_id": "c_due", "starting_at": "2026-01-01T00:00:00Z",
                                 "ending_before": format_time(end)}}))
        .await?;
    Ok(())
}

struct Running {
    child: Child,
    serving_ms: f64,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Starts the binary and waits until it answers `/healthz`.
fn start(binary: &Path, data: &Path) -> Result<Running> {
    std::fs::create_dir_all(data)?;
    let started = Instant::now();
    let mut child = Command::new(binary)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--api-key",
            "bench",
            "--data",
        ])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut running = Running {
        child,
        serving_ms: 0.0,
    };
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let address = line
        .trim()
        .strip_prefix("listening on http://")
        .ok_or_else(|| format!("unexpected first line: {line:?}"))?
        .to_string();
    while std::net::TcpStream::connect(&address).is_err() {
        std::thread::sleep(Duration::from_millis(1));
    }
    healthz(&address)?;
    running.serving_ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(running)
}

/// One blocking `GET /healthz`, to be sure the router answers.
fn healthz(address: &str) -> Result<()> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address)?;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    if !answer.starts_with("HTTP/1.1 200") {
        return Err(format!("healthz answered {answer:?}").into());
    }
    Ok(())
}

/// The peak resident set of a running process (VmHWM), after `settle`.
async fn peak_rss_kb(running: &Running, settle: Duration) -> f64 {
    tokio::time::sleep(settle).await;
    let status = PathBuf::from(format!("/proc/{}/status", running.child.id()));
    std::fs::read_to_string(status)
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0.0)
}
