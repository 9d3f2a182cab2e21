//! [`PostgresStore`]: every repository port of the domain on PostgreSQL.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sql_types::{Integer, Text};
use diesel::upsert::excluded;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, PoolableConnection, RecyclingMethod,
};
use diesel_async::scoped_futures::{ScopedBoxFuture, ScopedFutureExt};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use futures_util::FutureExt;
use llm_settings_domain::document::StoredDocument;
use llm_settings_domain::ports::{
    AuditLog, ConfigRepository, SettingsDocumentRepository, TaskAssignmentRepository,
};
use llm_settings_domain::{
    AuditEvent, ConfigId, ConfigWrite, Error, NewProviderConfig, Owner, ProviderConfig, ProviderId,
    Result, SealedSecret, StoredSecret, TaskAssignment, TaskName, TestRecord, Timestamp,
};
use serde_json::Value;

use crate::error::{from_diesel, StoreError};
use crate::rows::{
    assemble, secret_rows, settings_json, AuditRow, ConfigChanges, ConfigRow, NewAuditRow,
    NewConfigRow, OwnerKey, SecretRow, TaskRow, TestColumns,
};
use crate::schema::{
    audit_events, master_key_checks, provider_config_secrets, provider_configs, settings_documents,
    task_assignments,
};
use crate::tls::ConnectTarget;

/// The SQL migrations of `migrations/postgres`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// First key of the advisory locks this store takes ("LLMS"), so they cannot collide with
/// an application sharing the database that uses single-key locks or another namespace.
const LOCK_NAMESPACE: i32 = 0x4C4C_4D53;
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
pub struct PostgresStore {
    pool: Pool<AsyncPgConnection>,
    target: Arc<ConnectTarget>,
    checkout_timeout: Duration,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("pool", &self.pool.status())
            .finish_non_exhaustive()
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

    /// Every stored master-key check as `(key id, check value)`, ordered by key id.
    pub async fn key_checks(&self) -> Result<Vec<(String, String)>> {
        self.run(|c| {
            async move {
                Ok(master_key_checks::table
                    .select((master_key_checks::key_id, master_key_checks::check_value))
                    .order(master_key_checks::key_id)
                    .load(c)
                    .await?)
            }
            .scope_boxed()
        })
        .await
    }

    /// Records the check value of a master key. Saving the same value again is a no-op;
    /// a different value for a known key id is a `Conflict` (the stored one is kept).
    pub async fn save_key_check(&self, key_id: &str, check_value: &str) -> Result<()> {
        self.run(|c| {
            async move {
                diesel::insert_into(master_key_checks::table)
                    .values((
                        master_key_checks::key_id.eq(key_id),
                        master_key_checks::check_value.eq(check_value),
                    ))
                    .on_conflict_do_nothing()
                    .execute(c)
                    .await?;
                let stored: String = master_key_checks::table
                    .find(key_id)
                    .select(master_key_checks::check_value)
                    .first(c)
                    .await?;
                if stored == check_value {
                    Ok(())
                } else {
                    Err(Error::Conflict(format!(
                        "a different check value is already stored for master key {key_id}"
                    ))
                    .into())
                }
            }
            .scope_boxed()
        })
        .await
    }

    async fn checkout(&self) -> Result<Object<AsyncPgConnection>> {
        match tokio::time::timeout(self.checkout_timeout, self.pool.get()).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(err)) => Err(pool_error(err)),
            Err(_) => Err(Error::Unavailable(
                "timed out waiting for a PostgreSQL connection".into(),
            )),
        }
    }

    /// Runs `op` on a pooled connection. When the connection turns out to be dead (the
    /// server restarted, a failover, `pg_terminate_backend`), it is dropped together with
    /// every idle connection — they most likely share its fate — and `op` runs once more on
    /// a newly opened connection.
    async fn run<'a, T, F>(&self, op: F) -> Result<T>
    where
        F: for<'r> Fn(&'r mut AsyncPgConnection) -> ScopedBoxFuture<'a, 'r, Result<T, StoreError>>
            + Send
            + Sync
            + 'a,
        T: Send + 'a,
    {
        let mut conn = InUse::new(self.checkout().await?);
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

/// A checked-out connection that goes back to the pool only when its operation finished.
///
/// If the caller's future is dropped mid-operation (a client hung up), the connection may
/// still be inside a transaction holding an owner's lock; it is then closed instead, so the
/// server rolls the transaction back and releases the lock at once.
struct InUse {
    conn: Option<Object<AsyncPgConnection>>,
    finished: bool,
}

impl InUse {
    fn new(conn: Object<AsyncPgConnection>) -> Self {
        Self {
            conn: Some(conn),
            finished: false,
        }
    }

    fn get(&mut self) -> &mut AsyncPgConnection {
        match self.conn.as_mut() {
            Some(conn) => conn,
            // `conn` is only taken by `discard`, which consumes `self`.
            None => unreachable!("connection used after it was discarded"),
        }
    }

    /// The operation ran to its end: the connection may be reused.
    fn finish(mut self) {
        self.finished = true;
    }

    /// Closes the connection instead of returning it to the pool.
    fn discard(mut self) {
        if let Some(conn) = self.conn.take() {
            drop(Object::take(conn));
        }
    }
}

impl Drop for InUse {
    fn drop(&mut self) {
        if !self.finished {
            if let Some(conn) = self.conn.take() {
                drop(Object::take(conn));
            }
        }
    }
}

fn pool_error(err: impl fmt::Display) -> Error {
    Error::Unavailable(format!("no PostgreSQL connection could be opened: {err}"))
}

fn not_found(id: ConfigId) -> StoreError {
    StoreError::Domain(Error::NotFound(format!("config {id}")))
}

fn stale(id: ConfigId, expected: i64) -> StoreError {
    StoreError::Domain(Error::Conflict(format!(
        "config {id} was changed since version {expected}; reload it and retry"
    )))
}

/// Serialises every change to one owner's configs until the transaction ends, across all
/// connections and processes.
async fn lock_owner(c: &mut AsyncPgConnection, owner: &OwnerKey) -> Result<(), StoreError> {
    diesel::sql_query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind::<Integer, _>(LOCK_NAMESPACE)
        .bind::<Text, _>(format!("{}:{}", owner.kind, owner.id))
        .execute(c)
        .await?;
    Ok(())
}

/// Which of an owner's configs to load.
#[derive(Debug, Clone, Copy)]
enum Which<'a> {
    All,
    Id(i64),
    Provider(&'a str),
    Default,
}

/// Loads the owner's configs with their secrets in one statement.
async fn load(
    c: &mut AsyncPgConnection,
    owner: &OwnerKey,
    which: Which<'_>,
) -> Result<Vec<ProviderConfig>, StoreError> {
    let mut query = provider_configs::table
        .left_join(provider_config_secrets::table)
        .filter(provider_configs::owner_kind.eq(owner.kind))
        .filter(provider_configs::owner_id.eq(&owner.id))
        .select((ConfigRow::as_select(), Option::<SecretRow>::as_select()))
        .order((provider_configs::id, provider_config_secrets::field))
        .into_boxed();
    query = match which {
        Which::All => query,
        Which::Id(id) => query.filter(provider_configs::id.eq(id)),
        Which::Provider(name) => query.filter(provider_configs::provider.eq(name)),
        Which::Default => query.filter(provider_configs::is_default.eq(true)),
    };
    assemble(query.load(c).await?)
}

async fn load_one(
    c: &mut AsyncPgConnection,
    owner: &OwnerKey,
    id: i64,
) -> Result<ProviderConfig, StoreError> {
    load(c, owner, Which::Id(id))
        .await?
        .pop()
        .ok_or_else(|| not_found(ConfigId(id)))
}

/// Clears the default flag on the owner's configs other than `keep`.
async fn clear_other_defaults(
    c: &mut AsyncPgConnection,
    owner: &OwnerKey,
    keep: Option<i64>,
) -> Result<(), StoreError> {
    diesel::update(
        provider_configs::table
            .filter(provider_configs::owner_kind.eq(owner.kind))
            .filter(provider_configs::owner_id.eq(&owner.id))
            .filter(provider_configs::is_default.eq(true))
            .filter(provider_configs::id.ne(keep.unwrap_or(0))),
    )
    .set(provider_configs::is_default.eq(false))
    .execute(c)
    .await?;
    Ok(())
}

async fn replace_secrets(
    c: &mut AsyncPgConnection,
    id: i64,
    secrets: &BTreeMap<String, StoredSecret>,
) -> Result<(), StoreError> {
    diesel::delete(
        provider_config_secrets::table.filter(provider_config_secrets::config_id.eq(id)),
    )
    .execute(c)
    .await?;
    let rows = secret_rows(id, secrets)?;
    if !rows.is_empty() {
        diesel::insert_into(provider_config_secrets::table)
            .values(&rows)
            .execute(c)
            .await?;
    }
    Ok(())
}

async fn insert_config(
    c: &mut AsyncPgConnection,
    new: &NewProviderConfig,
) -> Result<ProviderConfig, StoreError> {
    let owner = OwnerKey::of(&new.owner);
    let provider = new.provider.as_str();
    lock_owner(c, &owner).await?;
    let taken: Vec<(String, i64)> = provider_configs::table
        .filter(provider_configs::owner_kind.eq(owner.kind))
        .filter(provider_configs::owner_id.eq(&owner.id))
        .select((provider_configs::provider, provider_configs::id))
        .load(c)
        .await?;
    if taken.iter().any(|(p, _)| p == provider) {
        return Err(Error::Conflict(format!(
            "a config for provider {provider} already exists for this owner"
        ))
        .into());
    }
    let is_default = new.enabled && (new.make_default || taken.is_empty());
    if is_default {
        clear_other_defaults(c, &owner, None).await?;
    }
    let now = new.now.as_offset();
    let id: i64 = diesel::insert_into(provider_configs::table)
        .values(NewConfigRow {
            owner_kind: owner.kind,
            owner_id: &owner.id,
            provider,
            settings: settings_json(&new.settings)?,
            model: new.model.as_ref().map(|m| m.as_str()),
            base_url: new.base_url.as_ref().map(|u| u.as_str()),
            enabled: new.enabled,
            is_default,
            version: 1,
            created_at: now,
            updated_at: now,
        })
        .returning(provider_configs::id)
        .get_result(c)
        .await?;
    replace_secrets(c, id, &new.secrets).await?;
    load_one(c, &owner, id).await
}

async fn update_config(
    c: &mut AsyncPgConnection,
    write: &ConfigWrite,
) -> Result<ProviderConfig, StoreError> {
    let owner = OwnerKey::of(&write.owner);
    let id = write.id.0;
    lock_owner(c, &owner).await?;
    let (version, was_default) = provider_configs::table
        .filter(provider_configs::id.eq(id))
        .filter(provider_configs::owner_kind.eq(owner.kind))
        .filter(provider_configs::owner_id.eq(&owner.id))
        .select((provider_configs::version, provider_configs::is_default))
        .for_update()
        .first::<(i64, bool)>(c)
        .await
        .optional()?
        .ok_or_else(|| not_found(write.id))?;
    if version != write.expected_version {
        return Err(stale(write.id, write.expected_version));
    }
    let make_default = write.make_default && write.enabled;
    if make_default {
        clear_other_defaults(c, &owner, Some(id)).await?;
    }
    diesel::update(provider_configs::table.find(id))
        .set((
            ConfigChanges {
                settings: settings_json(&write.settings)?,
                model: write.model.as_ref().map(|m| m.as_str()),
                base_url: write.base_url.as_ref().map(|u| u.as_str()),
                enabled: write.enabled,
                is_default: write.enabled && (was_default || make_default),
                updated_at: write.now.as_offset(),
            },
            provider_configs::version.eq(provider_configs::version + 1),
        ))
        .execute(c)
        .await?;
    replace_secrets(c, id, &write.secrets).await?;
    load_one(c, &owner, id).await
}

async fn set_default_config(
    c: &mut AsyncPgConnection,
    owner: &OwnerKey,
    id: ConfigId,
    now: Timestamp,
) -> Result<ProviderConfig, StoreError> {
    lock_owner(c, owner).await?;
    let enabled: bool = provider_configs::table
        .filter(provider_configs::id.eq(id.0))
        .filter(provider_configs::owner_kind.eq(owner.kind))
        .filter(provider_configs::owner_id.eq(&owner.id))
        .select(provider_configs::enabled)
        .for_update()
        .first(c)
        .await
        .optional()?
        .ok_or_else(|| not_found(id))?;
    if !enabled {
        return Err(
            Error::Conflict(format!("config {id} is disabled and cannot be the default")).into(),
        );
    }
    clear_other_defaults(c, owner, Some(id.0)).await?;
    diesel::update(provider_configs::table.find(id.0))
        .set((
            provider_configs::is_default.eq(true),
            provider_configs::version.eq(provider_configs::version + 1),
            provider_configs::updated_at.eq(now.as_offset()),
        ))
        .execute(c)
        .await?;
    load_one(c, owner, id.0).await
}

async fn replace_sealed_bytes(
    c: &mut AsyncPgConnection,
    id: i64,
    version: i64,
    sealed: &BTreeMap<String, SealedSecret>,
) -> Result<bool, StoreError> {
    let current = provider_configs::table
        .find(id)
        .select(provider_configs::version)
        .for_update()
        .first::<i64>(c)
        .await
        .optional()?;
    if current != Some(version) {
        return Ok(false);
    }
    let fields: Vec<String> = provider_config_secrets::table
        .filter(provider_config_secrets::config_id.eq(id))
        .select(provider_config_secrets::field)
        .load(c)
        .await?;
    if !sealed.keys().all(|f| fields.contains(f)) {
        return Ok(false);
    }
    for (field, bytes) in sealed {
        diesel::update(provider_config_secrets::table.find((id, field)))
            .set(provider_config_secrets::sealed.eq(bytes.as_bytes()))
            .execute(c)
            .await?;
    }
    Ok(true)
}

/// Runs `$body` (an expression over the connection `$c`) in a transaction.
macro_rules! transaction {
    ($c:ident => $body:expr) => {
        $c.transaction::<_, StoreError, _>(|$c| async move { $body.await }.scope_boxed())
    };
}

#[async_trait]
impl ConfigRepository for PostgresStore {
    async fn list(&self, owner: &Owner) -> Result<Vec<ProviderConfig>> {
        let owner = &OwnerKey::of(owner);
        self.run(|c| load(c, owner, Which::All).scope_boxed()).await
    }

    async fn get(&self, owner: &Owner, id: ConfigId) -> Result<Option<ProviderConfig>> {
        let owner = &OwnerKey::of(owner);
        self.run(|c| async move { Ok(load(c, owner, Which::Id(id.0)).await?.pop()) }.scope_boxed())
            .await
    }

    async fn find_by_provider(
        &self,
        owner: &Owner,
        provider: ProviderId,
    ) -> Result<Option<ProviderConfig>> {
        let owner = &OwnerKey::of(owner);
        self.run(|c| {
            async move {
                Ok(load(c, owner, Which::Provider(provider.as_str()))
                    .await?
                    .pop())
            }
            .scope_boxed()
        })
        .await
    }

    async fn find_default(&self, owner: &Owner) -> Result<Option<ProviderConfig>> {
        let owner = &OwnerKey::of(owner);
        self.run(|c| async move { Ok(load(c, owner, Which::Default).await?.pop()) }.scope_boxed())
            .await
    }

    async fn insert(&self, config: NewProviderConfig) -> Result<ProviderConfig> {
        let config = &config;
        self.run(|c| transaction!(c => insert_config(c, config)).scope_boxed())
            .await
    }

    async fn update(&self, write: ConfigWrite) -> Result<ProviderConfig> {
        let write = &write;
        self.run(|c| transaction!(c => update_config(c, write)).scope_boxed())
            .await
    }

    async fn set_default(
        &self,
        owner: &Owner,
        id: ConfigId,
        now: Timestamp,
    ) -> Result<ProviderConfig> {
        let owner = &OwnerKey::of(owner);
        self.run(|c| transaction!(c => set_default_config(c, owner, id, now)).scope_boxed())
            .await
    }

    async fn delete(&self, owner: &Owner, id: ConfigId) -> Result<()> {
        let owner = &OwnerKey::of(owner);
        self.run(|c| {
            async move {
                let deleted = diesel::delete(
                    provider_configs::table
                        .filter(provider_configs::id.eq(id.0))
                        .filter(provider_configs::owner_kind.eq(owner.kind))
                        .filter(provider_configs::owner_id.eq(&owner.id)),
                )
                .execute(c)
                .await?;
                if deleted == 0 {
                    return Err(not_found(id));
                }
                Ok(())
            }
            .scope_boxed()
        })
        .await
    }

    async fn record_test(&self, owner: &Owner, id: ConfigId, record: TestRecord) -> Result<()> {
        let owner = &OwnerKey::of(owner);
        let columns = &TestColumns::of(&record);
        self.run(|c| {
            async move {
                let changed = diesel::update(
                    provider_configs::table
                        .filter(provider_configs::id.eq(id.0))
                        .filter(provider_configs::owner_kind.eq(owner.kind))
                        .filter(provider_configs::owner_id.eq(&owner.id)),
                )
                .set(columns)
                .execute(c)
                .await?;
                if changed == 0 {
                    return Err(not_found(id));
                }
                Ok(())
            }
            .scope_boxed()
        })
        .await
    }

    async fn page_all(&self, after: Option<ConfigId>, limit: u32) -> Result<Vec<ProviderConfig>> {
        self.run(|c| {
            async move {
                let ids: Vec<i64> = provider_configs::table
                    .filter(provider_configs::id.gt(after.map_or(i64::MIN, |a| a.0)))
                    .select(provider_configs::id)
                    .order(provider_configs::id)
                    .limit(i64::from(limit))
                    .load(c)
                    .await?;
                let rows = provider_configs::table
                    .left_join(provider_config_secrets::table)
                    .filter(provider_configs::id.eq_any(&ids))
                    .select((ConfigRow::as_select(), Option::<SecretRow>::as_select()))
                    .order((provider_configs::id, provider_config_secrets::field))
                    .load(c)
                    .await?;
                assemble(rows)
            }
            .scope_boxed()
        })
        .await
    }

    async fn replace_sealed(
        &self,
        id: ConfigId,
        version: i64,
        sealed: BTreeMap<String, SealedSecret>,
    ) -> Result<bool> {
        let sealed = &sealed;
        self.run(|c| {
            transaction!(c => replace_sealed_bytes(c, id.0, version, sealed)).scope_boxed()
        })
        .await
    }
}

async fn upsert_tasks(
    c: &mut AsyncPgConnection,
    owner: &OwnerKey,
    assignments: &[TaskAssignment],
    now: Timestamp,
) -> Result<(), StoreError> {
    let now = now.as_offset();
    // Applied in order, so a task named twice keeps its last assignment (one statement
    // cannot touch a row twice).
    let last: BTreeMap<&str, &TaskAssignment> =
        assignments.iter().map(|a| (a.task.as_str(), a)).collect();
    let rows: Vec<TaskRow> = last
        .into_values()
        .map(|a| TaskRow {
            owner_kind: owner.kind.to_owned(),
            owner_id: owner.id.clone(),
            task: a.task.as_str().to_owned(),
            provider: a.provider.as_str().to_owned(),
            model: a.model.as_str().to_owned(),
            created_at: now,
            updated_at: now,
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    diesel::insert_into(task_assignments::table)
        .values(&rows)
        .on_conflict((
            task_assignments::owner_kind,
            task_assignments::owner_id,
            task_assignments::task,
        ))
        .do_update()
        .set((
            task_assignments::provider.eq(excluded(task_assignments::provider)),
            task_assignments::model.eq(excluded(task_assignments::model)),
            task_assignments::updated_at.eq(excluded(task_assignments::updated_at)),
        ))
        .execute(c)
        .await?;
    Ok(())
}

#[async_trait]
impl TaskAssignmentRepository for PostgresStore {
    async fn list(&self, owner: &Owner) -> Result<Vec<TaskAssignment>> {
        let owner = &OwnerKey::of(owner);
        self.run(|c| {
            async move {
                task_assignments::table
                    .filter(task_assignments::owner_kind.eq(owner.kind))
                    .filter(task_assignments::owner_id.eq(&owner.id))
                    .order(task_assignments::task)
                    .select(TaskRow::as_select())
                    .load(c)
                    .await?
                    .into_iter()
                    .map(TaskRow::into_domain)
                    .collect()
            }
            .scope_boxed()
        })
        .await
    }

    async fn upsert(
        &self,
        owner: &Owner,
        assignments: Vec<TaskAssignment>,
        now: Timestamp,
    ) -> Result<()> {
        let owner = &OwnerKey::of(owner);
        let assignments = &assignments;
        // One statement: atomic without an explicit transaction.
        self.run(|c| upsert_tasks(c, owner, assignments, now).scope_boxed())
            .await
    }

    async fn delete(&self, owner: &Owner, task: &TaskName) -> Result<bool> {
        let owner = &OwnerKey::of(owner);
        self.run(|c| {
            async move {
                let deleted = diesel::delete(task_assignments::table.find((
                    owner.kind,
                    &owner.id,
                    task.as_str(),
                )))
                .execute(c)
                .await?;
                Ok(deleted > 0)
            }
            .scope_boxed()
        })
        .await
    }
}

async fn put_document(
    c: &mut AsyncPgConnection,
    owner: &OwnerKey,
    document: &Value,
    expected_version: Option<i64>,
    now: Timestamp,
) -> Result<i64, StoreError> {
    let now = now.as_offset();
    match expected_version {
        None => {
            let inserted = diesel::insert_into(settings_documents::table)
                .values((
                    settings_documents::owner_kind.eq(owner.kind),
                    settings_documents::owner_id.eq(&owner.id),
                    settings_documents::document.eq(document),
                    settings_documents::version.eq(1),
                    settings_documents::created_at.eq(now),
                    settings_documents::updated_at.eq(now),
                ))
                .on_conflict_do_nothing()
                .execute(c)
                .await?;
            if inserted == 0 {
                return Err(Error::Conflict(
                    "the settings document was created concurrently".into(),
                )
                .into());
            }
            Ok(1)
        }
        Some(expected) => {
            let changed = diesel::update(
                settings_documents::table
                    .find((owner.kind, &owner.id))
                    .filter(settings_documents::version.eq(expected)),
            )
            .set((
                settings_documents::document.eq(document),
                settings_documents::version.eq(expected + 1),
                settings_documents::updated_at.eq(now),
            ))
            .execute(c)
            .await?;
            if changed == 0 {
                return Err(Error::Conflict(format!(
                    "the settings document is no longer at version {expected}"
                ))
                .into());
            }
            Ok(expected + 1)
        }
    }
}

#[async_trait]
impl SettingsDocumentRepository for PostgresStore {
    async fn get(&self, owner: &Owner) -> Result<Option<StoredDocument>> {
        let owner = &OwnerKey::of(owner);
        self.run(|c| {
            async move {
                let row = settings_documents::table
                    .find((owner.kind, &owner.id))
                    .select((settings_documents::document, settings_documents::version))
                    .first::<(Value, i64)>(c)
                    .await
                    .optional()?;
                Ok(row.map(|(document, version)| StoredDocument { document, version }))
            }
            .scope_boxed()
        })
        .await
    }

    async fn put(
        &self,
        owner: &Owner,
        document: Value,
        expected_version: Option<i64>,
        now: Timestamp,
    ) -> Result<StoredDocument> {
        let owner = &OwnerKey::of(owner);
        let doc = &document;
        let version = self
            .run(|c| put_document(c, owner, doc, expected_version, now).scope_boxed())
            .await?;
        Ok(StoredDocument { document, version })
    }
}

#[async_trait]
impl AuditLog for PostgresStore {
    async fn record(&self, event: AuditEvent) -> Result<()> {
        let row = &NewAuditRow::of(&event);
        self.run(|c| {
            async move {
                diesel::insert_into(audit_events::table)
                    .values(row)
                    .execute(c)
                    .await?;
                Ok(())
            }
            .scope_boxed()
        })
        .await
    }

    async fn list(&self, owner: &Owner, limit: u32) -> Result<Vec<AuditEvent>> {
        let owner = &OwnerKey::of(owner);
        self.run(|c| {
            async move {
                audit_events::table
                    .filter(audit_events::owner_kind.eq(owner.kind))
                    .filter(audit_events::owner_id.eq(&owner.id))
                    .order((audit_events::at.desc(), audit_events::id.desc()))
                    .limit(i64::from(limit))
                    .select(AuditRow::as_select())
                    .load(c)
                    .await?
                    .into_iter()
                    .map(AuditRow::into_domain)
                    .collect()
            }
            .scope_boxed()
        })
        .await
    }
}
