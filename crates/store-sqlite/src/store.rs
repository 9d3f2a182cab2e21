//! [`SqliteStore`]: every repository port of the domain on one SQLite database.

use std::fmt;
use std::future::Future;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::result::ConnectionError;
use diesel::sqlite::SqliteConnection;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, SimpleAsyncConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use llm_settings_domain::{Error, Result};
use llm_settings_store_diesel::{
    checkout, from_diesel, ChainCache, InUse, Operation, PoolStatus, StoreError,
};
use tokio::sync::Mutex;

use crate::backend::Conn;

/// The SQL migrations of `migrations/sqlite`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// How long a statement waits for another process's write lock before giving up.
const BUSY_TIMEOUT_MS: u64 = 5_000;
/// How long an operation waits for a pooled connection.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections to a database file: readers run in parallel next to the one writer.
const FILE_POOL_SIZE: usize = 4;

/// Which way [`SqliteStore::migrate`] goes.
#[derive(Debug, Clone, Copy)]
enum Direction {
    Up,
    Down,
}

/// Where the database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Location {
    File(PathBuf),
    /// A private in-memory database; it lives as long as the store's one connection.
    Memory,
}

impl Location {
    /// Parses `sqlite://PATH`, `sqlite:PATH` or `sqlite::memory:`.
    fn parse(url: &str) -> Result<Self> {
        let rest = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| Error::invalid("database_url", "a SQLite URL starts with sqlite://"))?;
        match rest {
            ":memory:" => Ok(Self::Memory),
            "" => Err(Error::invalid(
                "database_url",
                "the SQLite URL names no file",
            )),
            path => Ok(Self::File(PathBuf::from(path))),
        }
    }

    fn connection_string(&self) -> String {
        match self {
            Self::File(path) => path.to_string_lossy().into_owned(),
            Self::Memory => ":memory:".to_owned(),
        }
    }
}

/// The embedded store: provider configs, task assignments, settings documents, the audit
/// trail and master-key checks in one SQLite database (WAL mode, foreign keys on).
///
/// Writes are serialised twice: within the process by an async lock (so they queue instead
/// of spinning on SQLite's busy handler) and across processes by `BEGIN IMMEDIATE` with a
/// busy timeout. Reads run in parallel on the other pooled connections.
///
/// Resolution chains are cached for up to 1 s ([`SqliteStore::with_chain_cache_ttl`]); a
/// write through this store is seen by the next read at once.
pub struct SqliteStore {
    pool: Pool<Conn>,
    writer: Mutex<()>,
    location: Location,
    /// Resolution chains read lately (see `with_chain_cache_ttl`).
    pub(crate) chain_cache: ChainCache,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("location", &self.location)
            .field("pool", &self.pool.status())
            .finish()
    }
}

/// Opens one connection with the settings every connection needs.
async fn establish(target: String) -> diesel::ConnectionResult<Conn> {
    let mut conn = Conn::establish(&target).await?;
    conn.batch_execute(&format!(
        "PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}; PRAGMA foreign_keys = ON; \
         PRAGMA synchronous = NORMAL;"
    ))
    .await
    .map_err(ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` — `sqlite://PATH` or
    /// `sqlite::memory:` — switches it to WAL mode and applies pending migrations.
    ///
    /// `Validation` for a malformed URL, `Unavailable` when the file cannot be opened.
    pub async fn connect(url: &str) -> Result<Self> {
        let location = Location::parse(url)?;
        if let Location::File(path) = &location {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| {
                    Error::Unavailable(format!("cannot create the database directory: {e}"))
                })?;
            }
            // Sealed secrets and hints live here: owner-only, like the keys beside it. SQLite
            // gives its WAL and shared-memory files the database file's permissions.
            let created = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path);
            match created {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(Error::Unavailable(format!(
                        "cannot create the database file: {e}"
                    )))
                }
            }
        }
        let mut config = ManagerConfig::<Conn>::default();
        // A checkout costs no round trip: a connection is only dropped when it is broken.
        config.recycling_method = RecyclingMethod::Fast;
        config.custom_setup = Box::new(|target| Box::pin(establish(target.to_owned())));
        let manager = AsyncDieselConnectionManager::<Conn>::new_with_config(
            location.connection_string(),
            config,
        );
        let size = match location {
            Location::File(_) => FILE_POOL_SIZE,
            Location::Memory => 1,
        };
        let pool = Pool::builder(manager)
            .max_size(size)
            .build()
            .map_err(|e| Error::Internal(format!("the SQLite pool could not be built: {e}")))?;
        let store = Self {
            pool,
            writer: Mutex::new(()),
            location,
            chain_cache: ChainCache::default(),
        };
        if matches!(store.location, Location::File(_)) {
            store
                .blocking(|c| {
                    c.batch_execute("PRAGMA journal_mode = WAL")?;
                    Ok(())
                })
                .await?;
        }
        store.run_migrations().await?;
        Ok(store)
    }

    /// Applies the embedded migrations not yet applied; returns their versions.
    pub async fn run_migrations(&self) -> Result<Vec<String>> {
        self.migrate(Direction::Up).await
    }

    /// Reverts every applied migration, newest first (leaves an empty database).
    pub async fn revert_all_migrations(&self) -> Result<Vec<String>> {
        self.migrate(Direction::Down).await
    }

    /// Applies or reverts migrations as the one writer; returns the versions touched.
    async fn migrate(&self, direction: Direction) -> Result<Vec<String>> {
        let _writer = self.writer.lock().await;
        self.blocking(move |c| {
            let done = match direction {
                Direction::Up => c.run_pending_migrations(MIGRATIONS),
                Direction::Down => c.revert_all_migrations(MIGRATIONS),
            };
            done.map(|done| done.iter().map(ToString::to_string).collect())
                .map_err(|e| migration_error(&*e))
        })
        .await
    }

    /// Checks that the database answers (for readiness probes).
    pub async fn ping(&self) -> Result<()> {
        self.blocking(|c| {
            c.batch_execute("SELECT 1")?;
            Ok(())
        })
        .await
    }

    /// One writer of this process at a time: writes queue here instead of spinning on
    /// SQLite's busy handler, while reads run in parallel on the other connections.
    pub(crate) async fn as_writer<T>(&self, write: impl Future<Output = T>) -> T {
        let _writer = self.writer.lock().await;
        write.await
    }

    /// The pool's figures now, for metrics.
    pub fn pool_status(&self) -> PoolStatus {
        self.pool.status().into()
    }

    async fn checkout(&self) -> Result<InUse<AsyncDieselConnectionManager<Conn>>> {
        let conn = checkout(&self.pool, CHECKOUT_TIMEOUT, "SQLite").await?;
        let abandon = match self.location {
            Location::File(_) => close_abandoned,
            Location::Memory => roll_back_abandoned,
        };
        Ok(InUse::new(conn, abandon))
    }

    /// Runs `op` with diesel's synchronous API (migrations, pragmas) on a pooled connection
    /// on the blocking thread pool.
    async fn blocking<T, F>(&self, op: F) -> Result<T>
    where
        F: FnOnce(&mut SqliteConnection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let mut conn = self.checkout().await?;
        let result = conn.get().spawn_blocking(move |c| Ok(op(c))).await;
        conn.finish();
        match result {
            Ok(result) => result.map_err(StoreError::into_domain),
            Err(err) => Err(from_diesel(err)),
        }
    }

    /// Runs `op` on a pooled connection.
    pub(crate) async fn run<'a, T: Send + 'a>(&self, op: impl Operation<'a, Conn, T>) -> Result<T> {
        let mut conn = self.checkout().await?;
        let result = op(conn.get()).await;
        conn.finish();
        result.map_err(StoreError::into_domain)
    }
}

fn migration_error(err: &(dyn std::error::Error + Send + Sync)) -> StoreError {
    tracing::error!(error = %err, "SQLite migration failed");
    StoreError::Domain(Error::Internal(
        "the database schema could not be migrated".into(),
    ))
}

/// Takes a file database's connection whose operation was abandoned mid-way (the caller went
/// away): it is closed, not reused. A statement still running on the blocking pool holds the
/// connection until it ends; closing then rolls back what it left open.
fn close_abandoned(conn: Object<Conn>) {
    drop(Object::take(conn));
}

/// Takes an in-memory database's connection whose operation was abandoned mid-way: the data
/// lives in that one connection, so it rolls back the open transaction once the running
/// statement is done, and returns the connection to the pool a moment later, once the
/// finished statement's thread has let go of it.
fn roll_back_abandoned(conn: Object<Conn>) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => drop(runtime.spawn(roll_back(conn))),
        Err(_) => drop(Object::take(conn)),
    }
}

/// How long a rolled-back in-memory connection rests before the pool may check it.
const SETTLE: std::time::Duration = std::time::Duration::from_millis(200);

async fn roll_back(mut conn: Object<Conn>) {
    let rolled_back = conn
        .spawn_blocking(|c| {
            while AnsiTransactionManager::transaction_manager_status_mut(c)
                .transaction_depth()?
                .is_some()
            {
                AnsiTransactionManager::rollback_transaction(c)?;
            }
            Ok(())
        })
        .await;
    if let Err(err) = rolled_back {
        tracing::warn!(error = %err, "an abandoned SQLite transaction could not be rolled back; closing its connection");
        drop(Object::take(conn));
        return;
    }
    tokio::time::sleep(SETTLE).await;
}
