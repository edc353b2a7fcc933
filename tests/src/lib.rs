//! The end-to-end harness: the real `lifecycle` process on a free port with
//! a temporary data folder, real webhook receivers on loopback, and an
//! independent Standard Webhooks verifier. Nothing here links the product.

mod process;
mod receiver;
pub mod signature;

pub use process::{binary, Lifecycle, Options};
pub use receiver::{Received, Receiver};

use chrono::{DateTime, SecondsFormat, Utc};
use std::time::Duration;

/// How late a timed webhook may arrive after its moment: the process's timer
/// wake-up, the HTTP hop and a loaded 2-core machine running tests in parallel.
pub const SLACK_MS: i64 = 300;

/// RFC 3339 with milliseconds and `Z`, the form the product returns.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The current time truncated to whole milliseconds (what the API stores).
pub fn now_utc() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap()
}

/// `now + d`, formatted.
pub fn after(d: Duration) -> String {
    rfc3339(now_utc() + chrono::Duration::from_std(d).unwrap())
}

/// RFC 3339 for `ms` milliseconds from now (negative: in the past).
pub fn in_ms(ms: i64) -> String {
    rfc3339(now_utc() + chrono::Duration::milliseconds(ms))
}

pub fn now() -> String {
    in_ms(0)
}

/// Parses an RFC 3339 time from a JSON value, with a clear panic.
pub fn time_of(value: &serde_json::Value) -> DateTime<Utc> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("expected an RFC 3339 string, got {value}"));
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}"))
        .with_timezone(&Utc)
}

/// Milliseconds from `from` to `to` (negative when `to` is earlier).
pub fn ms_between(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    (to - from).num_milliseconds()
}
