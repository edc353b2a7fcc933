//! `aws-storm`: the month-boundary benchmark of the AWS runtime (issue 14).
//!
//! `aws-storm run [--contracts N] [--json PATH]` sets up a deployment on the
//! moto server (`scripts/aws-storm` starts it through the harness), ingests
//! the workload through the api handler, crosses the boundary by invoking
//! its tick as EventBridge Scheduler would, runs the timer queue and the
//! stream until nothing is left, and writes what it measured (every AWS call,
//! by operation and partition key) with its projection to 1,000,000 and
//! 10,000,000 contracts. `aws-storm render --json PATH --readme FILE`
//! rewrites the generated tables of `infra/README.md` from such a JSON;
//! `aws-storm reproject --json PATH` projects its measurement again with
//! the facts of this build (a price or the template changed, not the code).

use chrono::Duration;
use clap::{Parser, Subcommand};
use lifecycle_aws_storm::facts::Facts;
use lifecycle_aws_storm::projection::{self, Hottest, Measured, Projection};
use lifecycle_aws_storm::receiver::Receiver;
use lifecycle_aws_storm::stack::{Options, Stack};
use lifecycle_aws_storm::{tables, workload};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

#[derive(Parser)]
#[command(about = "The AWS runtime's month boundary, on moto, counted and projected")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the workload and writes the JSON.
    Run {
        #[arg(long, default_value_t = 2000)]
        contracts: usize,
        #[arg(long, default_value = "bench-results/aws-storm.json")]
        json: PathBuf,
        /// SQS batches run at once (simulated `deliver` invocations).
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Longest wait for the delayed wake-ups a boundary leaves (claims' leases).
        #[arg(long, default_value = "330")]
        settle_seconds: i64,
    },
    /// Projects a JSON of `run` again from its measurement, with the facts
    /// (quotas, prices, the template's alarms) as this build has them.
    Reproject {
        #[arg(long, default_value = "infra/aws-storm.json")]
        json: PathBuf,
    },
    /// One full `POST /v1/events` (500 events: 250 contracts and their
    /// commits) through the api handler: its AWS calls and write units,
    /// and the time they bound it to on a new table, against API
    /// Gateway's 29 s.
    Ingest {
        #[arg(long, default_value = "bench-results/aws-ingest.json")]
        json: PathBuf,
    },
    /// Rewrites the generated part of a README from a JSON of `run`.
    Render {
        #[arg(long, default_value = "infra/aws-storm.json")]
        json: PathBuf,
        #[arg(long, default_value = "infra/README.md")]
        readme: PathBuf,
    },
}

/// What `run` writes: the measurement, its projections and the facts used.
#[derive(Serialize, Deserialize)]
struct Report {
    measured_at: String,
    contracts: u64,
    moments_at_boundary: u64,
    delivered: u64,
    duplicates: u64,
    calls: std::collections::BTreeMap<String, u64>,
    calls_per_moment: std::collections::BTreeMap<String, f64>,
    scheduler_calls_per_moment: f64,
    hottest_partition: Hottest,
    /// Partition key classes of the boundary: (class, reads, writes), most written first.
    key_classes: Vec<(String, u64, u64)>,
    /// Write units of the boundary by what they wrote (`Tally::write_units_by_class`), most first.
    #[serde(default)]
    write_units_by_class: Vec<(String, f64)>,
    /// Seconds the boundary took on moto, and its p99 lag there (one
    /// process and an emulator: the projection, not this, says what AWS does).
    moto_boundary_s: f64,
    moto_p99_lag_s: f64,
    measured: Measured,
    projection: Vec<Projection>,
    facts: Facts,
}

/// Counts the bytes the handlers log (Lambda sends them to CloudWatch Logs).
#[derive(Clone, Default)]
struct LogBytes(Arc<AtomicU64>);

impl Write for LogBytes {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Contracts of the deployment that measures a month of materialisation
/// (`month.rs`): what it costs per contract does not depend on how many.
const MONTH_SAMPLE: usize = 500;

fn progress(started: Instant, text: &str) {
    eprintln!("[{:>7.1} s] {text}", started.elapsed().as_secs_f64());
}

#[tokio::main]
async fn main() -> Result<(), String> {
    match Cli::parse().command {
        Command::Run {
            contracts,
            json,
            concurrency,
            settle_seconds,
        } => run(contracts, &json, concurrency, settle_seconds).await,
        Command::Reproject { json } => reproject(&json),
        Command::Ingest { json } => ingest(&json).await,
        Command::Render { json, readme } => render(&json, &readme),
    }
}

/// `ingest`: the calls of one full request, and the arithmetic of its time.
async fn ingest(json: &Path) -> Result<(), String> {
    let mut stack = Stack::new(Options::default()).await;
    let receiver = Receiver::start(stack.clock.clone()).await;
    workload::prepare(&mut stack, &receiver.url, 0).await;
    let now = lifecycle_core::time::Clock::now(&*stack.clock);
    let events: Vec<serde_json::Value> = (0..workload::CONTRACTS_PER_REQUEST)
        .flat_map(|n| workload::events(n, now))
        .collect();
    let count = events.len();
    stack.counter.reset();
    let body = serde_json::json!({ "events": events });
    let bytes = body.to_string().len();
    let (status, answer) = stack.api("POST", "/v1/events", Some(body)).await;
    if status != 200 {
        return Err(format!("the batch was answered {status}: {answer}"));
    }
    let tally = stack.counter.tally();
    let facts = Facts::default();
    let dynamodb_calls = tally.calls_of("dynamodb");
    // Bounds, not estimates: every call one after another (the store runs
    // up to 16 transactions at once), and every write unit at a new
    // on-demand table's rate (a warmed table takes more).
    let calls_s = dynamodb_calls as f64 * facts.dynamodb_call_s.value;
    let throughput_s = tally.write_units / facts.ddb_new_table_writes.value;
    let report = serde_json::json!({
        "events": count,
        "calls": tally.calls,
        "dynamodb_calls": dynamodb_calls,
        "write_units": tally.write_units,
        "read_units": tally.read_units,
        "request_bytes": bytes,
        "arithmetic": {
            "calls_s": format!("dynamodb_calls × dynamodb_call_s = {dynamodb_calls} × {} = {calls_s:.2} s (all one after another)", facts.dynamodb_call_s.value),
            "throughput_s": format!("write_units / ddb_new_table_writes = {:.0} / {} = {throughput_s:.2} s (a new on-demand table)", tally.write_units, facts.ddb_new_table_writes.value),
            "bound_s": format!("{:.2} s of API Gateway's 29 s", calls_s + throughput_s),
        },
        "facts": [&facts.dynamodb_call_s, &facts.ddb_new_table_writes],
    });
    let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    if let Some(dir) = json.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    std::fs::write(json, &text).map_err(|e| e.to_string())?;
    println!("{text}");
    Ok(())
}

async fn run(
    contracts: usize,
    json: &Path,
    concurrency: usize,
    settle_seconds: i64,
) -> Result<(), String> {
    let logs = LogBytes::default();
    let writer = logs.clone();
    // The template's RUST_LOG: info, in the functions' own format (JSON).
    lifecycle_functions::logging::init_with(
        tracing_subscriber::EnvFilter::new("info"),
        move || writer.clone(),
    );
    let started = Instant::now();
    let mut stack = Stack::new(Options::default()).await;
    let receiver = Receiver::start(stack.clock.clone()).await;
    progress(started, &format!("ingesting {contracts} contracts on moto"));
    let prepared = workload::prepare(&mut stack, &receiver.url, contracts).await;
    receiver.expect_secret(&prepared.secret);
    let ingested = stack.counter.tally();
    let stored_bytes = ingested.added_bytes;
    stack
        .settle(concurrency, std::time::Duration::from_secs(5))
        .await;
    let moments = workload::due_at_boundary(&stack).await;
    let ticks = stack.schedule_names().await;
    let ingest_calls = stack.counter.tally().calls;
    progress(
        started,
        &format!(
            "{moments} moments due at the boundary, {} ticks alive; the ingest made {} AWS calls: {ingest_calls:?}",
            ticks.len(),
            ingest_calls.values().sum::<u64>()
        ),
    );
    let tick = lifecycle_aws::scheduler::tick_name(workload::boundary());
    if !ticks.contains(&tick) {
        return Err(format!("no tick {tick} was made for the boundary"));
    }

    // The boundary: EventBridge invokes the tick in the minute before.
    stack.counter.reset();
    receiver.clear();
    // The functions' log is their tracing lines and their metrics lines (EMF).
    let emf = stack.metrics.clone();
    let log_bytes = || logs.0.load(Ordering::Relaxed) + emf.bytes() as u64;
    let log_bytes_before = log_bytes();
    stack
        .clock
        .set(workload::boundary() - Duration::milliseconds(2500));
    let boundary_started = Instant::now();
    let mut invocations = 1;
    stack.invoke_schedule(&tick).await?;
    let quiet = (stack.settle(
        concurrency,
        std::time::Duration::from_secs(settle_seconds.max(0) as u64),
    ))
    .await;
    invocations += quiet;
    let boundary_s = boundary_started.elapsed().as_secs_f64();
    let tally = stack.counter.tally();
    let arrivals: Vec<_> = (receiver.arrivals().into_iter())
        .filter(|a| a.scheduled_for == Some(workload::boundary()))
        .collect();
    let distinct: std::collections::HashSet<&str> =
        arrivals.iter().map(|a| a.webhook_id.as_str()).collect();
    let mut lags: Vec<f64> = arrivals
        .iter()
        .map(|a| (a.arrived - workload::boundary()).num_milliseconds() as f64 / 1000.0)
        .collect();
    lags.sort_by(f64::total_cmp);
    let p99 = lags
        .get((lags.len() * 99 / 100).min(lags.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default();
    progress(
        started,
        &format!(
            "boundary: {} delivered ({} arrivals) in {boundary_s:.1} s, {} AWS calls; lag deciles {:?} s",
            distinct.len(),
            arrivals.len(),
            tally.calls.values().sum::<u64>(),
            (0..=10)
                .map(|d| lags.get((lags.len() * d / 10).min(lags.len().saturating_sub(1))))
                .map(|l| l.map(|l| l.round() as i64).unwrap_or_default())
                .collect::<Vec<_>>()
        ),
    );
    let sample = contracts.min(MONTH_SAMPLE);
    progress(
        started,
        &format!("a month of materialisation on a sample of {sample} contracts"),
    );
    let month = lifecycle_aws_storm::month::measure(&receiver.url, sample).await;
    progress(started, &format!("{month:?}"));
    let hottest = tally
        .hottest(contracts)
        .map_or_else(Hottest::default, |h| Hottest {
            key_class: h.key_class,
            writes: h.writes,
            reads: h.reads,
            share_of_reads: h.share_of_reads,
            share_of_writes: h.share_of_writes,
        });
    let per_year = prepared.moments_per_contract_year as f64;
    let measured = Measured {
        contracts: contracts as u64,
        moments_at_boundary: moments as u64,
        delivered: distinct.len() as u64,
        endpoints: 1,
        calls: tally.calls.clone(),
        write_units: tally.write_units,
        read_units: tally.read_units,
        hottest_partition: hottest.clone(),
        deliver_invocations: invocations as u64,
        distinct_fire_minutes: 1,
        fixed_writes_per_tick: tally.tick_writes(),
        schedules_alive_max: stack.schedules_alive_max as u64,
        moments_per_contract_per_month: per_year / 12.0,
        stored_bytes_per_contract: stored_bytes as f64 / contracts.max(1) as f64,
        stored_bytes_per_moment: tally.added_bytes as f64 / moments.max(1) as f64,
        log_bytes_per_moment: (log_bytes() - log_bytes_before) as f64 / moments.max(1) as f64,
        horizon_minutes: stack.rt.settings.horizon.num_minutes() as u64,
        ingest_write_units_per_contract: ingested.write_units / contracts.max(1) as f64,
        materialise_write_units_per_contract_month: month.write_units_per_contract,
        materialise_read_units_per_contract_month: month.read_units_per_contract,
    };
    let facts = Facts::default();
    let projections = projection::project_all(&measured, &facts);
    let per_moment = |n: u64| n as f64 / distinct.len().max(1) as f64;
    let report = Report {
        measured_at: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        contracts: contracts as u64,
        moments_at_boundary: moments as u64,
        delivered: distinct.len() as u64,
        duplicates: (arrivals.len() - distinct.len()) as u64,
        calls_per_moment: (tally.calls.iter())
            .map(|(name, n)| (name.clone(), per_moment(*n)))
            .collect(),
        scheduler_calls_per_moment: per_moment(tally.calls_of("scheduler")),
        key_classes: tally.by_class(20),
        write_units_by_class: {
            let mut classes: Vec<(String, f64)> =
                tally.write_units_by_class.clone().into_iter().collect();
            classes.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            classes
        },
        calls: tally.calls,
        hottest_partition: hottest,
        moto_boundary_s: boundary_s,
        moto_p99_lag_s: p99,
        measured,
        projection: projections,
        facts,
    };
    if let Some(dir) = json.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(json, text).map_err(|e| format!("{}: {e}", json.display()))?;
    println!(
        "{}",
        tables::markdown(&report.measured, &report.projection, &report.facts)
    );
    progress(started, &format!("wrote {}", json.display()));
    if report.delivered != report.moments_at_boundary || report.duplicates > 0 {
        return Err(format!(
            "{} of {} moments delivered, {} duplicates",
            report.delivered, report.moments_at_boundary, report.duplicates
        ));
    }
    Ok(())
}

const BEGIN: &str =
    "<!-- aws-storm:begin (generated by `scripts/aws-storm render --json infra/aws-storm.json`) -->";
const END: &str = "<!-- aws-storm:end -->";

fn reproject(json: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(json).map_err(|e| format!("{}: {e}", json.display()))?;
    let mut report: Report = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    report.facts = Facts::default();
    report.projection = projection::project_all(&report.measured, &report.facts);
    let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(json, text).map_err(|e| format!("{}: {e}", json.display()))
}

fn render(json: &Path, readme: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(json).map_err(|e| format!("{}: {e}", json.display()))?;
    let report: Report = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let generated = format!(
        "{BEGIN}\n\nMeasured {} with `scripts/aws-storm --contracts {}`: {} moments at the boundary, \
         {} delivered, {} duplicates; {:.4} EventBridge Scheduler calls per delivered moment.\n\n{}\n{END}",
        report.measured_at,
        report.contracts,
        report.moments_at_boundary,
        report.delivered,
        report.duplicates,
        report.scheduler_calls_per_moment,
        tables::markdown(&report.measured, &report.projection, &report.facts).trim_end()
    );
    let current =
        std::fs::read_to_string(readme).map_err(|e| format!("{}: {e}", readme.display()))?;
    let (Some(start), Some(end)) = (current.find("<!-- aws-storm:begin"), current.find(END)) else {
        return Err(format!("{} has no aws-storm markers", readme.display()));
    };
    let updated = format!(
        "{}{generated}{}",
        &current[..start],
        &current[end + END.len()..]
    );
    std::fs::write(readme, updated).map_err(|e| e.to_string())
}
