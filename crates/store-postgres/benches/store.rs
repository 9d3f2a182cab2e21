//! list / upsert / set-default on the PostgreSQL store, in a scratch database created from
//! `TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`) and dropped
//! afterwards. `cargo bench -p llm-settings-store-postgres` prints criterion's timings,
//! then ops/s.

// A benchmark that cannot set up should stop loudly.
#![allow(clippy::expect_used)]

use std::sync::Arc;

use criterion::Criterion;
use llm_settings_store_postgres::{run_migrations, PostgresStore};
use llm_settings_testkit::bench::{store_benches, OpsCounter};
use llm_settings_testkit::postgres::TestDatabase;

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let db = rt.block_on(TestDatabase::create());
    rt.block_on(run_migrations(db.url())).expect("migrate");
    let store = Arc::new(
        rt.block_on(PostgresStore::connect(db.url()))
            .expect("connect"),
    );
    let counter = OpsCounter::default();
    let mut c = Criterion::default().configure_from_args();
    store_benches(&mut c, &rt, "postgres", store.clone(), &counter);
    c.final_summary();
    counter.print();
    drop(store);
    drop(db);
}
