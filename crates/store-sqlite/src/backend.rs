//! SQLite's hooks for the shared store code (`store-diesel/per_backend`): column types, the
//! connection, and the per-owner lock.

use diesel::sqlite::SqliteConnection;
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use llm_settings_domain::Timestamp;
use llm_settings_store_diesel::{corrupt, Operation, OwnerKey, StoreError};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub(crate) use crate::store::SqliteStore as Store;
pub(crate) use diesel::sqlite::Sqlite as Db;

/// A connection: diesel's SQLite connection, each statement run on the blocking pool.
pub(crate) type Conn = SyncConnectionWrapper<SqliteConnection>;

/// SQL types of the columns the backends store differently.
pub(crate) mod sql {
    pub(crate) use diesel::sql_types::{BigInt as Time, Text as Json};
}

/// A time column's value: microseconds since the Unix epoch (UTC).
pub(crate) type Time = i64;
/// A JSON column's value: the JSON text.
pub(crate) type Json = String;

/// A time as its column stores it.
pub(crate) fn time(at: Timestamp) -> Time {
    at.unix_micros()
}

/// A time column's value as the domain's timestamp.
pub(crate) fn timestamp(micros: Time) -> Result<Timestamp, StoreError> {
    Timestamp::from_unix_micros(micros).map_err(|_| corrupt("timestamp"))
}

/// A value as its JSON column stores it.
pub(crate) fn json<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Json> {
    serde_json::to_string(value)
}

/// A JSON column's value, decoded.
pub(crate) fn from_json<T: DeserializeOwned>(text: Json) -> serde_json::Result<T> {
    serde_json::from_str(&text)
}

/// Runs `op` in one `BEGIN IMMEDIATE` transaction: it takes the database's write lock at
/// once, so other processes wait for it (busy timeout) instead of failing mid-way.
pub(crate) async fn transaction<'a, T, F>(c: &mut Conn, op: &F) -> Result<T, StoreError>
where
    T: Send + 'a,
    F: Operation<'a, Conn, T>,
{
    c.immediate_transaction(|c| async move { op(c).await }.scope_boxed())
        .await
}

/// Nothing to take: every write transaction already holds the database's one write lock
/// (`BEGIN IMMEDIATE`, queued behind the store's writer lock), which serialises the owner's
/// changes with every other write.
pub(crate) async fn lock_owner(_c: &mut Conn, _owner: &OwnerKey) -> Result<(), StoreError> {
    Ok(())
}

/// Runs an INSERT of several rows. Diesel renders SQLite's multi-row INSERT only on its
/// synchronous API, so the statement runs on the connection's blocking thread.
pub(crate) async fn insert_rows<Q>(c: &mut Conn, insert: Q) -> diesel::QueryResult<usize>
where
    Q: diesel::RunQueryDsl<SqliteConnection>
        + diesel::query_dsl::methods::ExecuteDsl<SqliteConnection>
        + Send
        + 'static,
{
    c.spawn_blocking(move |c| diesel::RunQueryDsl::execute(insert, c))
        .await
}
