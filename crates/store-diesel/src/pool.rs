//! Pooled connections: checking one out within a deadline, never handing one back in the
//! middle of an operation, and the pool's figures for metrics.

use std::fmt;
use std::time::Duration;

use deadpool::managed::{Manager, Object, Pool};
use llm_settings_domain::Error;

/// Seconds an operation waited for a pooled connection (a histogram in `/metrics`).
pub const POOL_WAIT: &str = "llm_settings_store_pool_wait_seconds";

/// A store's connection pool at one instant, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    /// Most connections the pool opens.
    pub max_size: usize,
    /// Connections open now, in use or idle.
    pub open: usize,
    /// Open connections waiting for an operation.
    pub idle: usize,
    /// Operations waiting for a connection.
    pub waiting: usize,
}

impl From<deadpool::Status> for PoolStatus {
    fn from(status: deadpool::Status) -> Self {
        Self {
            max_size: status.max_size,
            open: status.size,
            idle: status.available,
            waiting: status.waiting,
        }
    }
}

/// A connection of `pool` within `timeout`; `Unavailable` (naming `database`) otherwise. The
/// wait is recorded as [`POOL_WAIT`].
pub async fn checkout<M>(
    pool: &Pool<M>,
    timeout: Duration,
    database: &str,
) -> Result<Object<M>, Error>
where
    M: Manager,
    M::Error: fmt::Display,
{
    let started = std::time::Instant::now();
    let checked_out = tokio::time::timeout(timeout, pool.get()).await;
    metrics::histogram!(POOL_WAIT).record(started.elapsed());
    match checked_out {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(err)) => Err(Error::Unavailable(format!(
            "no {database} connection could be opened: {err}"
        ))),
        Err(_) => Err(Error::Unavailable(format!(
            "timed out waiting for a {database} connection"
        ))),
    }
}

/// A checked-out connection that goes back to the pool as it is only when its operation
/// finished.
///
/// If the caller's future is dropped mid-operation (a client hung up), the connection may
/// still be inside a transaction, holding an owner's lock; it is then handed to the store's
/// `abandon` hook instead (close it, or roll back before reuse), so no later operation ever
/// meets a transaction it did not open.
pub struct InUse<M: Manager> {
    conn: Option<Object<M>>,
    finished: bool,
    abandon: fn(Object<M>),
}

impl<M: Manager> fmt::Debug for InUse<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InUse")
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl<M: Manager> InUse<M> {
    /// Guards `conn`; `abandon` receives it if the operation never finishes.
    pub fn new(conn: Object<M>, abandon: fn(Object<M>)) -> Self {
        Self {
            conn: Some(conn),
            finished: false,
            abandon,
        }
    }

    /// The connection.
    pub fn get(&mut self) -> &mut M::Type {
        match self.conn.as_mut() {
            Some(conn) => conn,
            // `conn` is only taken by `discard`, which consumes `self`.
            None => unreachable!("connection used after it was discarded"),
        }
    }

    /// The operation ran to its end: the connection may be reused.
    pub fn finish(mut self) {
        self.finished = true;
    }

    /// Closes the connection instead of returning it to the pool.
    pub fn discard(mut self) {
        if let Some(conn) = self.conn.take() {
            drop(Object::take(conn));
        }
    }
}

impl<M: Manager> Drop for InUse<M> {
    fn drop(&mut self) {
        if !self.finished {
            if let Some(conn) = self.conn.take() {
                (self.abandon)(conn);
            }
        }
    }
}
