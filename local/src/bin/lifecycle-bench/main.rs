//! Benchmarks of the local runtime, each figure printed beside a baseline
//! measured in the same run on the same machine, as a table and as JSON
//! (`--json PATH`, default `bench-results/<scenario>.json`).
//!
//! - `plan`: contracts with a commit of 12 monthly segments, planned for 5
//!   notifications through the core and the store, against raw inserts of
//!   the same number of schedule rows.
//! - `ingest-http`: the same through `POST /v1/events` over loopback, against
//!   a trivial route of the same server taking the same bodies.
//! - `fire-storm`: schedules due at the same second, delivered to one
//!   receiver, against raw POSTs of the same bodies.
//! - `restart`: the `lifecycle` binary started on a database of pending
//!   schedules: time to serving, to the first due delivery, and memory,
//!   against the same start on an empty database.
//! - `isolation`: delivery lag to a healthy endpoint while another times out,
//!   against the same run without the failing endpoint.
//! - `usage`: `usage.record` ingestion with thresholds, against raw inserts.
//! - `ingest-single`: the `lifecycle` binary taking one write event per
//!   request from 16 clients, each a webhook, against raw POSTs.
//! - `burst`: the same in batches, delivered while ingest runs, against the
//!   same run's fire storm.
//! - `paced`: one write event per request at 200 a second: latency to the
//!   webhook's arrival and CPU, against raw POSTs at the same pace.

use clap::{Parser, Subcommand};
use lifecycle_core::service::Config;
use lifecycle_core::time::SystemClock;
use lifecycle_local::runtime::Runtime;
use lifecycle_local::sender::HttpSender;
use lifecycle_local::sqlite::SqliteStore;
use std::path::{Path, PathBuf};
use std::sync::Arc;

// glibc's malloc took about a fifth of an ingest's CPU (JSON values by the
// thousand per batch, freed on other threads); jemalloc ingests about 24 %
// faster. (mimalloc did as well there, but slowed fire storms by 15 %.)
#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod burst;
mod fire_storm;
mod ingest_http;
mod ingest_single;
mod isolation;
mod paced;
mod plan;
mod report;
mod restart;
mod server;
mod traffic;
mod usage;

/// Events per `POST /v1/events` batch.
pub(crate) const BATCH: usize = 500;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
    /// Where to write the report as JSON.
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    /// Where the runtime's logs go, as `lifecycle serve --log-format json`
    /// writes them (a line per attempt): what they cost is measured too.
    #[arg(long, global = true, default_value = "bench-results/bench.log")]
    log: PathBuf,
}

#[derive(Subcommand)]
enum Scenario {
    /// Contracts planned through the core and the embedded store.
    Plan {
        #[arg(long, default_value_t = 1_000_000)]
        contracts: usize,
    },
    /// The same through POST /v1/events over loopback.
    IngestHttp {
        #[arg(long, default_value_t = 1_000_000)]
        contracts: usize,
        #[arg(long, default_value_t = 4)]
        clients: usize,
    },
    /// Many schedules due at the same second, to one receiver.
    FireStorm {
        #[arg(long, default_value_t = 100_000)]
        schedules: usize,
    },
    /// The process started on a database of pending schedules.
    Restart {
        #[arg(long, default_value_t = 1_000_000)]
        schedules: usize,
    },
    /// Lag to a healthy endpoint while another times out.
    Isolation {
        #[arg(long, default_value_t = 2_000)]
        notifications: usize,
    },
    /// usage.record ingestion with threshold evaluation.
    Usage {
        #[arg(long, default_value_t = 200_000)]
        events: usize,
        #[arg(long, default_value_t = 10_000)]
        customers: usize,
        #[arg(long, default_value_t = 10)]
        thresholds: usize,
    },
    /// One write event per request to the lifecycle binary, each a webhook.
    IngestSingle {
        #[arg(long, default_value_t = 100_000)]
        events: usize,
        #[arg(long, default_value_t = 16)]
        clients: usize,
    },
    /// Write events in batches, their webhooks delivered while ingest runs.
    Burst {
        #[arg(long, default_value_t = 100_000)]
        events: usize,
        #[arg(long, default_value_t = 4)]
        clients: usize,
    },
    /// One write event per request at a steady rate.
    Paced {
        #[arg(long, default_value_t = 10_000)]
        events: usize,
        #[arg(long, default_value_t = 200)]
        per_second: u32,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Some(folder) = cli.log.parent() {
        std::fs::create_dir_all(folder)?;
    }
    let log = std::fs::File::create(&cli.log)?;
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_writer(std::sync::Mutex::new(log))
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .init();
    let report = match cli.scenario {
        Scenario::Plan { contracts } => plan::run(contracts).await?,
        Scenario::IngestHttp { contracts, clients } => ingest_http::run(contracts, clients).await?,
        Scenario::FireStorm { schedules } => fire_storm::run(schedules).await?,
        Scenario::Restart { schedules } => restart::run(schedules).await?,
        Scenario::Isolation { notifications } => isolation::run(notifications).await?,
        Scenario::Usage {
            events,
            customers,
            thresholds,
        } => usage::run(events, customers, thresholds).await?,
        Scenario::IngestSingle { events, clients } => ingest_single::run(events, clients).await?,
        Scenario::Burst { events, clients } => burst::run(events, clients).await?,
        Scenario::Paced { events, per_second } => paced::run(events, per_second).await?,
    };
    report.print();
    let path = cli
        .json
        .unwrap_or_else(|| Path::new("bench-results").join(format!("{}.json", report.scenario)));
    report.write_json(&path)?;
    Ok(())
}

pub(crate) fn tempfile_dir() -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "lifecycle-bench-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The core over a fresh embedded store, with the system defaults installed,
/// and the notify that wakes its timer loop; moments beyond `lifecycle
/// serve`'s default horizon are deferred.
pub(crate) async fn service_with(path: &Path, sender: HttpSender) -> Result<Runtime> {
    let horizon = lifecycle_local::parse_horizon(lifecycle_local::DEFAULT_HORIZON)?;
    service_with_horizon(path, sender, horizon).await
}

/// As `service_with`, with this horizon (None: every moment is a schedule row).
pub(crate) async fn service_with_horizon(
    path: &Path,
    sender: HttpSender,
    horizon: Option<chrono::Duration>,
) -> Result<Runtime> {
    let config = Config {
        horizon,
        ..Config::default()
    };
    Ok(Runtime::start(
        SqliteStore::open(path)?,
        sender,
        Arc::new(SystemClock),
        config,
    )
    .await?)
}
