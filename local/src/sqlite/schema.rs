//! The SQLite store's schema, as numbered migrations (`rusqlite_migration`,
//! the version in `PRAGMA user_version`): a database made by any earlier
//! release opens and is brought up to date, in one transaction, before
//! anything reads it. `local/tests/migrations.rs` opens a database made by
//! the release of 2026-12-04 (checked in) and one from before the horizon.
//!
//! Migration 1 is every schema from before the numbered ones (they all
//! have `user_version` 0): it runs on an empty database, one from before
//! `deferred_at`, and one of the release it was introduced in, and leaves
//! each the same. Each later migration runs once: add one at the end,
//! never edit one that shipped.

use rusqlite::Connection;
use rusqlite_migration::{HookResult, Migrations, M};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS write_events (
    id TEXT PRIMARY KEY, status TEXT NOT NULL, received_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS entities (
    kind TEXT NOT NULL, id TEXT NOT NULL, customer_id TEXT NOT NULL, version INTEGER NOT NULL,
    record TEXT NOT NULL, deferred_at INTEGER, UNIQUE (kind, id));
CREATE TABLE IF NOT EXISTS notifications (id TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS schedules (
    id TEXT PRIMARY KEY, notification_id TEXT NOT NULL, entity_kind TEXT NOT NULL,
    entity_id TEXT NOT NULL, customer_id TEXT NOT NULL, state TEXT NOT NULL,
    fire_at INTEGER NOT NULL, is_write INTEGER NOT NULL, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS schedules_by_entity ON schedules (entity_kind, entity_id);
CREATE INDEX IF NOT EXISTS schedules_by_customer ON schedules (customer_id, state, fire_at, id);
CREATE INDEX IF NOT EXISTS schedules_due ON schedules (fire_at) WHERE state = 'pending';
CREATE TABLE IF NOT EXISTS endpoints (id TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages (id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, customer_id TEXT NOT NULL,
    event_type TEXT NOT NULL, status TEXT NOT NULL, endpoint_id TEXT, created_at INTEGER NOT NULL,
    next_attempt_at INTEGER, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS deliveries_due_by_endpoint ON deliveries (endpoint_id, next_attempt_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS deliveries_by_customer ON deliveries (customer_id, seq);
CREATE TABLE IF NOT EXISTS balances (
    customer_id TEXT PRIMARY KEY, value REAL NOT NULL, occurred_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS spends (
    customer_id TEXT PRIMARY KEY, period TEXT NOT NULL, value REAL NOT NULL, occurred_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS usage_totals (
    customer_id TEXT NOT NULL, metric TEXT NOT NULL, month TEXT NOT NULL, total REAL NOT NULL,
    PRIMARY KEY (customer_id, metric, month)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS usage_by_metric ON usage_totals (metric, month);
CREATE TABLE IF NOT EXISTS alerts (
    notification_id TEXT NOT NULL, customer_id TEXT NOT NULL, record TEXT NOT NULL,
    PRIMARY KEY (notification_id, customer_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS alerts_by_customer ON alerts (customer_id);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS attempts (
    delivery_id TEXT NOT NULL, number INTEGER NOT NULL, record TEXT NOT NULL,
    PRIMARY KEY (delivery_id, number)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS stats (
    minute INTEGER PRIMARY KEY, fired INTEGER NOT NULL, delivered INTEGER NOT NULL,
    failed INTEGER NOT NULL, lag TEXT NOT NULL);
"#;

/// What needs the columns added after the first release: run after
/// `add_columns`, which brings an older database up to date.
const SCHEMA_LATER: &str = r#"
CREATE INDEX IF NOT EXISTS entities_deferred ON entities (deferred_at) WHERE deferred_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS entities_by_customer ON entities (customer_id) WHERE deferred_at IS NOT NULL;
"#;

/// Brings an older database's tables up to date: entities gain
/// `deferred_at`, and become a rowid table. They were clustered by key
/// (WITHOUT ROWID), which suits small rows; a commit's record is over a
/// kilobyte, and inserting such rows all over the key order left pages
/// half full (6 GB for 1,000,000 contracts) and rewrote one per insert.
fn add_columns(connection: &Connection) -> rusqlite::Result<()> {
    if connection
        .prepare("SELECT deferred_at FROM entities LIMIT 0")
        .is_err()
    {
        connection.execute_batch("ALTER TABLE entities ADD COLUMN deferred_at INTEGER")?;
    }
    let clustered: bool = connection.query_row(
        "SELECT sql LIKE '%WITHOUT ROWID%' FROM sqlite_master WHERE type = 'table' AND name = 'entities'",
        [],
        |row| row.get(0),
    )?;
    if clustered {
        connection.execute_batch(
            "CREATE TABLE entities_by_rowid (
                 kind TEXT NOT NULL, id TEXT NOT NULL, customer_id TEXT NOT NULL, version INTEGER NOT NULL,
                 record TEXT NOT NULL, deferred_at INTEGER, UNIQUE (kind, id));
             INSERT INTO entities_by_rowid (kind, id, customer_id, version, record, deferred_at)
                 SELECT kind, id, customer_id, version, record, deferred_at FROM entities;
             DROP TABLE entities;
             ALTER TABLE entities_by_rowid RENAME TO entities;",
        )?;
    }
    Ok(())
}

/// Migration 1's hook: the older tables brought up to date, then what
/// needs their new columns.
fn first_release(tx: &rusqlite::Transaction) -> HookResult {
    add_columns(tx)?;
    tx.execute_batch(SCHEMA_LATER)?;
    Ok(())
}

/// Every migration, in order.
pub fn migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up_with_hook(SCHEMA, first_release)])
}

/// Brings the database to the latest schema.
pub(super) fn migrate(connection: &mut Connection) -> rusqlite_migration::Result<()> {
    migrations().to_latest(connection)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_migrations_are_valid() {
        super::migrations().validate().unwrap();
    }
}
