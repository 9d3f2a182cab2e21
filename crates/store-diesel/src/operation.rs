//! The shape of every store operation.

use diesel_async::scoped_futures::ScopedBoxFuture;

use crate::error::StoreError;

/// An operation on a connection `C` yielding `T`, as a store's `run`, `read` and `write`
/// take it. `Fn`, not `FnOnce`: PostgreSQL runs it again on a new connection when the
/// first one was lost.
pub trait Operation<'a, C, T>:
    for<'r> Fn(&'r mut C) -> ScopedBoxFuture<'a, 'r, Result<T, StoreError>> + Send + Sync + 'a
{
}

impl<'a, C, T, F> Operation<'a, C, T> for F where
    F: for<'r> Fn(&'r mut C) -> ScopedBoxFuture<'a, 'r, Result<T, StoreError>> + Send + Sync + 'a
{
}
