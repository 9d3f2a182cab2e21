//! The diesel code both stores share: schema, rows, every query and write step, and the
//! domain's repository ports on top of them. Each store compiles it in with
//! `#[path = "../../store-diesel/per_backend/mod.rs"] mod shared;`, against its own
//! `crate::backend` module:
//!
//! - `Db`, `Conn`, `Store`: the diesel backend, its connection type and the store type;
//! - `sql::{Time, Json}`, `Time`, `Json`: the SQL and Rust types of time and JSON columns,
//!   converted by `time`, `timestamp`, `json` and `from_json`;
//! - `transaction`: runs an operation in one write transaction;
//! - `lock_owner`: serialises writes to one owner's configs until the transaction ends;
//! - `insert_rows`: runs a multi-row INSERT;
//!
//! and on two methods of the store: `run` (an operation on a pooled connection) and
//! `as_writer` (how writers queue). See `ports` for how the ports use them.

mod audit;
mod configs;
mod documents;
mod key_checks;
mod ports;
mod rows;
mod schema;
mod tasks;
