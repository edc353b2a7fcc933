//! `lifecycle serve`: the whole product in one process, on SQLite, with the
//! embedded scheduler and webhook sender.

use clap::{Parser, Subcommand};
use lifecycle_core::api::ApiKeys;
use lifecycle_core::destination::{DestinationPolicy, Network};
use lifecycle_core::endpoint_kind::AwsAllowList;
use lifecycle_core::retry::{parse_short_duration, RetryPolicy};
use lifecycle_core::sealing::MainKey;
use lifecycle_core::sending::SenderByKind;
use lifecycle_core::service::{Config, SEND_TIMEOUT_SECS};
use lifecycle_core::time::SystemClock;
use lifecycle_local::runtime::Runtime;
use lifecycle_local::{data_folder, sender, sqlite};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

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
    /// `json` writes one JSON object a line (each delivery attempt with its
    /// webhook, delivery and endpoint ids and its outcome), for a log pipeline.
    #[arg(
        long,
        global = true,
        env = "LIFECYCLE_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
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
    /// API key for `Authorization: Bearer` (repeat it, or separate keys with
    /// commas in the variable, to accept several while one is rotated).
    /// Without it, the keys of `api_key` in the data folder, one per line
    /// (one is generated there on first start).
    #[arg(long = "api-key", env = "LIFECYCLE_API_KEY", value_delimiter = ',')]
    api_keys: Vec<String>,
    /// File holding the main key (64 hex digits) that seals endpoint signing
    /// secrets at rest. Without it (and without LIFECYCLE_SECRET_KEY), the
    /// key in `secret_key` in the data folder, generated on first start.
    #[arg(long, env = "LIFECYCLE_SECRET_KEY_FILE")]
    secret_key_file: Option<PathBuf>,
    /// The main key the secrets are sealed under now, when changing keys:
    /// they are sealed again under the new one on start.
    #[arg(long, env = "LIFECYCLE_PREVIOUS_SECRET_KEY_FILE")]
    previous_secret_key_file: Option<PathBuf>,
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
    /// AWS accounts, bus ARNs and queue URLs that `eventbridge` and `sqs`
    /// endpoints may name, where the AWS SDK's configuration chain gives a
    /// region and credentials (default `*`: any the credentials reach).
    #[arg(
        long = "aws-destination",
        env = "LIFECYCLE_AWS_DESTINATIONS",
        value_delimiter = ',',
        default_value = "*"
    )]
    aws_destinations: Vec<String>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        );
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
    let Command::Serve(args) = cli.command;
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
    let given_key = match (&args.secret_key_file, std::env::var("LIFECYCLE_SECRET_KEY")) {
        (Some(path), _) => Some(read_main_key(path)?),
        (None, Ok(text)) => {
            Some(MainKey::parse(&text).map_err(|e| format!("LIFECYCLE_SECRET_KEY: {e}"))?)
        }
        (None, Err(_)) => None,
    };
    let previous_key = match &args.previous_secret_key_file {
        Some(path) => Some(read_main_key(path)?),
        None => None,
    };
    // Every flag is read before the data folder is touched: a bad one writes nothing.
    data_folder::create(&args.data)?;
    let main_key = match given_key {
        Some(key) => key,
        None => data_folder::main_key(&args.data)?,
    };
    let store =
        sqlite::SqliteStore::open_sealed(&args.data.join("lifecycle.db"), main_key, previous_key)?;
    let api_keys = match args.api_keys.is_empty() {
        false => ApiKeys::new(&args.api_keys),
        true => data_folder::api_keys(&args.data)?,
    };
    // Without AWS credentials and a region, `eventbridge` and `sqs` endpoints are refused.
    let aws = lifecycle_aws_sender::AwsSender::from_environment().await;
    let sender = SenderByKind {
        webhook: Arc::new(sender::HttpSender::with(
            policy,
            Duration::from_secs(SEND_TIMEOUT_SECS as u64),
        )),
        aws: (aws.as_ref()).map(|c| Arc::new(lifecycle_aws_sender::AwsSender::new(c)) as _),
    };
    let runtime = Runtime::start(
        store,
        sender,
        Arc::new(SystemClock),
        Config {
            retry,
            allow_http: true,
            aws_destinations: aws.map(|_| AwsAllowList {
                entries: args.aws_destinations.clone(),
            }),
            disable_after,
            horizon,
            ..Config::default()
        },
    )
    .await?;
    runtime.run_timers();

    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let app = runtime.router(api_keys);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown())
        .await?;
    // What the last flush did not take: a stop loses none of the figures.
    runtime.service.flush_stats().await?;
    Ok(())
}

fn read_main_key(path: &Path) -> Result<MainKey, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    MainKey::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
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
