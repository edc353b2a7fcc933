//! `lifecycle serve`: the whole product in one process, on SQLite, with the
//! embedded scheduler and webhook sender.

use clap::{Parser, Subcommand};
use lifecycle_core::destination::{DestinationPolicy, Network};
use lifecycle_core::retry::{parse_short_duration, RetryPolicy};
use lifecycle_core::service::{Config, Service, SEND_TIMEOUT_SECS};
use lifecycle_core::time::SystemClock;
use lifecycle_local::{sender, sqlite, timers};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

// glibc's malloc took about a fifth of an ingest's CPU (JSON values by the
// thousand per batch, freed on other threads); jemalloc ingests about 24 %
// faster. (mimalloc did as well there, but slowed fire storms by 15 %.)
#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "lifecycle",
    version,
    about = "Lifecycle notifications for usage-based billing"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API and the page, run the scheduler, deliver webhooks.
    Serve(ServeArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "LIFECYCLE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Folder for the database and the generated API key.
    #[arg(long, env = "LIFECYCLE_DATA", default_value = "./data")]
    data: PathBuf,
    /// API key for `Authorization: Bearer`; generated and stored in the data folder if not given.
    #[arg(long, env = "LIFECYCLE_API_KEY")]
    api_key: Option<String>,
    /// Retry delays replacing the default timetable, e.g. `1s,1s,5s` (for tests).
    #[arg(long, env = "LIFECYCLE_RETRY_DELAYS")]
    retry_delays: Option<String>,
    /// Disable an endpoint whose every attempt failed for this long (`5d`, `120h`, `30s`).
    #[arg(long, env = "LIFECYCLE_DISABLE_ENDPOINT_AFTER", default_value = "5d")]
    disable_endpoint_after: String,
    /// Refuse webhook destinations on internal addresses (loopback, private,
    /// link-local), as the AWS runtime does; the local default allows them.
    #[arg(long, env = "LIFECYCLE_BLOCK_INTERNAL_DESTINATIONS")]
    block_internal_destinations: bool,
    /// Moments firing later than this are kept as their entity's, not as
    /// schedule rows, and become schedules as they come within it (`off`
    /// keeps a row for every moment).
    #[arg(long, env = "LIFECYCLE_HORIZON", default_value = lifecycle_local::DEFAULT_HORIZON)]
    horizon: String,
    /// Internal networks allowed all the same (CIDR, repeatable).
    #[arg(long = "allow-destination", value_name = "CIDR")]
    allow_destinations: Vec<String>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let Command::Serve(args) = Cli::parse().command;
    serve(args).await
}

async fn serve(args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let retry = match &args.retry_delays {
        Some(list) => RetryPolicy::from_list(list).map_err(|e| format!("--retry-delays: {e}"))?,
        None => RetryPolicy::default(),
    };
    let disable_after = parse_short_duration(&args.disable_endpoint_after)
        .ok_or("--disable-endpoint-after takes a duration such as 5d, 120h or 30s")?;
    let horizon = lifecycle_local::parse_horizon(&args.horizon)?;
    let policy = DestinationPolicy {
        block_internal: args.block_internal_destinations,
        allow: args
            .allow_destinations
            .iter()
            .map(|n| Network::parse(n))
            .collect::<Result<_, _>>()?,
    };
    // Every flag is read before the data folder is touched: a bad one writes nothing.
    std::fs::create_dir_all(&args.data)?;
    let api_key = match args.api_key {
        Some(key) => key,
        None => stored_api_key(&args.data)?,
    };
    let store = sqlite::SqliteStore::open(&args.data.join("lifecycle.db"))?;
    let wake = Arc::new(Notify::new());
    let service = Arc::new(Service::new(
        Arc::new(store.clone()),
        Arc::new(timers::LocalScheduler::new(wake.clone())),
        Arc::new(sender::HttpSender::with(
            policy,
            Duration::from_secs(SEND_TIMEOUT_SECS as u64),
        )),
        Arc::new(SystemClock),
        Config {
            retry,
            allow_http: true,
            disable_after,
            horizon,
            ..Config::default()
        },
    ));
    service.install().await?;
    tokio::spawn(timers::run(service.clone(), store, wake));

    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let app = lifecycle_core::api::router(service, &api_key);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown())
        .await?;
    Ok(())
}

/// The API key kept in the data folder, made on first start.
fn stored_api_key(data: &Path) -> std::io::Result<String> {
    let path = data.join("api_key");
    if let Ok(key) = std::fs::read_to_string(&path) {
        return Ok(key.trim().to_string());
    }
    let key = lifecycle_core::ids::random_id("lk");
    std::fs::write(&path, &key)?;
    println!("generated API key {key} (stored in {})", path.display());
    Ok(key)
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler installs");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
