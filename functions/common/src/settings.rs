//! The functions' configuration, from the environment variables that
//! `infra/template.yaml` sets (tests build it directly).

use chrono::Duration;
use lifecycle_core::destination::{DestinationPolicy, Network};
use lifecycle_core::retry::RetryPolicy;
use lifecycle_core::time::Time;

#[derive(Clone, Debug)]
pub struct Settings {
    /// `TABLE_NAME`.
    pub table: String,
    /// `HORIZON` (schedule): only timers due within it get an EventBridge schedule.
    pub horizon: Duration,
    /// `SWEEP_PERIOD` (schedule, default 5 minutes): the sweep registers a window this wide.
    pub sweep_period: Duration,
    /// `RETRY_DELAYS`.
    pub retry: RetryPolicy,
    /// `ALLOWED_DESTINATIONS`: internal networks webhooks may reach; every
    /// other internal address is refused.
    pub destinations: DestinationPolicy,
    /// `AWS_DESTINATIONS` (api, deliver): the accounts, bus ARNs and queue
    /// URLs `eventbridge` and `sqs` endpoints may name (the template's
    /// `AwsDestinationAllowList`, the deployment's own account by default).
    pub aws_destinations: lifecycle_core::endpoint_kind::AwsAllowList,
    /// `ALLOW_HTTP` (not in the template: https only on AWS); for tests.
    pub allow_http: bool,
    /// `SCHEDULE_GROUP`, `DELIVER_FUNCTION_ARN`, `SCHEDULER_ROLE_ARN`, `SCHEDULE_DLQ_ARN` (schedule).
    pub scheduler: Option<lifecycle_aws::SchedulerConfig>,
    /// `TIMER_QUEUE_URL` (schedule, deliver): the SQS delay queue.
    pub timer_queue_url: Option<String>,
    /// Entities planned per fan-out page, and pages per invocation before
    /// the fan-out continues in the next (`FANOUT_PAGES`, default 100; the
    /// invocation also stops two minutes before its deadline).
    pub fanout_page: usize,
    pub fanout_pages: usize,
    /// The deliverer holds a timer whose time is at most this far ahead,
    /// then fires it to the second; a later one goes back to the queue
    /// (2 s: a held invocation is compute paid for waiting).
    pub hold: Duration,
    /// `DELIVERY_RETENTION_DAYS` (default 90; 0 keeps them for ever): how
    /// long messages, deliveries and attempts stay in the table.
    pub delivery_retention_days: i64,
    /// How stale the cached notifications and endpoints of an execution
    /// environment may be (`deliver` and `schedule`; `api` reads them each time).
    pub config_ttl: std::time::Duration,
    /// `DEFAULT_CATCH_UP` (api): the `catch_up` of notifications that give none.
    pub default_catch_up: Option<lifecycle_core::offset::Offset>,
    /// `EVENT_DEDUPE_DAYS` (api, default 400): how long write event ids are remembered.
    pub event_dedupe_days: i64,
    /// Seals endpoint signing secrets in the table: from `MAIN_KEY` or the
    /// secret `MAIN_KEY_SECRET_ARN` names (`wiring::main_key`); None keeps
    /// them plain.
    pub main_key: Option<lifecycle_core::sealing::MainKey>,
    /// `METRICS_NAMESPACE` (default `Lifecycle`): the CloudWatch namespace
    /// of the metrics the functions write in the embedded metric format.
    pub metrics_namespace: String,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// `P14D`, `PT36H`, `PT15M`: days, hours, minutes, seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not an ISO 8601 duration like P14D or PT36H");
    let rest = text.strip_prefix('P').ok_or_else(bad)?;
    let (days, time) = rest.split_once('T').unwrap_or((rest, ""));
    let mut total = Duration::zero();
    let mut take = |part: &str, units: &[(char, i64)]| -> Result<(), String> {
        let mut number = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() {
                number.push(c);
            } else {
                let (_, seconds) = units.iter().find(|(u, _)| *u == c).ok_or_else(bad)?;
                let n: i64 = number.parse().map_err(|_| bad())?;
                total += Duration::seconds(n * seconds);
                number.clear();
            }
        }
        if number.is_empty() {
            Ok(())
        } else {
            Err(bad())
        }
    };
    take(days, &[('D', 86_400)])?;
    take(time, &[('H', 3_600), ('M', 60), ('S', 1)])?;
    Ok(total)
}

impl Settings {
    /// Defaults for a table: 14 days' horizon, the default retry timetable,
    /// internal destinations refused, https only, no scheduler or queue.
    pub fn new(table: &str) -> Self {
        Settings {
            table: table.into(),
            horizon: Duration::days(14),
            sweep_period: Duration::minutes(5),
            retry: RetryPolicy::default(),
            destinations: DestinationPolicy {
                block_internal: true,
                allow: Vec::new(),
            },
            aws_destinations: Default::default(),
            allow_http: false,
            scheduler: None,
            timer_queue_url: None,
            fanout_page: 500,
            fanout_pages: 100,
            hold: Duration::seconds(2),
            default_catch_up: None,
            event_dedupe_days: 400,
            main_key: None,
            config_ttl: std::time::Duration::from_secs(1),
            delivery_retention_days: 90,
            metrics_namespace: crate::emf::DEFAULT_NAMESPACE.into(),
        }
    }

    pub fn from_env() -> Result<Self, String> {
        let table = var("TABLE_NAME").ok_or("TABLE_NAME is not set")?;
        let mut settings = Settings::new(&table);
        if let Some(horizon) = var("HORIZON") {
            settings.horizon = parse_duration(&horizon)?;
        }
        if let Some(period) = var("SWEEP_PERIOD") {
            settings.sweep_period = parse_duration(&period)?;
        }
        if let Some(delays) = var("RETRY_DELAYS") {
            settings.retry = RetryPolicy::from_list(&delays)?;
        }
        if let Some(allowed) = var("ALLOWED_DESTINATIONS") {
            settings.destinations.allow = allowed
                .split(',')
                .map(Network::parse)
                .collect::<Result<_, _>>()?;
        }
        if let Some(list) = var("AWS_DESTINATIONS") {
            settings.aws_destinations = lifecycle_core::endpoint_kind::AwsAllowList::parse(&list);
        }
        settings.allow_http = var("ALLOW_HTTP").is_some_and(|v| v == "true" || v == "1");
        if var("SCHEDULE_GROUP").is_some() {
            settings.scheduler = Some(lifecycle_aws::SchedulerConfig::from_env()?);
        }
        settings.timer_queue_url = var("TIMER_QUEUE_URL");
        if let Some(days) = var("EVENT_DEDUPE_DAYS") {
            settings.event_dedupe_days = days
                .parse()
                .ok()
                .filter(|d: &i64| *d > 0)
                .ok_or_else(|| format!("EVENT_DEDUPE_DAYS `{days}` is not a number of days"))?;
        }
        if let Some(days) = var("DELIVERY_RETENTION_DAYS") {
            settings.delivery_retention_days =
                days.parse().ok().filter(|d: &i64| *d >= 0).ok_or_else(|| {
                    format!("DELIVERY_RETENTION_DAYS `{days}` is not a number of days")
                })?;
        }
        if let Some(catch_up) = var("DEFAULT_CATCH_UP") {
            let offset = lifecycle_core::offset::Offset::parse(&catch_up)
                .map_err(|e| format!("DEFAULT_CATCH_UP `{catch_up}`: {e}"))?;
            if offset.is_negative() {
                return Err(format!(
                    "DEFAULT_CATCH_UP `{catch_up}` must not be negative"
                ));
            }
            settings.default_catch_up = Some(offset);
        }
        if let Some(namespace) = var("METRICS_NAMESPACE") {
            settings.metrics_namespace = namespace;
        }
        if let Some(pages) = var("FANOUT_PAGES") {
            settings.fanout_pages = pages
                .parse()
                .map_err(|_| format!("FANOUT_PAGES `{pages}` is not a number"))?;
        }
        Ok(settings)
    }

    /// Whether a timer due at `at` gets an EventBridge schedule now.
    pub fn within_horizon(&self, at: Time, now: Time) -> bool {
        at <= now + self.horizon
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("P14D").unwrap(), Duration::days(14));
        assert_eq!(parse_duration("PT36H").unwrap(), Duration::hours(36));
        assert_eq!(
            parse_duration("P1DT2H3M4S").unwrap(),
            Duration::seconds(86_400 + 7_384)
        );
        assert!(parse_duration("14D").is_err());
        assert!(parse_duration("PT5").is_err());
    }
}
