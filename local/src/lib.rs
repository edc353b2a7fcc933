//! The embedded runtime: the ports on SQLite, an in-process timer loop and
//! reqwest, wired into `lifecycle serve` by `main.rs`.

pub mod sender;
pub mod sqlite;
pub mod timers;
