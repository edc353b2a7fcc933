//! The end-to-end harness: the real `lifecycle` process on a free port with
//! a temporary data folder, and real webhook receivers on loopback.

mod process;
mod receiver;

pub use process::Lifecycle;
pub use receiver::{Received, Receiver};

use chrono::{SecondsFormat, Utc};

/// RFC 3339 with milliseconds, `ms` from now.
pub fn in_ms(ms: i64) -> String {
    (Utc::now() + chrono::Duration::milliseconds(ms)).to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn now() -> String {
    in_ms(0)
}
