//! Times are RFC 3339 on input (any offset) and UTC everywhere else.

use chrono::{DateTime, SecondsFormat, Utc};

pub type Time = DateTime<Utc>;

pub fn parse_time(text: &str) -> Option<Time> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

pub fn format_time(time: Time) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

pub fn from_millis(ms: i64) -> Time {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The clock port: everything that asks "what time is it" asks this, so tests
/// can pin time and never sleep for real days.
pub trait Clock: Send + Sync {
    fn now(&self) -> Time;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Time {
        Utc::now()
    }
}

/// A clock that only moves when told to.
pub struct FixedClock(std::sync::Mutex<Time>);

impl FixedClock {
    pub fn new(time: Time) -> Self {
        Self(std::sync::Mutex::new(time))
    }

    pub fn set(&self, time: Time) {
        *self.0.lock().unwrap() = time;
    }

    pub fn advance(&self, by: chrono::Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Time {
        *self.0.lock().unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_offset_in_utc_out() {
        let t = parse_time("2026-11-25T12:00:00+02:00").unwrap();
        assert_eq!(format_time(t), "2026-11-25T10:00:00Z");
        let t = parse_time("2026-11-25T10:00:00.250Z").unwrap();
        assert_eq!(format_time(t), "2026-11-25T10:00:00.250Z");
        assert!(parse_time("2026-11-25").is_none());
        assert!(parse_time("yesterday").is_none());
    }
}
