//! When to try a webhook again after a failed attempt.

use chrono::Duration;
use rand::Rng;

/// What one attempt came to, as far as retrying cares.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub status: Option<u16>,
    pub timed_out: bool,
    /// The receiver's `Retry-After`, in seconds.
    pub retry_after: Option<i64>,
}

impl Outcome {
    /// Only 2xx is success; a redirect is a failure.
    pub fn is_success(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    /// `410 Gone`: the endpoint asks to be disabled.
    pub fn is_gone(&self) -> bool {
        self.status == Some(410)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// The wait before retry n+1; its length bounds the attempts to len + 1.
    pub delays: Vec<Duration>,
    /// ±fraction of each delay, so retries from one storm spread out.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    /// About 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: 8 attempts over ~27.5 h.
    fn default() -> Self {
        let delays = [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000]
            .map(Duration::seconds)
            .to_vec();
        Self {
            delays,
            jitter: 0.2,
        }
    }
}

/// Throttled and timed-out receivers get at least this long to recover.
const SLOW_DOWN_SECS: i64 = 60;

impl RetryPolicy {
    /// The wait before the next attempt, after `attempts` attempts of which
    /// the last came to `outcome`; None when the attempts are used up.
    pub fn next_delay(
        &self,
        attempts: u32,
        outcome: &Outcome,
        rng: &mut impl Rng,
    ) -> Option<Duration> {
        let base = *self.delays.get(attempts.checked_sub(1)? as usize)?;
        let spread = if self.jitter > 0.0 {
            rng.gen_range(-self.jitter..=self.jitter)
        } else {
            0.0
        };
        let mut delay =
            Duration::milliseconds((base.num_milliseconds() as f64 * (1.0 + spread)) as i64);
        if let Some(after) = outcome.retry_after {
            let asked = Duration::seconds(after.max(0));
            delay = asked.clamp(base, base * 2);
        }
        if outcome.timed_out || outcome.status == Some(429) {
            delay = delay.max(Duration::seconds(SLOW_DOWN_SECS));
        }
        Some(delay)
    }

    /// Parses `1s,500ms,5m,2h` (for tests and impatient operators).
    pub fn from_list(text: &str) -> Result<Self, String> {
        let delays = text
            .split(',')
            .map(|part| {
                parse_short_duration(part.trim())
                    .ok_or_else(|| format!("`{part}` is not a duration like 5s, 500ms, 5m or 2h"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            delays,
            jitter: 0.0,
        })
    }
}

/// `500ms`, `5s`, `5m`, `2h` or `5d`.
pub fn parse_short_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let value: i64 = text[..split].parse().ok()?;
    match &text[split..] {
        "ms" => Some(Duration::milliseconds(value)),
        "s" => Some(Duration::seconds(value)),
        "m" => Some(Duration::minutes(value)),
        "h" => Some(Duration::hours(value)),
        "d" => Some(Duration::days(value)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn failed(status: u16) -> Outcome {
        Outcome {
            status: Some(status),
            timed_out: false,
            retry_after: None,
        }
    }

    #[test]
    fn the_timetable_with_jitter_bounds() {
        let policy = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(7);
        let expected = [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000];
        for (i, base) in expected.into_iter().enumerate() {
            for _ in 0..50 {
                let delay = policy
                    .next_delay(i as u32 + 1, &failed(500), &mut rng)
                    .unwrap();
                let ms = delay.num_milliseconds() as f64;
                assert!(
                    ms >= base as f64 * 800.0 && ms <= base as f64 * 1200.0,
                    "attempt {}: {ms}",
                    i + 1
                );
            }
        }
        assert_eq!(policy.next_delay(8, &failed(500), &mut rng), None);
    }

    #[test]
    fn throttles_and_timeouts_wait_a_minute() {
        let policy = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(1);
        assert!(policy.next_delay(1, &failed(429), &mut rng).unwrap() >= Duration::seconds(60));
        let timeout = Outcome {
            status: None,
            timed_out: true,
            retry_after: None,
        };
        assert!(policy.next_delay(1, &timeout, &mut rng).unwrap() >= Duration::seconds(60));
    }

    #[test]
    fn retry_after_is_clamped_to_one_or_two_delays() {
        let policy = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(1);
        let asking = |secs| Outcome {
            status: Some(503),
            timed_out: false,
            retry_after: Some(secs),
        };
        assert_eq!(
            policy.next_delay(2, &asking(1), &mut rng),
            Some(Duration::seconds(300))
        );
        assert_eq!(
            policy.next_delay(2, &asking(400), &mut rng),
            Some(Duration::seconds(400))
        );
        assert_eq!(
            policy.next_delay(2, &asking(99_999), &mut rng),
            Some(Duration::seconds(600))
        );
    }

    #[test]
    fn success_is_2xx_only() {
        assert!(failed(204).is_success());
        assert!(!failed(302).is_success());
        assert!(!Outcome {
            status: None,
            timed_out: true,
            retry_after: None
        }
        .is_success());
    }

    #[test]
    fn short_lists_for_tests() {
        let policy = RetryPolicy::from_list("1s, 500ms,2m").unwrap();
        assert_eq!(
            policy.delays,
            vec![
                Duration::seconds(1),
                Duration::milliseconds(500),
                Duration::minutes(2)
            ]
        );
        assert!(RetryPolicy::from_list("1x").is_err());
    }
}
