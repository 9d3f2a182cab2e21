//! A fresh PostgreSQL database per test, migrated, dropped afterwards. Needs a server:
//! `TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`.

#![allow(clippy::expect_used)]

use llm_settings_store_postgres::{run_migrations, PostgresStore};
use llm_settings_testkit::postgres::TestDatabase;
use llm_settings_testkit::OpenedStore;

pub async fn fixture() -> OpenedStore<PostgresStore> {
    let db = TestDatabase::create().await;
    run_migrations(db.url()).await.expect("migrate");
    let store = PostgresStore::connect(db.url()).await.expect("connect");
    let url = db.url().to_owned();
    OpenedStore::new(store, db, move || {
        let url = url.clone();
        async move { PostgresStore::connect(&url).await.expect("second pool") }
    })
}
