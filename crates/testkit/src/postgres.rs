//! A fresh PostgreSQL database per test, dropped afterwards (even when the test panics).
//!
//! The server comes from `TEST_DATABASE_URL` (default [`DEFAULT_TEST_DATABASE_URL`]). When
//! it cannot be reached the test fails with a message saying so; it is never skipped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

/// Where tests find PostgreSQL when `TEST_DATABASE_URL` is not set.
pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

static NEXT: AtomicU64 = AtomicU64::new(0);

/// The server URL tests use: `TEST_DATABASE_URL` or the default.
pub fn server_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_owned())
}

/// The URL without its password, for messages.
fn shown(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "<unparseable TEST_DATABASE_URL>".to_owned(),
    }
}

/// Connects to the test server's maintenance database or fails the test with a clear cause.
pub async fn admin_connection() -> AsyncPgConnection {
    let url = server_url();
    AsyncPgConnection::establish(&url)
        .await
        .unwrap_or_else(|err| {
            panic!(
                "PostgreSQL tests need a server, and none answered at {} ({err}). Start one \
             (e.g. `pg_ctlcluster --skip-systemctl-redirect 15 main start`) or point \
             TEST_DATABASE_URL at a server whose user may create databases.",
                shown(&url)
            )
        })
}

/// A database created for one test and dropped when this value is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
}

#[derive(QueryableByName)]
struct Killed {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    killed: i64,
}

impl TestDatabase {
    /// Creates an empty database with a unique name on the test server.
    pub async fn create() -> Self {
        let server = server_url();
        let mut admin = admin_connection().await;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "llm_settings_test_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let mut url = url::Url::parse(&server).unwrap_or_else(|e| {
            panic!(
                "TEST_DATABASE_URL must be a postgres:// URL ({e}): {}",
                shown(&server)
            )
        });
        url.set_path(&format!("/{name}"));
        Self {
            name,
            url: url.to_string(),
        }
    }

    /// The URL of this database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Terminates every server process connected to this database (`pg_terminate_backend`),
    /// as a failover or an administrator would; returns how many were terminated.
    pub async fn terminate_connections(&self) -> i64 {
        let mut admin = admin_connection().await;
        let rows: Vec<Killed> = diesel::sql_query(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::bigint AS killed \
             FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind::<diesel::sql_types::Text, _>(&self.name)
        .load(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("cannot terminate connections: {e}"));
        <[Killed]>::first(&rows).map_or(0, |r| r.killed)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = std::mem::take(&mut self.name);
        // Dropping runs inside the test's runtime; the cleanup gets a runtime of its own.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let mut last = String::new();
                // A pool still reconnecting can race the first attempt; try a few times.
                for _ in 0..5 {
                    let dropped = async {
                        let mut admin = AsyncPgConnection::establish(&server_url())
                            .await
                            .map_err(|e| e.to_string())?;
                        diesel::sql_query(format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        ))
                        .execute(&mut admin)
                        .await
                        .map(drop)
                        .map_err(|e| e.to_string())
                    }
                    .await;
                    match dropped {
                        Ok(()) => return Ok(()),
                        Err(e) => last = e,
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                Err(last)
            })
        });
        if let Ok(Err(err)) = cleanup.join() {
            eprintln!("warning: the test database was not dropped: {err}");
        }
    }
}
