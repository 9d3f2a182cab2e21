//! PostgreSQL-specific behaviour: migrations down and up, connections killed under load,
//! an unreachable server, the pool's figures.

#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use llm_settings_domain::ports::ConfigRepository;
use llm_settings_domain::{ConfigId, Error, Owner};
use llm_settings_store_postgres::{
    revert_all_migrations, run_migrations, PostgresOptions, PostgresStore,
};
use llm_settings_testkit::fixtures::{new_config, now, user, works_on_a_fresh_schema};
use llm_settings_testkit::postgres::TestDatabase;
use tokio::task::JoinSet;

/// The migrations in `migrations/postgres`.
const MIGRATION_COUNT: usize = 5;

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

async fn public_tables(db: &TestDatabase) -> Vec<String> {
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    let rows: Vec<Name> = diesel::sql_query(
        "SELECT table_name::text AS name FROM information_schema.tables \
         WHERE table_schema = 'public' ORDER BY 1",
    )
    .load(&mut conn)
    .await
    .unwrap();
    rows.into_iter().map(|r| r.name).collect()
}

async fn migrated() -> (TestDatabase, Arc<PostgresStore>) {
    let db = TestDatabase::create().await;
    run_migrations(db.url()).await.unwrap();
    let options = PostgresOptions {
        max_connections: 4,
        ..PostgresOptions::default()
    };
    let store = Arc::new(
        PostgresStore::connect_with(db.url(), options)
            .await
            .unwrap(),
    );
    (db, store)
}

/// A migrated store with two configs of `who` (the first is the default).
async fn migrated_with_two(who: &str) -> (TestDatabase, Arc<PostgresStore>, Owner, ConfigId) {
    let (db, store) = migrated().await;
    let owner = user(who);
    for name in ["openai", "anthropic"] {
        store.insert(new_config(&owner, name, now())).await.unwrap();
    }
    let second = ConfigRepository::list(&*store, &owner).await.unwrap()[1].id;
    (db, store, owner, second)
}

/// A connection outside the store, holding (or releasing) the owner's advisory lock as
/// another service process would.
async fn advisory_lock(conn: &mut AsyncPgConnection, owner: &str, take: bool) {
    let sql = if take {
        "SELECT pg_advisory_lock($1, hashtext($2))"
    } else {
        "SELECT pg_advisory_unlock($1, hashtext($2))"
    };
    diesel::sql_query(sql)
        .bind::<diesel::sql_types::Integer, _>(0x4C4C_4D53)
        .bind::<diesel::sql_types::Text, _>(owner)
        .execute(conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn every_migration_reverts_and_reapplies() {
    let db = TestDatabase::create().await;
    let applied = run_migrations(db.url()).await.unwrap();
    assert_eq!(applied.len(), MIGRATION_COUNT, "{applied:?}");
    assert!(
        run_migrations(db.url()).await.unwrap().is_empty(),
        "idempotent"
    );
    let store = PostgresStore::connect(db.url()).await.unwrap();
    let owner = user("cycle");
    store
        .insert(new_config(&owner, "openai", now()))
        .await
        .unwrap();

    let reverted = revert_all_migrations(db.url()).await.unwrap();
    assert_eq!(reverted.len(), MIGRATION_COUNT, "{reverted:?}");
    assert_eq!(
        public_tables(&db).await,
        vec!["__diesel_schema_migrations".to_owned()],
        "every down removes what its up created"
    );
    let err = ConfigRepository::list(&store, &owner).await.unwrap_err();
    assert!(matches!(err, Error::Internal(_)), "{err:?}");

    assert_eq!(
        run_migrations(db.url()).await.unwrap().len(),
        MIGRATION_COUNT
    );
    works_on_a_fresh_schema(&store, &owner).await;
    // And down once more from a populated schema.
    assert_eq!(
        revert_all_migrations(db.url()).await.unwrap().len(),
        MIGRATION_COUNT
    );
    assert_eq!(
        run_migrations(db.url()).await.unwrap().len(),
        MIGRATION_COUNT
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrations_take_turns() {
    let db = TestDatabase::create().await;
    let (a, b) = tokio::join!(run_migrations(db.url()), run_migrations(db.url()));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        a.len() + b.len(),
        MIGRATION_COUNT,
        "each migration ran once: {a:?} {b:?}"
    );
}

#[derive(QueryableByName)]
struct Waiting {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    waiting: i64,
}

/// An operation whose connection is terminated while it runs is retried on a new
/// connection and succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_survives_its_connection_being_terminated() {
    let (db, store, owner, second) = migrated_with_two("blocked").await;

    // Hold the owner's lock from outside, so set-default waits inside its transaction.
    let mut holder = AsyncPgConnection::establish(db.url()).await.unwrap();
    advisory_lock(&mut holder, "user:blocked", true).await;
    let waiting_store = store.clone();
    let (o, id) = (owner.clone(), second);
    let pending = tokio::spawn(async move { waiting_store.set_default(&o, id, now()).await });

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows: Vec<Waiting> = diesel::sql_query(
            "SELECT count(*) AS waiting FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .load(&mut holder)
        .await
        .unwrap();
        if rows[0].waiting > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "set-default never started waiting"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Kills the waiting connection and the lock holder alike.
    assert!(db.terminate_connections().await >= 2);

    let made = pending
        .await
        .unwrap()
        .expect("retried on a fresh connection");
    assert!(made.is_default);
    let all = ConfigRepository::list(&*store, &owner).await.unwrap();
    let defaults: Vec<ConfigId> = all.iter().filter(|c| c.is_default).map(|c| c.id).collect();
    assert_eq!(defaults, vec![second], "the first config lost the flag");
}

#[derive(QueryableByName)]
struct Stuck {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    stuck: i64,
}

/// A caller that gives up mid-transaction (a client hanging up) leaves no transaction open
/// and no owner lock held: the next change to that owner goes through at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_operation_leaves_no_lock_behind() {
    let (db, store, owner, second) = migrated_with_two("impatient").await;
    // Several idle connections, so the next checkout is not the abandoned one.
    let mut warm = JoinSet::new();
    for _ in 0..4 {
        let (store, owner) = (store.clone(), owner.clone());
        warm.spawn(async move { ConfigRepository::list(&*store, &owner).await.unwrap() });
    }
    while warm.join_next().await.is_some() {}

    let mut holder = AsyncPgConnection::establish(db.url()).await.unwrap();
    advisory_lock(&mut holder, "user:impatient", true).await;
    // The caller waits for the lock inside its transaction, then gives up.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(300),
        store.set_default(&owner, second, now()),
    )
    .await;
    assert!(gave_up.is_err(), "set-default was still waiting");
    advisory_lock(&mut holder, "user:impatient", false).await;

    let again = tokio::time::timeout(
        Duration::from_secs(5),
        store.set_default(&owner, second, now()),
    )
    .await
    .expect("the owner is not left locked")
    .unwrap();
    assert!(again.is_default);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rows: Vec<Stuck> = diesel::sql_query(
        "SELECT count(*) AS stuck FROM pg_stat_activity WHERE datname = current_database() \
         AND (state LIKE 'idle in transaction%' OR wait_event_type = 'Lock')",
    )
    .load(&mut holder)
    .await
    .unwrap();
    assert_eq!(
        rows[0].stuck, 0,
        "no connection is left inside a transaction"
    );
}

/// Killing every pooled connection (idle, and then repeatedly while tasks hammer the store)
/// costs no failed operation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connections_cost_no_failed_operation() {
    let (db, store) = migrated().await;
    let owner = user("failover");
    let mut ids = Vec::new();
    for name in ["openai", "anthropic", "gemini"] {
        ids.push(
            store
                .insert(new_config(&owner, name, now()))
                .await
                .unwrap()
                .id,
        );
    }
    // Fill the pool, then kill every connection while idle.
    let mut warm = JoinSet::new();
    for _ in 0..4 {
        let store = store.clone();
        let owner = owner.clone();
        warm.spawn(async move { ConfigRepository::list(&*store, &owner).await.unwrap() });
    }
    while warm.join_next().await.is_some() {}
    assert!(
        db.terminate_connections().await >= 1,
        "the pool held connections"
    );
    assert_eq!(
        ConfigRepository::list(&*store, &owner).await.unwrap().len(),
        3
    );
    store.set_default(&owner, ids[1], now()).await.unwrap();
    store
        .insert(new_config(&owner, "mistral", now()))
        .await
        .unwrap();
    store.ping().await.unwrap();

    // Now kill them again and again while eight tasks are using them. Each round waits
    // until every task finished two more calls, so every call caught by a kill (and its
    // one retry) is over before the next kill: each call meets at most one failure.
    const TASKS: usize = 8;
    let stop = Arc::new(AtomicBool::new(false));
    let progress: Arc<Vec<AtomicUsize>> =
        Arc::new((0..TASKS).map(|_| AtomicUsize::new(0)).collect());
    let mut tasks = JoinSet::new();
    for t in 0..TASKS {
        let (store, owner, ids) = (store.clone(), owner.clone(), ids.clone());
        let (stop, progress) = (stop.clone(), progress.clone());
        tasks.spawn(async move {
            let (mut calls, mut errors) = (0usize, Vec::new());
            while !AtomicBool::load(&stop, Ordering::SeqCst) {
                let result = if calls % 2 == 0 {
                    store
                        .set_default(&owner, ids[(t + calls) % ids.len()], now())
                        .await
                        .map(drop)
                } else {
                    ConfigRepository::list(&*store, &owner).await.map(drop)
                };
                if let Err(e) = result {
                    errors.push(e.to_string());
                }
                calls += 1;
                progress[t].store(calls, Ordering::SeqCst);
            }
            (calls, errors)
        });
    }
    let mut killed = 0;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let before: Vec<usize> = progress
            .iter()
            .map(|p| AtomicUsize::load(p, Ordering::SeqCst))
            .collect();
        killed += db.terminate_connections().await;
        let deadline = Instant::now() + Duration::from_secs(60);
        while progress
            .iter()
            .zip(&before)
            .any(|(p, b)| AtomicUsize::load(p, Ordering::SeqCst) < b + 2)
        {
            assert!(
                Instant::now() < deadline,
                "the tasks stopped making progress"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    stop.store(true, Ordering::SeqCst);
    let (mut calls, mut errors) = (0, Vec::new());
    while let Some(joined) = tasks.join_next().await {
        let (c, e) = joined.unwrap();
        calls += c;
        errors.extend(e);
    }
    assert!(killed >= 4, "connections were killed mid-run ({killed})");
    assert!(calls >= 4 * 2 * TASKS, "the tasks ran ({calls} calls)");
    assert!(
        errors.is_empty(),
        "{} of {calls} calls failed: {:?}",
        errors.len(),
        errors.get(..1)
    );
    let all = ConfigRepository::list(&*store, &owner).await.unwrap();
    assert_eq!(all.iter().filter(|c| c.is_default).count(), 1);
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_and_the_password_stays_out() {
    let url = "postgres://postgres:hunter2-secret@127.0.0.1:1/postgres";
    let err = PostgresStore::connect(url).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    let err = run_migrations(url).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_status_counts_connections_and_waiters() {
    let (_db, store) = migrated().await;
    let status = store.pool_status();
    assert_eq!(status.max_size, 4);
    assert!(status.open >= 1 && status.idle <= status.open, "{status:?}");
    let owner = user("busy");
    let mut tasks = JoinSet::new();
    for _ in 0..16 {
        let (store, owner) = (store.clone(), owner.clone());
        tasks.spawn(async move { ConfigRepository::list(&*store, &owner).await.unwrap() });
    }
    while tasks.join_next().await.is_some() {}
    let after = store.pool_status();
    assert!(after.open <= 4 && after.waiting == 0, "{after:?}");
}
