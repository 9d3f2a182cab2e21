//! The embedded default store: every repository port of `llm-settings-domain` on SQLite
//! (bundled, no system library needed), through diesel and diesel-async's sync connection
//! wrapper. The schema, rows, queries and the storage error table are shared with the
//! PostgreSQL store (`llm-settings-store-diesel`); this crate adds what is SQLite's own
//! (`backend`): times as Unix microseconds, JSON as text, `BEGIN IMMEDIATE` writes queued
//! behind one writer per process.
//!
//! ```no_run
//! # async fn run() -> llm_settings_domain::Result<()> {
//! let store = llm_settings_store_sqlite::SqliteStore::connect("sqlite://./data/llm-settings.sqlite3").await?;
//! store.ping().await?;
//! # Ok(()) }
//! ```

mod backend;
#[path = "../../store-diesel/per_backend/mod.rs"]
mod shared;
mod store;

pub use llm_settings_store_diesel::{KeyCheck, MasterKeyChecks, PoolStatus};
pub use store::{SqliteStore, MIGRATIONS};
