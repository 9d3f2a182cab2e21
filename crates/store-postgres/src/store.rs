//! [`PostgresStore`]: every repository port of the domain on PostgreSQL.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, PoolableConnection, RecyclingMethod,
};
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use futures_util::FutureExt;
use llm_settings_domain::{Error, Result};
use llm_settings_store_diesel::{
    checkout, from_diesel, ChainCache, InUse, Operation, PoolStatus, StoreError,
};

use crate::backend::LOCK_NAMESPACE;
use crate::tls::ConnectTarget;

/// The SQL migrations of `migrations/postgres`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// Session advisory lock held while migrations run, so two starting nodes do not race.
const MIGRATION_LOCK: i32 = 1;

/// Pool settings of a [`PostgresStore`].
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Most connections the pool opens.
    pub max_connections: usize,
    /// How long an operation waits for a connection (including opening one).
    pub checkout_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            checkout_timeout: Duration::from_secs(10),
        }
    }
}

/// The production store: every repository port over one PostgreSQL database through a
/// diesel-async connection pool.
///
/// Checking a connection out costs no round trip (closed connections are noticed locally
/// and dropped); an operation that finds its connection dead is retried once on a new one.
/// Default changes are serialised per owner with a transaction-scoped advisory lock, so any
/// number of service processes can share the database.
///
/// Resolution chains are cached for up to 1 s ([`PostgresStore::with_chain_cache_ttl`]): a
/// write through this store is seen by its next read at once, a write by another process
/// within the TTL.
pub struct PostgresStore {
    pool: Pool<AsyncPgConnection>,
    target: Arc<ConnectTarget>,
    checkout_timeout: Duration,
    /// Resolution chains read lately (see `with_chain_cache_ttl`).
    pub(crate) chain_cache: ChainCache,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The target holds the password: only the pool's figures are shown.
        write!(f, "PostgresStore {{ pool: {:?}, .. }}", self.pool_status())
    }
}

/// Applies the embedded migrations not yet applied to the database at `database_url`, under
/// an advisory lock so concurrent callers take turns; returns the versions applied. The
/// connection honours the URL's `sslmode` and `sslrootcert` as the pool's do.
///
/// `Validation` for an unsupported `sslmode`, `Unavailable` when the database cannot be
/// reached (or its certificate is not trusted), `Internal` when a migration fails.
pub async fn run_migrations(database_url: &str) -> Result<Vec<String>> {
    migrate(&ConnectTarget::parse(database_url)?).await
}

async fn migrate(target: &ConnectTarget) -> Result<Vec<String>> {
    with_migration_connection(target, |conn| {
        conn.run_pending_migrations(MIGRATIONS)
            .map(|done| done.iter().map(ToString::to_string).collect())
    })
    .await
}

/// Reverts every applied migration of the database at `database_url`, newest first, leaving
/// none of this store's tables behind; returns the versions reverted.
pub async fn revert_all_migrations(database_url: &str) -> Result<Vec<String>> {
    let target = ConnectTarget::parse(database_url)?;
    with_migration_connection(&target, |conn| {
        conn.revert_all_migrations(MIGRATIONS)
            .map(|done| done.iter().map(ToString::to_string).collect())
    })
    .await
}

type MigrationConnection = AsyncConnectionWrapper<AsyncPgConnection>;
type MigrationResult<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Runs a migration harness call on a blocking thread, holding the migration lock.
async fn with_migration_connection<T, F>(target: &ConnectTarget, op: F) -> Result<T>
where
    F: FnOnce(&mut MigrationConnection) -> MigrationResult<T> + Send + 'static,
    T: Send + 'static,
{
    use diesel::connection::SimpleConnection;

    // Opened here, on the runtime that then drives it while the harness blocks on it.
    let conn = target.connect().await.map_err(|e| connection_error(&e))?;
    let task = tokio::task::spawn_blocking(move || {
        let mut conn = MigrationConnection::from(conn);
        conn.batch_execute(&format!(
            "SELECT pg_advisory_lock({LOCK_NAMESPACE}, {MIGRATION_LOCK})"
        ))
        .map_err(from_diesel)?;
        let result = op(&mut conn).map_err(|e| {
            tracing::error!(error = %e, "postgres migration failed");
            Error::Internal("the database schema could not be migrated".into())
        });
        // Closing the session releases the lock as well; unlocking keeps it explicit.
        let _ = conn.batch_execute(&format!(
            "SELECT pg_advisory_unlock({LOCK_NAMESPACE}, {MIGRATION_LOCK})"
        ));
        result
    });
    task.await
        .map_err(|_| Error::Internal("the migration task stopped unexpectedly".into()))?
}

fn connection_error(err: &diesel::ConnectionError) -> Error {
    // Connection errors name the host and the cause, never the password.
    Error::Unavailable(format!("cannot connect to PostgreSQL: {err}"))
}

impl PostgresStore {
    /// Opens a pool on `postgres://…` with default options and checks that the database
    /// answers. Does not migrate: call [`run_migrations`] (the `migrate` command) for that.
    ///
    /// TLS follows libpq's `sslmode` URL parameter: `disable`, `prefer` (the default: TLS
    /// when the server offers it), `require` (TLS, any certificate), `verify-ca` (the chain
    /// must lead to a root) or `verify-full` (and name the host). The roots are the PEM file
    /// `sslrootcert=PATH` names, else the web PKI roots built into the binary.
    ///
    /// `Validation` for an unsupported `sslmode`; `Unavailable` when no connection can be
    /// opened (refused, or the server's certificate not trusted) or `sslrootcert` cannot be
    /// read.
    pub async fn connect(database_url: &str) -> Result<Self> {
        Self::connect_with(database_url, PostgresOptions::default()).await
    }

    /// As [`PostgresStore::connect`], with explicit pool options.
    pub async fn connect_with(database_url: &str, options: PostgresOptions) -> Result<Self> {
        let target = Arc::new(ConnectTarget::parse(database_url)?);
        let mut config = ManagerConfig::<AsyncPgConnection>::default();
        // No `SELECT 1` on checkout: a closed connection is detected locally (its socket is
        // gone) and a connection that dies in use is replaced by the retry in `run`.
        config.recycling_method = RecyclingMethod::Fast;
        // Connections are opened from the parsed target (TLS as the URL asks), not the URL.
        let setup = target.clone();
        config.custom_setup = Box::new(move |_url| {
            let target = setup.clone();
            async move { target.connect().await }.boxed()
        });
        let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(
            database_url,
            config,
        );
        let pool = Pool::builder(manager)
            .max_size(options.max_connections.max(1))
            .build()
            .map_err(|e| Error::Internal(format!("the PostgreSQL pool could not be built: {e}")))?;
        let store = Self {
            pool,
            target,
            checkout_timeout: options.checkout_timeout,
            chain_cache: ChainCache::default(),
        };
        drop(store.checkout().await?);
        Ok(store)
    }

    /// Applies pending migrations to this store's database; see [`run_migrations`].
    pub async fn run_migrations(&self) -> Result<Vec<String>> {
        migrate(&self.target).await
    }

    /// Checks that the database answers (for readiness probes): one `SELECT 1`.
    pub async fn ping(&self) -> Result<()> {
        self.run(|c| {
            async move {
                diesel::sql_query("SELECT 1").execute(c).await?;
                Ok(())
            }
            .scope_boxed()
        })
        .await
    }

    /// The pool's figures now, for metrics.
    pub fn pool_status(&self) -> PoolStatus {
        self.pool.status().into()
    }

    async fn checkout(&self) -> Result<Object<AsyncPgConnection>> {
        checkout(&self.pool, self.checkout_timeout, "PostgreSQL").await
    }

    /// Runs `op` on a pooled connection. When the connection turns out to be dead (the
    /// server restarted, a failover, `pg_terminate_backend`), it is dropped together with
    /// every idle connection — they most likely share its fate — and `op` runs once more on
    /// a newly opened connection.
    pub(crate) async fn run<'a, T: Send + 'a>(
        &self,
        op: impl Operation<'a, AsyncPgConnection, T>,
    ) -> Result<T> {
        // An abandoned connection is closed, so the server rolls its transaction back and
        // releases the owner's lock at once.
        let mut conn = InUse::new(self.checkout().await?, |conn| drop(Object::take(conn)));
        match op(conn.get()).await {
            Err(err) if err.is_connection_lost() || PoolableConnection::is_broken(conn.get()) => {
                conn.discard();
                self.pool.retain(|_, _| false);
                tracing::warn!("a PostgreSQL connection was lost; retrying once on a new one");
                // Closed when dropped, also if the caller gives up mid-operation.
                let mut fresh = self.fresh_connection().await?;
                op(&mut fresh).await.map_err(StoreError::into_domain)
            }
            other => {
                conn.finish();
                other.map_err(StoreError::into_domain)
            }
        }
    }
}

impl PostgresStore {
    /// Writers run side by side: PostgreSQL's row and advisory locks order them.
    pub(crate) async fn as_writer<T>(&self, write: impl Future<Output = T>) -> T {
        write.await
    }

    /// A brand-new connection outside the pool, for the retry after a lost one: a pooled
    /// connection may have been dropped by the server in the same event (a failover or an
    /// administrator terminating every session) without the pool having noticed yet.
    async fn fresh_connection(&self) -> Result<AsyncPgConnection> {
        match tokio::time::timeout(self.checkout_timeout, self.target.connect()).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(err)) => Err(connection_error(&err)),
            Err(_) => Err(Error::Unavailable(
                "timed out reconnecting to PostgreSQL".into(),
            )),
        }
    }
}
