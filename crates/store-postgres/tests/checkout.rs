//! Checking a connection out of the pool costs no round trip: N operations are N statements
//! (its own test binary, because it installs process-wide query instrumentation).

#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use diesel::connection::{set_default_instrumentation, Instrumentation, InstrumentationEvent};
use llm_settings_domain::ports::ConfigRepository;
use llm_settings_store_postgres::{run_migrations, PostgresOptions, PostgresStore};
use llm_settings_testkit::fixtures::{new_config, now, user};
use llm_settings_testkit::postgres::TestDatabase;

static STATEMENTS: AtomicUsize = AtomicUsize::new(0);
static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn counting() -> Option<Box<dyn Instrumentation>> {
    Some(Box::new(|event: InstrumentationEvent<'_>| {
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            STATEMENTS.fetch_add(1, Ordering::SeqCst);
            if let Ok(mut seen) = SEEN.lock() {
                seen.push(query.to_string());
            }
        }
    }))
}

#[tokio::test]
async fn a_checkout_adds_no_statement() {
    set_default_instrumentation(counting).unwrap();
    let db = TestDatabase::create().await;
    run_migrations(db.url()).await.unwrap();
    let options = PostgresOptions {
        max_connections: 2,
        ..PostgresOptions::default()
    };
    let store = PostgresStore::connect_with(db.url(), options)
        .await
        .unwrap();
    let owner = user("counted");
    store
        .insert(new_config(&owner, "openai", now()))
        .await
        .unwrap();

    let before = STATEMENTS.load(Ordering::SeqCst);
    SEEN.lock().unwrap().clear();
    for _ in 0..50 {
        assert_eq!(
            ConfigRepository::list(&store, &owner).await.unwrap().len(),
            1
        );
    }
    let during = STATEMENTS.load(Ordering::SeqCst) - before;
    let seen = SEEN.lock().unwrap().clone();
    assert!(
        !seen
            .iter()
            .any(|q| q.trim_start().starts_with("SELECT 1") || q.contains("SELECT $1")),
        "a health-check query ran on checkout"
    );
    assert_eq!(during, 50, "one statement per list, nothing per checkout");
}
