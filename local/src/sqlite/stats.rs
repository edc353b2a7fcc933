//! The per-minute figures of `GET /v1/stats` (a row a minute, the lag
//! histogram as JSON), and the backlog counted on the partial indexes of
//! what is pending: a count over an index, never a read of the rows.

use super::{millis, rows, unavailable, SqliteStore};
use lifecycle_core::metrics::Backlog;
use lifecycle_core::ports::StoreResult;
use lifecycle_core::stats::{LagHistogram, MinuteStats, KEPT_DAYS};
use lifecycle_core::time::{from_millis, Time};
use rusqlite::OptionalExtension;
use std::collections::BTreeMap;

impl SqliteStore {
    /// Not synced at each commit (figures, unlike writes, may lose their
    /// last moments to a power cut; a kill -9 loses none of what was flushed).
    pub(super) async fn add_minute_stats(&self, figures: Vec<MinuteStats>) -> StoreResult<()> {
        self.with(move |c| {
            let tx = c.transaction().map_err(unavailable)?;
            for figure in &figures {
                let stored: Option<String> = tx
                    .prepare_cached("SELECT lag FROM stats WHERE minute = ?1")
                    .and_then(|mut s| {
                        s.query_row([millis(figure.minute)], |row| row.get(0))
                            .optional()
                    })
                    .map_err(unavailable)?;
                let mut lag = stored.map(|t| parse_lag(&t)).unwrap_or_default();
                lag.merge(&figure.lag);
                tx.prepare_cached(
                    "INSERT INTO stats (minute, fired, delivered, failed, lag) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (minute) DO UPDATE SET fired = fired + ?2,
                         delivered = delivered + ?3, failed = failed + ?4, lag = ?5",
                )
                .and_then(|mut s| {
                    s.execute(rusqlite::params![
                        millis(figure.minute),
                        figure.fired as i64,
                        figure.delivered as i64,
                        figure.failed as i64,
                        lag_text(&lag),
                    ])
                })
                .map_err(unavailable)?;
            }
            if let Some(last) = figures.iter().map(|f| f.minute).max() {
                let oldest = last - chrono::Duration::days(KEPT_DAYS);
                tx.execute("DELETE FROM stats WHERE minute < ?1", [millis(oldest)])
                    .map_err(unavailable)?;
            }
            tx.commit().map_err(unavailable)
        })
        .await
    }

    pub(super) async fn load_stats(
        &self,
        since: Time,
        until: Time,
    ) -> StoreResult<Vec<MinuteStats>> {
        self.read(move |c| {
            rows(
                c,
                "SELECT minute, fired, delivered, failed, lag FROM stats
                 WHERE minute >= ?1 AND minute < ?2 ORDER BY minute",
                rusqlite::params![
                    millis(lifecycle_core::stats::minute_of(since)),
                    millis(until)
                ],
                |row| {
                    Ok(MinuteStats {
                        minute: from_millis(row.get(0)?),
                        fired: row.get::<_, i64>(1)? as u64,
                        delivered: row.get::<_, i64>(2)? as u64,
                        failed: row.get::<_, i64>(3)? as u64,
                        lag: parse_lag(&row.get::<_, String>(4)?),
                    })
                },
            )
        })
        .await
    }

    pub(super) async fn count_backlog(&self) -> StoreResult<Backlog> {
        self.read(|c| {
            // Each WHERE is its partial index's, so SQLite counts the index.
            let count = |sql: &str| {
                c.query_row(sql, [], |row| row.get::<_, i64>(0))
                    .map(|n| n as u64)
                    .map_err(unavailable)
            };
            Ok(Backlog {
                schedules_pending: count(
                    "SELECT count(*) FROM schedules INDEXED BY schedules_due WHERE state = 'pending'",
                )?,
                deliveries_pending: count(
                    "SELECT count(*) FROM deliveries INDEXED BY deliveries_due WHERE status = 'pending'",
                )?,
            })
        })
        .await
    }
}

fn lag_text(lag: &LagHistogram) -> String {
    serde_json::to_string(&lag.0).expect("a histogram serializes")
}

fn parse_lag(text: &str) -> LagHistogram {
    LagHistogram(serde_json::from_str::<BTreeMap<u16, u64>>(text).unwrap_or_default())
}
