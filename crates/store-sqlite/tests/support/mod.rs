//! A fresh SQLite database file per test, in a temporary directory.

#![allow(clippy::expect_used)]

use llm_settings_store_sqlite::SqliteStore;
use llm_settings_testkit::OpenedStore;

pub async fn fixture() -> OpenedStore<SqliteStore> {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("store.sqlite3").display());
    let store = SqliteStore::connect(&url).await.expect("open store");
    OpenedStore::new(store, dir, move || {
        let url = url.clone();
        async move { SqliteStore::connect(&url).await.expect("second store") }
    })
}
