//! The AWS Lambda functions' shared wiring and their handlers, thin over
//! `lifecycle-core` and the adapters of `lifecycle-aws`. The binaries
//! (`functions/api`, `functions/schedule`, `functions/deliver`,
//! `functions/ingest`) only parse
//! the trigger and call these plain async functions, so tests call them
//! without the Lambda runtime. See `functions/README.md`.

pub mod api;
pub mod deliver;
pub mod emf;
pub mod fanout;
pub mod ingest;
pub mod logging;
pub mod near;
pub mod schedule;
pub mod settings;
pub mod stream;
pub mod tick;
pub mod wiring;

pub use settings::Settings;
pub use wiring::Runtime;
