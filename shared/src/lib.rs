//! Lifecycle notifications for usage-based billing: the core shared by the
//! local runtime and the AWS runtime. The domain modules are pure; `ports`
//! names what a runtime provides; `service` runs the use cases over the
//! ports; `api` is the one HTTP router both runtimes serve.

pub mod api;
pub mod destination;
pub mod endpoint;
pub mod endpoint_kind;
pub mod entity;
pub mod error;
pub mod event_type;
pub mod fields;
pub mod horizon;
pub mod ids;
pub mod metrics;
pub mod notification;
pub mod offset;
pub mod payload;
pub mod planner;
pub mod ports;
pub mod retry;
pub mod schedule;
pub mod sealing;
pub mod sending;
pub mod service;
pub mod signal;
pub mod signing;
pub mod stats;
pub mod threshold;
pub mod time;
pub mod write_event;
