//! AWS adapters of the core's ports: `DynamoStore` (the `Store` port on one
//! DynamoDB table, the single-table design of `infra/README.md`) and
//! `EventBridgeScheduler` (the `Scheduler` port on EventBridge Scheduler
//! one-time schedules).

pub mod dynamodb;
pub mod scheduler;

pub use dynamodb::{create_table, DynamoStore};
pub use scheduler::{EventBridgeScheduler, NearTimers, SchedulerConfig};
