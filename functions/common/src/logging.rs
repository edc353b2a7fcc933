//! The functions' logs: one JSON object a line on standard output (Lambda
//! sends it to the function's log group), filtered by `RUST_LOG`, without a
//! time of its own (Lambda stamps each line). The core writes one
//! `delivery attempt` line per attempt with its webhook, delivery and
//! endpoint ids and its outcome, so a webhook can be followed through the
//! logs; the metrics (`emf`) are lines of the same output.

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// The binaries' logging: `RUST_LOG`, standard output.
pub fn init() {
    init_with(EnvFilter::from_default_env(), std::io::stdout);
}

/// The same format with another filter and writer (the aws-storm benchmark
/// counts the bytes).
pub fn init_with<W>(filter: EnvFilter, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_env_filter(filter)
        .without_time()
        .with_writer(writer)
        .init();
}
