//! list / upsert / set-default on the SQLite store (a database file in a temp dir).
//! `cargo bench -p llm-settings-store-sqlite` prints criterion's timings, then ops/s.

// A benchmark that cannot set up should stop loudly.
#![allow(clippy::expect_used)]

use std::sync::Arc;

use criterion::Criterion;
use llm_settings_store_sqlite::SqliteStore;
use llm_settings_testkit::bench::{store_benches, OpsCounter};

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("bench.sqlite3").display());
    let store = Arc::new(rt.block_on(SqliteStore::connect(&url)).expect("open store"));
    let counter = OpsCounter::default();
    let mut c = Criterion::default().configure_from_args();
    store_benches(&mut c, &rt, "sqlite", store, &counter);
    c.final_summary();
    counter.print();
}
