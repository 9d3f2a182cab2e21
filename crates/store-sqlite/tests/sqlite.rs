//! SQLite-specific behaviour: URLs, pragmas, migrations down and up, abandoned writes on an
//! in-memory database, the pool's figures.

#![allow(clippy::unwrap_used)]

use llm_settings_domain::ports::ConfigRepository;
use llm_settings_domain::{Error, Owner, ProviderConfig};
use llm_settings_store_sqlite::SqliteStore;
use llm_settings_testkit::fixtures::{new_config, now, user, works_on_a_fresh_schema};
use tempfile::TempDir;

/// The migrations in `migrations/sqlite`.
const MIGRATION_COUNT: usize = 5;

fn file_url(dir: &tempfile::TempDir) -> String {
    format!(
        "sqlite://{}",
        dir.path().join("nested/dir/db.sqlite3").display()
    )
}

/// A store on a new database file holding one config of `who`.
async fn file_store_with_a_config(who: &str) -> (TempDir, SqliteStore, Owner, ProviderConfig) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::connect(&file_url(&dir)).await.unwrap();
    let owner = user(who);
    let created = store
        .insert(new_config(&owner, "openai", now()))
        .await
        .unwrap();
    (dir, store, owner, created)
}

#[tokio::test]
async fn memory_database_works_and_is_private() {
    let a = SqliteStore::connect("sqlite::memory:").await.unwrap();
    let b = SqliteStore::connect("sqlite::memory:").await.unwrap();
    let owner = user("mem");
    a.insert(new_config(&owner, "openai", now())).await.unwrap();
    assert_eq!(ConfigRepository::list(&a, &owner).await.unwrap().len(), 1);
    assert!(ConfigRepository::list(&b, &owner).await.unwrap().is_empty());
    a.ping().await.unwrap();
}

#[tokio::test]
async fn bad_urls_are_validation_errors() {
    for url in ["postgres://x", "sqlite://", "memory"] {
        let err = SqliteStore::connect(url).await.unwrap_err();
        assert!(matches!(err, Error::Validation { .. }), "{url}: {err:?}");
    }
}

#[tokio::test]
async fn unopenable_file_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the database file should be.
    std::fs::create_dir(dir.path().join("taken")).unwrap();
    let url = format!("sqlite://{}", dir.path().join("taken").display());
    let err = SqliteStore::connect(&url).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn file_database_uses_wal_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let url = file_url(&dir);
    let owner = user("persist");
    {
        let store = SqliteStore::connect(&url).await.unwrap();
        store
            .insert(new_config(&owner, "openai", now()))
            .await
            .unwrap();
    }
    let store = SqliteStore::connect(&url).await.unwrap();
    assert_eq!(
        ConfigRepository::list(&store, &owner).await.unwrap().len(),
        1
    );
    assert!(
        dir.path().join("nested/dir/db.sqlite3-wal").exists(),
        "the database runs in WAL mode"
    );
    assert!(
        store.run_migrations().await.unwrap().is_empty(),
        "nothing left to apply"
    );
}

#[tokio::test]
async fn migrations_revert_and_reapply() {
    let (_dir, store, owner, _) = file_store_with_a_config("cycle").await;
    let reverted = store.revert_all_migrations().await.unwrap();
    assert_eq!(reverted.len(), MIGRATION_COUNT, "{reverted:?}");
    assert!(
        ConfigRepository::list(&store, &owner).await.is_err(),
        "tables are gone"
    );
    let applied = store.run_migrations().await.unwrap();
    assert_eq!(applied.len(), MIGRATION_COUNT, "{applied:?}");
    works_on_a_fresh_schema(&store, &owner).await;
}

#[tokio::test]
async fn deleting_a_config_cascades_to_its_secret_rows() {
    use diesel::{Connection, RunQueryDsl};

    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let (dir, store, owner, created) = file_store_with_a_config("cascade").await;
    let url = file_url(&dir);
    ConfigRepository::delete(&store, &owner, created.id)
        .await
        .unwrap();
    let mut raw = diesel::SqliteConnection::establish(url.trim_start_matches("sqlite://")).unwrap();
    let secrets: Vec<Count> =
        diesel::sql_query("SELECT count(*) AS n FROM provider_config_secrets")
            .load(&mut raw)
            .unwrap();
    assert_eq!(secrets[0].n, 0, "secret rows go with their config");
    // AUTOINCREMENT never hands out an id twice, so a stale id never reaches a new config.
    let again = store
        .insert(new_config(&owner, "openai", now()))
        .await
        .unwrap();
    assert!(again.id > created.id);
}

#[tokio::test]
async fn database_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, _store, _, _) = file_store_with_a_config("perm").await;
    let folder = dir.path().join("nested/dir");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&folder).unwrap() {
        let path = entry.unwrap().path();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
        seen.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    seen.sort();
    assert!(seen.contains(&"db.sqlite3".to_owned()));
    assert!(seen.iter().any(|f| f.ends_with("-wal")), "{seen:?}");
}

#[tokio::test]
async fn pool_status_counts_the_connections() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::connect(&file_url(&dir)).await.unwrap();
    let status = store.pool_status();
    assert_eq!(status.max_size, 4);
    assert!(status.open >= 1 && status.idle <= status.open, "{status:?}");
    assert_eq!(status.waiting, 0);
    let memory = SqliteStore::connect("sqlite::memory:").await.unwrap();
    assert_eq!(memory.pool_status().max_size, 1);
}

/// An in-memory database lives in its one connection: a write whose caller gives up must
/// roll back and keep the connection (and the data), not close it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_write_keeps_an_in_memory_database() {
    use std::time::Duration;

    let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
    let owner = user("memory");
    let kept = store
        .insert(new_config(&owner, "openai", now()))
        .await
        .unwrap();
    for i in 0..20u64 {
        let write = store.insert(new_config(&owner, "anthropic", now()));
        if tokio::time::timeout(Duration::from_micros(i * 50), write)
            .await
            .is_ok()
        {
            let added = ConfigRepository::list(&store, &owner).await.unwrap();
            ConfigRepository::delete(&store, &owner, added[1].id)
                .await
                .unwrap();
        }
    }
    // A write given up after its commit was sent has landed; one given up before has not.
    // Either way the data outlived every abandoned write and nothing is half-written.
    let all = ConfigRepository::list(&store, &owner).await.unwrap();
    assert_eq!(all[0], kept, "the data outlived every abandoned write");
    assert!(all.len() <= 2, "{all:?}");
    assert!(
        all.iter().all(|c| c.secrets.contains_key("api_key")),
        "{all:?}"
    );
    // The connection still works.
    if let Some(landed) = all.get(1) {
        ConfigRepository::delete(&store, &owner, landed.id)
            .await
            .unwrap();
    }
    let after = store
        .insert(new_config(&owner, "gemini", now()))
        .await
        .unwrap();
    assert_eq!(
        ConfigRepository::list(&store, &owner).await.unwrap(),
        vec![kept, after]
    );
}
