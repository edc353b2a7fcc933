//! Delivery figures per minute (`GET /v1/stats`): webhooks fired, attempts
//! delivered and failed, and the delivery lag as a histogram whose buckets
//! merge by addition, so that figures counted in many places (the local
//! timer loop, every Lambda invocation) add up in the store to the same
//! percentiles.

use crate::time::Time;
use chrono::{DurationRound, TimeDelta};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Lag buckets per doubling: a percentile is off by at most 2^(1/4), 19 %.
const BUCKETS_PER_DOUBLING: f64 = 4.0;

/// The last bucket: 2^(140/4) ms, about a year. Later lags count in it.
pub const LAST_BUCKET: u16 = 140;

/// How long the figures are kept (at least the 24 hours the page charts).
pub const KEPT_DAYS: i64 = 8;

/// The longest span one `GET /v1/stats` returns.
pub const MAX_SPAN_DAYS: i64 = 7;

/// Counts of delivery lags by bucket: bucket `i` holds the lags in
/// (2^((i-1)/4), 2^(i/4)] milliseconds, bucket 0 those up to 1 ms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LagHistogram(pub BTreeMap<u16, u64>);

impl LagHistogram {
    pub fn bucket(lag_seconds: f64) -> u16 {
        let ms = lag_seconds * 1000.0;
        if ms.is_nan() || ms <= 1.0 {
            return 0;
        }
        let index = (ms.log2() * BUCKETS_PER_DOUBLING).ceil();
        index.min(LAST_BUCKET as f64) as u16
    }

    /// The largest lag bucket `index` holds, in seconds.
    pub fn upper_bound(index: u16) -> f64 {
        2f64.powf(index as f64 / BUCKETS_PER_DOUBLING) / 1000.0
    }

    pub fn add(&mut self, lag_seconds: f64) {
        *self.0.entry(Self::bucket(lag_seconds)).or_default() += 1;
    }

    pub fn merge(&mut self, other: &LagHistogram) {
        for (bucket, count) in &other.0 {
            *self.0.entry(*bucket).or_default() += count;
        }
    }

    pub fn count(&self) -> u64 {
        self.0.values().sum()
    }

    /// The upper bound of the bucket holding the `q` quantile (0..=1).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (bucket, count) in &self.0 {
            seen += count;
            if seen >= rank {
                return Some(Self::upper_bound(*bucket));
            }
        }
        None
    }
}

/// One minute's figures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MinuteStats {
    /// The minute's start.
    pub minute: Time,
    pub fired: u64,
    /// Attempts that succeeded.
    pub delivered: u64,
    /// Attempts that failed, timeouts included.
    pub failed: u64,
    /// The lag of each delivered attempt: its start less the delivery's `scheduled_for`.
    pub lag: LagHistogram,
}

impl MinuteStats {
    pub fn empty(minute: Time) -> Self {
        MinuteStats {
            minute,
            ..Default::default()
        }
    }

    pub fn merge(&mut self, other: &MinuteStats) {
        self.fired += other.fired;
        self.delivered += other.delivered;
        self.failed += other.failed;
        self.lag.merge(&other.lag);
    }

    pub fn view(&self) -> serde_json::Value {
        serde_json::json!({
            "minute": self.minute, "fired": self.fired, "delivered": self.delivered,
            "failed": self.failed, "lag_p50_s": self.lag.quantile(0.5),
            "lag_p99_s": self.lag.quantile(0.99),
        })
    }
}

pub fn minute_of(time: Time) -> Time {
    time.duration_trunc(TimeDelta::minutes(1)).unwrap_or(time)
}

/// Adds a minute's figures to those of the same minute in `minutes`.
pub fn add_into(minutes: &mut BTreeMap<Time, MinuteStats>, figure: &MinuteStats) {
    minutes
        .entry(figure.minute)
        .or_insert_with(|| MinuteStats::empty(figure.minute))
        .merge(figure);
}

/// Every minute of [since, until): the figures given for it added up,
/// empty where none are.
pub fn series(since: Time, until: Time, figures: Vec<MinuteStats>) -> Vec<MinuteStats> {
    let mut stored: BTreeMap<Time, MinuteStats> = BTreeMap::new();
    for figure in &figures {
        add_into(&mut stored, figure);
    }
    let mut minute = minute_of(since);
    let mut series = Vec::new();
    while minute < until {
        series.push(
            stored
                .remove(&minute)
                .unwrap_or_else(|| MinuteStats::empty(minute)),
        );
        minute += TimeDelta::minutes(1);
    }
    series
}

/// Figures counted since the last flush, by minute; the runtime moves them
/// to the store now and then (`Service::flush_stats`).
#[derive(Debug, Default)]
pub struct StatsRecorder(Mutex<BTreeMap<Time, MinuteStats>>);

impl StatsRecorder {
    fn with_minute(&self, at: Time, change: impl FnOnce(&mut MinuteStats)) {
        let minute = minute_of(at);
        let mut minutes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        change(
            minutes
                .entry(minute)
                .or_insert_with(|| MinuteStats::empty(minute)),
        );
    }

    pub fn fired(&self, at: Time, count: u64) {
        self.with_minute(at, |m| m.fired += count);
    }

    /// An attempt at `at`; `lag_seconds` when it succeeded.
    pub fn attempted(&self, at: Time, lag_seconds: Option<f64>) {
        self.with_minute(at, |m| match lag_seconds {
            Some(lag) => {
                m.delivered += 1;
                m.lag.add(lag);
            }
            None => m.failed += 1,
        });
    }

    pub fn take(&self) -> Vec<MinuteStats> {
        let mut minutes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut *minutes).into_values().collect()
    }

    /// A copy of the figures not flushed yet of the minutes in [since, until).
    pub fn unflushed(&self, since: Time, until: Time) -> Vec<MinuteStats> {
        let minutes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        (minutes.range(minute_of(since)..until))
            .map(|(_, m)| m.clone())
            .collect()
    }

    /// Puts back figures a flush could not store, to go with the next one.
    pub fn restore(&self, figures: Vec<MinuteStats>) {
        let mut minutes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for figure in &figures {
            add_into(&mut minutes, figure);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_time;

    #[test]
    fn quantiles_are_within_a_bucket_of_the_true_lag() {
        let mut lag = LagHistogram::default();
        for ms in 1..=1000 {
            lag.add(ms as f64 / 1000.0);
        }
        let p50 = lag.quantile(0.5).unwrap();
        let p99 = lag.quantile(0.99).unwrap();
        assert!((0.5..=0.5 * 1.19).contains(&p50), "{p50}");
        assert!((0.99..=0.99 * 1.19).contains(&p99), "{p99}");
        assert_eq!(LagHistogram::default().quantile(0.5), None);
        assert_eq!(LagHistogram::bucket(1e12), LAST_BUCKET);
        assert_eq!(LagHistogram::bucket(-3.0), 0);
    }

    #[test]
    fn merged_histograms_give_the_quantiles_of_all_their_lags() {
        let (mut a, mut b, mut all): (LagHistogram, LagHistogram, LagHistogram) =
            Default::default();
        for (i, lag) in [0.1, 0.2, 3.0, 4.0, 50.0, 0.01].into_iter().enumerate() {
            let half: &mut LagHistogram = if i % 2 == 0 { &mut a } else { &mut b };
            half.add(lag);
            all.add(lag);
        }
        a.merge(&b);
        assert_eq!(a, all);
        assert_eq!(a.count(), 6);
    }

    #[test]
    fn the_recorder_counts_by_minute_and_the_series_fills_the_gaps() {
        let at = |s: &str| parse_time(s).unwrap();
        let recorder = StatsRecorder::default();
        recorder.fired(at("2026-12-02T10:00:59Z"), 2);
        recorder.attempted(at("2026-12-02T10:00:30Z"), Some(0.5));
        recorder.attempted(at("2026-12-02T10:02:01Z"), None);
        let taken = recorder.take();
        assert!(recorder.take().is_empty());
        let series = series(
            at("2026-12-02T10:00:10Z"),
            at("2026-12-02T10:03:00Z"),
            taken,
        );
        let figures: Vec<_> = series
            .iter()
            .map(|m| (m.fired, m.delivered, m.failed))
            .collect();
        assert_eq!(figures, [(2, 1, 0), (0, 0, 0), (0, 0, 1)]);
        assert_eq!(series[0].minute, at("2026-12-02T10:00:00Z"));
        let p50 = series[0].view()["lag_p50_s"].as_f64().unwrap();
        assert!((0.5..0.6).contains(&p50), "{p50}");
        assert!(series[1].view()["lag_p50_s"].is_null());
    }
}
