//! The store contract suite, run against PostgreSQL (a fresh database per case, dropped
//! afterwards). Needs a server: `TEST_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`.

#![allow(clippy::expect_used)]

use std::sync::Arc;

use async_trait::async_trait;
use llm_settings_store_postgres::{run_migrations, PostgresStore};
use llm_settings_testkit::postgres::TestDatabase;
use llm_settings_testkit::{store_contract_tests, StoreFixture};

struct PostgresFixture {
    // Declared first so the pool closes before the database is dropped.
    store: Arc<PostgresStore>,
    db: TestDatabase,
}

#[async_trait]
impl StoreFixture for PostgresFixture {
    type Store = PostgresStore;

    fn store(&self) -> Arc<PostgresStore> {
        self.store.clone()
    }

    async fn second_store(&self) -> Arc<PostgresStore> {
        Arc::new(
            PostgresStore::connect(self.db.url())
                .await
                .expect("second pool"),
        )
    }
}

async fn fixture() -> PostgresFixture {
    let db = TestDatabase::create().await;
    run_migrations(db.url()).await.expect("migrate");
    let store = Arc::new(PostgresStore::connect(db.url()).await.expect("connect"));
    PostgresFixture { store, db }
}

store_contract_tests!(fixture());
