//! What the two diesel stores (`llm-settings-store-postgres`, `llm-settings-store-sqlite`)
//! share, so a rule about storage is written once and both stores follow it.
//!
//! It comes in two halves:
//!
//! - this library, compiled once: the table that turns storage failures into domain errors
//!   ([`from_diesel`]), how owners and free text are stored ([`OwnerKey`], [`text`]), the
//!   decoding of stored names, pooled-connection handling ([`checkout`], [`InUse`],
//!   [`PoolStatus`]), the master-key check port ([`MasterKeyChecks`]) and the cache of
//!   resolution chains ([`ChainCache`]: what `load_chain` read lately, retired by every write
//!   that can change a chain and served for at most 1 s);
//! - `per_backend/`, compiled into EACH store with `#[path]`: the schema, the row types and
//!   every query and write step, written against the store's `crate::backend` module. That
//!   module holds the few hooks that really differ: the connection type, the SQL and Rust
//!   types of time and JSON columns, transactions and the per-owner write lock. The store
//!   itself provides `run` (an [`Operation`] on a pooled connection: PostgreSQL retries it
//!   on a lost connection) and `as_writer` (SQLite queues writers; PostgreSQL needs not).

mod chain_cache;
mod decode;
mod error;
mod key_checks;
mod operation;
mod pool;

pub use chain_cache::{
    ChainCache, Invalidation, Ticket, DEFAULT_TTL as DEFAULT_CHAIN_CACHE_TTL,
    MAX_TTL as MAX_CHAIN_CACHE_TTL,
};
pub use decode::{model, owner, provider, text, OwnerKey};
pub use error::{connection_lost, corrupt, from_diesel, not_found, stale, StoreError};
pub use key_checks::{KeyCheck, MasterKeyChecks};
pub use operation::Operation;
pub use pool::{checkout, InUse, PoolStatus, POOL_WAIT};
