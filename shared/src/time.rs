//! Times are RFC 3339 on input (any offset) and UTC everywhere else.

use chrono::{DateTime, Datelike, SecondsFormat, Utc};

pub type Time = DateTime<Utc>;

/// An RFC 3339 time, in UTC. A time whose UTC year falls outside 0000-9999
/// (`9999-12-31T23:00:00-05:00`) is refused: it could not be written back as
/// RFC 3339.
pub fn parse_time(text: &str) -> Option<Time> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
        .filter(|t| in_rfc3339_range(*t))
}

/// Whether a time can be written as RFC 3339: a four-digit year, 0000 to 9999.
pub fn in_rfc3339_range(time: Time) -> bool {
    (0..=9999).contains(&time.year())
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
        assert!(parse_time("9999-12-31T23:59:59Z").is_some());
        assert!(parse_time("0000-01-01T00:00:00Z").is_some());
        assert!(parse_time("9999-12-31T23:59:59-05:00").is_none());
        assert!(parse_time("0000-01-01T00:00:00+01:00").is_none());
    }
}
