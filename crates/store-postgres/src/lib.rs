//! The production store: every repository port of `llm-settings-domain` on PostgreSQL,
//! through diesel and diesel-async with a deadpool connection pool.
//!
//! Migrations are embedded ([`MIGRATIONS`]) and applied by [`run_migrations`], which the
//! server's `migrate` command calls. Connections use TLS (rustls) as the URL's libpq
//! `sslmode` and `sslrootcert` ask. The schema, rows, queries and the storage error table
//! are shared with the SQLite store (`llm-settings-store-diesel`); this crate adds what is
//! PostgreSQL's own (`backend`): timestamptz and json columns, per-owner advisory locks, a
//! pool that retries an operation once when its connection was lost.
//!
//! ```no_run
//! # async fn run() -> llm_settings_domain::Result<()> {
//! let url = "postgres://llm@db.internal/llm_settings";
//! llm_settings_store_postgres::run_migrations(url).await?;
//! let store = llm_settings_store_postgres::PostgresStore::connect(url).await?;
//! store.ping().await?;
//! # Ok(()) }
//! ```

mod backend;
#[path = "../../store-diesel/per_backend/mod.rs"]
mod shared;
mod store;
mod tls;

pub use llm_settings_store_diesel::{KeyCheck, MasterKeyChecks, PoolStatus};
pub use store::{
    revert_all_migrations, run_migrations, PostgresOptions, PostgresStore, MIGRATIONS,
};
