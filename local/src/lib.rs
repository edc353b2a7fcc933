//! The embedded runtime: the ports on SQLite, an in-process timer loop and
//! reqwest, wired into `lifecycle serve` by `main.rs`.

/// The HTTP sender, shared with the AWS runtime.
pub use lifecycle_http as sender;
pub mod data_folder;
pub mod metrics;
pub mod runtime;
pub mod sqlite;
pub mod timers;

/// How far ahead `lifecycle serve` keeps moments as schedules by default
/// (`--horizon`); later ones are deferred (`lifecycle_core::horizon`).
pub const DEFAULT_HORIZON: &str = "1d";

/// A `--horizon`: `off` (None: every moment is a schedule row) or a
/// duration of at least a second.
pub fn parse_horizon(text: &str) -> Result<Option<chrono::Duration>, &'static str> {
    if text == "off" {
        return Ok(None);
    }
    lifecycle_core::retry::parse_short_duration(text)
        .filter(|h| *h >= chrono::Duration::seconds(1))
        .map(Some)
        .ok_or("--horizon takes `off` or a duration of at least 1s, such as 1d, 12h or 30m")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_horizon_is_off_or_at_least_a_second() {
        assert_eq!(parse_horizon("off"), Ok(None));
        assert_eq!(parse_horizon("2s"), Ok(Some(chrono::Duration::seconds(2))));
        assert_eq!(
            parse_horizon(DEFAULT_HORIZON),
            Ok(Some(chrono::Duration::days(1)))
        );
        for bad in ["0s", "500ms", "1w", "soon", ""] {
            assert!(parse_horizon(bad).is_err(), "{bad}");
        }
    }
}
