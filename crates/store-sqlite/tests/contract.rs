//! The store contract suite, run against SQLite (a fresh database file per case).

#![allow(clippy::expect_used)]

use std::sync::Arc;

use async_trait::async_trait;
use llm_settings_store_sqlite::SqliteStore;
use llm_settings_testkit::{store_contract_tests, StoreFixture};
use tempfile::TempDir;

struct SqliteFixture {
    store: Arc<SqliteStore>,
    url: String,
    _dir: TempDir,
}

#[async_trait]
impl StoreFixture for SqliteFixture {
    type Store = SqliteStore;

    fn store(&self) -> Arc<SqliteStore> {
        self.store.clone()
    }

    async fn second_store(&self) -> Arc<SqliteStore> {
        Arc::new(SqliteStore::connect(&self.url).await.expect("second store"))
    }
}

async fn fixture() -> SqliteFixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("store.sqlite3").display());
    let store = Arc::new(SqliteStore::connect(&url).await.expect("open store"));
    SqliteFixture {
        store,
        url,
        _dir: dir,
    }
}

store_contract_tests!(fixture());
