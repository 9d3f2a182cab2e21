//! TLS to PostgreSQL as the URL's `sslmode` and `sslrootcert` ask, for the pool and the
//! migrations alike.
//!
//! The local test server has `ssl = on` with Debian's self-signed "snakeoil" certificate
//! (`CN=localhost`, its own issuer), which no built-in root trusts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use llm_settings_domain::ports::ConfigRepository;
use llm_settings_domain::Error;
use llm_settings_store_postgres::{
    revert_all_migrations, run_migrations, PostgresOptions, PostgresStore,
};
use llm_settings_testkit::fixtures::{new_config, now, user};
use llm_settings_testkit::postgres::TestDatabase;

const SNAKEOIL: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";
const PASSWORD: &str = "hunter2-secret";

/// `url` with `params` added to its query.
fn with(url: &str, params: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{params}")
}

/// `url` with a password in its user info (the test server trusts local users, so it is
/// never asked for: it is there to prove no message repeats it).
fn with_password(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    match rest.split_once('@') {
        Some((user, host)) if !user.contains(':') => {
            format!("{scheme}://{user}:{PASSWORD}@{host}")
        }
        _ => url.to_owned(),
    }
}

/// The migrations in `migrations/postgres`.
const MIGRATION_COUNT: usize = 5;

#[derive(QueryableByName)]
struct Encryption {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    encrypted: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    total: i64,
}

/// How many of the other sessions on the test database are encrypted, out of how many:
/// seen from a separate (plain) connection through `pg_stat_ssl`.
async fn sessions(db: &TestDatabase) -> (i64, i64) {
    let mut observer = AsyncPgConnection::establish(db.url()).await.unwrap();
    let row: Encryption = diesel::sql_query(
        "SELECT count(*) FILTER (WHERE s.ssl) AS encrypted, count(*) AS total \
         FROM pg_stat_activity a JOIN pg_stat_ssl s ON s.pid = a.pid \
         WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()",
    )
    .get_result(&mut observer)
    .await
    .unwrap();
    (row.encrypted, row.total)
}

/// Migrates through `url`, opens a store on it and proves it reads and writes.
async fn store_works(url: &str) -> PostgresStore {
    assert_eq!(run_migrations(url).await.unwrap().len(), MIGRATION_COUNT);
    let store = PostgresStore::connect_with(
        url,
        PostgresOptions {
            max_connections: 2,
            ..PostgresOptions::default()
        },
    )
    .await
    .unwrap();
    let owner = user("tls");
    store
        .insert(new_config(&owner, "openai", now()))
        .await
        .unwrap();
    assert_eq!(
        ConfigRepository::list(&store, &owner).await.unwrap().len(),
        1
    );
    store
}

fn unavailable_saying(err: &Error, words: &str) {
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    let shown = err.to_string();
    assert!(shown.contains(words), "{shown}");
    assert!(!shown.contains(PASSWORD), "{shown}");
}

/// Encrypted and total store sessions after a store opened through `params` worked.
async fn sessions_through(params: Option<&str>) -> (i64, i64) {
    let db = TestDatabase::create().await;
    let url = params.map_or_else(|| db.url().to_owned(), |p| with(db.url(), p));
    let store = store_works(&url).await;
    let counted = sessions(&db).await;
    drop(store);
    counted
}

#[tokio::test]
async fn require_encrypts_every_pooled_connection() {
    let (encrypted, total) = sessions_through(Some("sslmode=require")).await;
    assert!(total >= 1, "the pool holds a connection");
    assert_eq!(encrypted, total, "every store connection is encrypted");
}

#[tokio::test]
async fn disable_stays_plain() {
    let (encrypted, total) = sessions_through(Some("sslmode=disable")).await;
    assert!(total >= 1, "the pool holds a connection");
    assert_eq!(encrypted, 0, "no store connection is encrypted");
}

#[tokio::test]
async fn without_sslmode_tls_is_preferred() {
    let (encrypted, total) = sessions_through(None).await;
    assert!(total >= 1);
    assert_eq!(encrypted, total, "the server offers TLS, so it is used");
}

#[tokio::test]
async fn migrations_run_and_revert_over_tls() {
    let db = TestDatabase::create().await;
    let url = with(db.url(), "sslmode=require");
    assert_eq!(run_migrations(&url).await.unwrap().len(), MIGRATION_COUNT);
    assert_eq!(
        revert_all_migrations(&url).await.unwrap().len(),
        MIGRATION_COUNT
    );
    let store = PostgresStore::connect(&url).await.unwrap();
    // The `migrate` command's path.
    assert_eq!(store.run_migrations().await.unwrap().len(), MIGRATION_COUNT);
    assert!(store.run_migrations().await.unwrap().is_empty());
    store.ping().await.unwrap();
}

#[tokio::test]
async fn verify_full_refuses_a_certificate_no_root_trusts() {
    let db = TestDatabase::create().await;
    let url = with(&with_password(db.url()), "sslmode=verify-full");
    let err = PostgresStore::connect(&url).await.unwrap_err();
    unavailable_saying(&err, "certificate is not trusted");
    unavailable_saying(&err, "sslrootcert");
    // The migration path verifies the same way (a plain connection would have succeeded).
    let err = run_migrations(&url).await.unwrap_err();
    unavailable_saying(&err, "certificate is not trusted");
    let err = revert_all_migrations(&with(db.url(), "sslmode=verify-ca"))
        .await
        .unwrap_err();
    unavailable_saying(&err, "certificate is not trusted");
}

#[tokio::test]
async fn verify_ca_trusts_the_named_root_whatever_the_host_name() {
    let db = TestDatabase::create().await;
    // The certificate names `localhost`; the URL says 127.0.0.1.
    let url = with(
        &with_password(db.url()),
        &format!("sslmode=verify-ca&sslrootcert={SNAKEOIL}"),
    );
    if std::fs::read(SNAKEOIL).is_ok() {
        let store = store_works(&url).await;
        let (encrypted, total) = sessions(&db).await;
        assert!(total >= 1);
        assert_eq!(encrypted, total);
        drop(store);
    } else {
        // Without the server's certificate on this machine, the clear error is all there is.
        let err = PostgresStore::connect(&url).await.unwrap_err();
        unavailable_saying(&err, &format!("sslrootcert {SNAKEOIL}"));
    }
}

#[tokio::test]
async fn verify_full_checks_the_host_name_against_the_named_root() {
    if std::fs::read(SNAKEOIL).is_err() {
        // Covered by `verify_ca_trusts_the_named_root_whatever_the_host_name`.
        return;
    }
    let db = TestDatabase::create().await;
    let params = format!("sslmode=verify-full&sslrootcert={SNAKEOIL}");
    let by_address = with(&with_password(db.url()), &params);
    assert!(
        by_address.contains("@127.0.0.1:"),
        "this test expects the local server: {}",
        db.url()
    );
    let err = PostgresStore::connect(&by_address).await.unwrap_err();
    unavailable_saying(&err, "does not name the host");
    // `require` with a root file verifies the chain, as libpq does: it connects.
    let required = with(db.url(), &format!("sslmode=require&sslrootcert={SNAKEOIL}"));
    PostgresStore::connect(&required).await.unwrap();

    let by_name = by_address.replace("@127.0.0.1:", "@localhost:");
    store_works(&by_name).await;
}

#[tokio::test]
async fn a_missing_root_file_is_named() {
    let db = TestDatabase::create().await;
    let url = with(
        &with_password(db.url()),
        "sslmode=verify-full&sslrootcert=/nonexistent/llm-settings-root.crt",
    );
    let err = PostgresStore::connect(&url).await.unwrap_err();
    unavailable_saying(&err, "sslrootcert /nonexistent/llm-settings-root.crt");
    let err = run_migrations(&url).await.unwrap_err();
    unavailable_saying(&err, "sslrootcert /nonexistent/llm-settings-root.crt");
}

#[tokio::test]
async fn an_unknown_sslmode_is_a_validation_error() {
    let db = TestDatabase::create().await;
    let url = with(&with_password(db.url()), "sslmode=bogus");
    for err in [
        PostgresStore::connect(&url).await.unwrap_err(),
        run_migrations(&url).await.unwrap_err(),
        revert_all_migrations(&url).await.unwrap_err(),
    ] {
        match &err {
            Error::Validation { field, message } => {
                assert_eq!(field.as_deref(), Some("sslmode"));
                assert!(message.contains("sslmode \"bogus\""), "{message}");
                assert!(message.contains("verify-full"), "{message}");
                assert!(!message.contains(PASSWORD), "{message}");
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_tls_connection_is_replaced() {
    let db = TestDatabase::create().await;
    let store = store_works(&with(db.url(), "sslmode=require")).await;
    assert!(db.terminate_connections().await >= 1);
    let owner = user("tls");
    assert_eq!(
        ConfigRepository::list(&store, &owner).await.unwrap().len(),
        1
    );
    store.ping().await.unwrap();
    let (encrypted, total) = sessions(&db).await;
    assert!(total >= 1);
    assert_eq!(encrypted, total, "the replacement is encrypted too");
}
