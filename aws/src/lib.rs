//! AWS adapters of the core's ports: `DynamoStore` (the `Store` port on one
//! DynamoDB table, the single-table design of `infra/README.md`, with the
//! due index and its ticks), `EventBridgeScheduler` (the `Scheduler` port:
//! one EventBridge Scheduler tick per minute that has timers) and the SQS
//! timer queue's messages (`queue`). All knowledge of DynamoDB keys, ticks
//! and queue messages lives in this crate.

pub mod dynamodb;
pub mod queue;
pub mod scheduler;

pub use dynamodb::{create_table, DynamoStore};
pub use queue::{TimerQueue, Work};
pub use scheduler::{EventBridgeScheduler, NearTimers, SchedulerConfig};
