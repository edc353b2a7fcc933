//! The aws-storm benchmark (`scripts/aws-storm`) and the harness the AWS
//! functions' end-to-end tests share with it: a deployment on moto driven as
//! AWS drives it (`stack`), every AWS call counted (`calls`), a verifying
//! webhook receiver (`receiver`), the month-boundary workload (`workload`), the month of materialisation
//! after it (`month`),
//! and the projection of what was measured to millions of contracts with
//! AWS's published quotas and prices (`facts`, `projection`, `tables`).

pub mod calls;
pub mod facts;
pub mod month;
#[path = "../../../aws/tests/common/mod.rs"]
pub mod moto;
pub mod projection;
pub mod receiver;
pub mod stack;
pub mod stream_filter;
pub mod tables;
pub mod workload;
