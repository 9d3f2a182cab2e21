//! PostgreSQL's hooks for the shared store code (`store-diesel/per_backend`): column types,
//! the connection, and the per-owner lock.

use diesel::sql_types::{Integer, Text};
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncConnection, RunQueryDsl};
use llm_settings_domain::Timestamp;
use llm_settings_store_diesel::{Operation, OwnerKey, StoreError};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub(crate) use crate::store::PostgresStore as Store;
pub(crate) use diesel::pg::Pg as Db;
pub(crate) use diesel_async::AsyncPgConnection as Conn;

/// SQL types of the columns the backends store differently.
pub(crate) mod sql {
    pub(crate) use diesel::sql_types::{Json, Timestamptz as Time};
}

/// A time column's value (`timestamptz`, microsecond precision like [`Timestamp`]).
pub(crate) type Time = time::OffsetDateTime;
/// A JSON column's value (`json`: kept verbatim, a `\u0000` escape accepted).
pub(crate) type Json = serde_json::Value;

/// A time as its column stores it.
pub(crate) fn time(at: Timestamp) -> Time {
    at.as_offset()
}

/// A time column's value as the domain's timestamp.
pub(crate) fn timestamp(at: Time) -> Result<Timestamp, StoreError> {
    Ok(Timestamp::new(at))
}

/// A value as its JSON column stores it.
pub(crate) fn json<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Json> {
    serde_json::to_value(value)
}

/// A JSON column's value, decoded.
pub(crate) fn from_json<T: DeserializeOwned>(value: Json) -> serde_json::Result<T> {
    serde_json::from_value(value)
}

/// Runs `op` in one transaction (committed, or rolled back when it fails).
pub(crate) async fn transaction<'a, T, F>(c: &mut Conn, op: &F) -> Result<T, StoreError>
where
    T: Send + 'a,
    F: Operation<'a, Conn, T>,
{
    c.transaction(|c| async move { op(c).await }.scope_boxed())
        .await
}

/// First key of the advisory locks this store takes ("LLMS"), so they cannot collide with
/// an application sharing the database that uses single-key locks or another namespace.
pub(crate) const LOCK_NAMESPACE: i32 = 0x4C4C_4D53;

/// Serialises every change to one owner's configs until the transaction ends, across all
/// connections and processes.
pub(crate) async fn lock_owner(c: &mut Conn, owner: &OwnerKey) -> Result<(), StoreError> {
    diesel::sql_query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind::<Integer, _>(LOCK_NAMESPACE)
        .bind::<Text, _>(format!("{}:{}", owner.kind, owner.id))
        .execute(c)
        .await?;
    Ok(())
}

/// Runs an INSERT of several rows (one statement).
pub(crate) async fn insert_rows<Q>(c: &mut Conn, insert: Q) -> diesel::QueryResult<usize>
where
    Q: diesel_async::methods::ExecuteDsl<Conn> + Send,
{
    RunQueryDsl::execute(insert, c).await
}
