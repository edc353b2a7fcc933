//! The embedded runtime: the ports on SQLite, an in-process timer loop and
//! reqwest, wired into `lifecycle serve` by `main.rs`.

pub mod sender;
pub mod sqlite;
pub mod timers;

/// How far ahead `lifecycle serve` keeps moments as schedules by default
/// (`--horizon`); later ones are deferred (`lifecycle_core::horizon`).
pub const DEFAULT_HORIZON: &str = "1d";
