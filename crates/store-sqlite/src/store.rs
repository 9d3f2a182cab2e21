//! [`SqliteStore`]: every repository port of the domain on one SQLite database.

use std::collections::BTreeMap;
use std::fmt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::result::ConnectionError;
use diesel::sqlite::SqliteConnection;
use diesel::upsert::excluded;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, SimpleAsyncConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use llm_settings_domain::document::StoredDocument;
use llm_settings_domain::ports::{
    AuditLog, Clock, ConfigRepository, SettingsDocumentRepository, SystemClock,
    TaskAssignmentRepository,
};
use llm_settings_domain::{
    AuditEvent, ConfigId, ConfigWrite, Error, NewProviderConfig, Owner, ProviderConfig, ProviderId,
    Result, SealedSecret, TaskAssignment, TaskName, TestRecord, Timestamp,
};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::error::{from_diesel, StoreError};
use crate::rows::{
    assemble, secret_rows, settings_json, AuditRow, ConfigChanges, ConfigRow, NewAuditRow,
    NewConfigRow, OwnerKey, SecretRow, TaskRow, TestColumns,
};
use crate::schema::{
    audit_events, master_key_checks, provider_config_secrets, provider_configs, settings_documents,
    task_assignments,
};

/// The SQL migrations of `migrations/sqlite`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// How long a statement waits for another process's write lock before giving up.
const BUSY_TIMEOUT_MS: u64 = 5_000;
/// How long an operation waits for a pooled connection.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections to a database file: readers run in parallel next to the one writer.
const FILE_POOL_SIZE: usize = 4;

type Conn = SyncConnectionWrapper<SqliteConnection>;

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
pub struct SqliteStore {
    pool: Pool<Conn>,
    writer: Mutex<()>,
    location: Location,
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

fn pool_error(err: impl fmt::Display) -> Error {
    Error::Unavailable(format!("no SQLite connection could be opened: {err}"))
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
        let _writer = self.writer.lock().await;
        self.blocking(|c| {
            c.run_pending_migrations(MIGRATIONS)
                .map(|done| done.iter().map(ToString::to_string).collect())
                .map_err(|e| migration_error(&*e))
        })
        .await
    }

    /// Reverts every applied migration, newest first (leaves an empty database).
    pub async fn revert_all_migrations(&self) -> Result<Vec<String>> {
        let _writer = self.writer.lock().await;
        self.blocking(|c| {
            c.revert_all_migrations(MIGRATIONS)
                .map(|done| done.iter().map(ToString::to_string).collect())
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

    /// Every stored master-key check as `(key id, check value)`, ordered by key id.
    pub async fn key_checks(&self) -> Result<Vec<(String, String)>> {
        self.blocking(|c| {
            Ok(master_key_checks::table
                .select((master_key_checks::key_id, master_key_checks::check_value))
                .order(master_key_checks::key_id)
                .load(c)?)
        })
        .await
    }

    /// Records the check value of a master key. Saving the same value again is a no-op;
    /// a different value for a known key id is a `Conflict` (the stored one is kept).
    pub async fn save_key_check(&self, key_id: &str, check_value: &str) -> Result<()> {
        let (key_id, check_value) = (key_id.to_owned(), check_value.to_owned());
        let now = SystemClock.now().unix_micros();
        self.write(move |c| {
            diesel::insert_into(master_key_checks::table)
                .values((
                    master_key_checks::key_id.eq(&key_id),
                    master_key_checks::check_value.eq(&check_value),
                    master_key_checks::created_at.eq(now),
                ))
                .on_conflict_do_nothing()
                .execute(c)?;
            let stored: String = master_key_checks::table
                .find(&key_id)
                .select(master_key_checks::check_value)
                .first(c)?;
            if stored == check_value {
                Ok(())
            } else {
                Err(Error::Conflict(format!(
                    "a different check value is already stored for master key {key_id}"
                ))
                .into())
            }
        })
        .await
    }

    async fn checkout(&self) -> Result<Object<Conn>> {
        match tokio::time::timeout(CHECKOUT_TIMEOUT, self.pool.get()).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(err)) => Err(pool_error(err)),
            Err(_) => Err(Error::Unavailable(
                "timed out waiting for a SQLite connection".into(),
            )),
        }
    }

    /// Runs `op` on a pooled connection on the blocking thread pool. The blocking task runs
    /// to completion even if the caller goes away, so no transaction is left half done.
    async fn blocking<T, F>(&self, op: F) -> Result<T>
    where
        F: FnOnce(&mut SqliteConnection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let mut conn = self.checkout().await?;
        match conn.spawn_blocking(move |c| Ok(op(c))).await {
            Ok(result) => result.map_err(StoreError::into_domain),
            Err(err) => Err(from_diesel(err)),
        }
    }

    /// Runs `op` in a `BEGIN IMMEDIATE` transaction, one writer of this process at a time.
    async fn write<T, F>(&self, op: F) -> Result<T>
    where
        F: FnOnce(&mut SqliteConnection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let _writer = self.writer.lock().await;
        self.blocking(move |c| c.immediate_transaction(op)).await
    }
}

fn migration_error(err: &(dyn std::error::Error + Send + Sync)) -> StoreError {
    tracing::error!(error = %err, "SQLite migration failed");
    StoreError::Domain(Error::Internal(
        "the database schema could not be migrated".into(),
    ))
}

fn not_found(id: ConfigId) -> StoreError {
    StoreError::Domain(Error::NotFound(format!("config {id}")))
}

/// Loads configs of the owner (optionally one id) with their secrets.
fn load_owned(
    c: &mut SqliteConnection,
    owner: &OwnerKey,
    only: Option<i64>,
) -> Result<Vec<ProviderConfig>, StoreError> {
    let mut query = provider_configs::table
        .left_join(provider_config_secrets::table)
        .filter(provider_configs::owner_kind.eq(owner.kind))
        .filter(provider_configs::owner_id.eq(&owner.id))
        .select((ConfigRow::as_select(), Option::<SecretRow>::as_select()))
        .order((provider_configs::id, provider_config_secrets::field))
        .into_boxed();
    if let Some(id) = only {
        query = query.filter(provider_configs::id.eq(id));
    }
    assemble(query.load(c)?)
}

fn load_one(
    c: &mut SqliteConnection,
    owner: &OwnerKey,
    id: i64,
) -> Result<ProviderConfig, StoreError> {
    load_owned(c, owner, Some(id))?
        .pop()
        .ok_or_else(|| not_found(ConfigId(id)))
}

/// Clears the default flag on the owner's configs other than `keep`.
fn clear_other_defaults(
    c: &mut SqliteConnection,
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
    .execute(c)?;
    Ok(())
}

fn replace_secrets(
    c: &mut SqliteConnection,
    id: i64,
    secrets: &BTreeMap<String, llm_settings_domain::StoredSecret>,
) -> Result<(), StoreError> {
    diesel::delete(
        provider_config_secrets::table.filter(provider_config_secrets::config_id.eq(id)),
    )
    .execute(c)?;
    let rows = secret_rows(id, secrets)?;
    if !rows.is_empty() {
        diesel::insert_into(provider_config_secrets::table)
            .values(&rows)
            .execute(c)?;
    }
    Ok(())
}

fn insert_config(
    c: &mut SqliteConnection,
    new: &NewProviderConfig,
) -> Result<ProviderConfig, StoreError> {
    let owner = OwnerKey::of(&new.owner);
    let provider = new.provider.as_str();
    let existing: i64 = provider_configs::table
        .filter(provider_configs::owner_kind.eq(owner.kind))
        .filter(provider_configs::owner_id.eq(&owner.id))
        .count()
        .get_result(c)?;
    let taken = provider_configs::table
        .filter(provider_configs::owner_kind.eq(owner.kind))
        .filter(provider_configs::owner_id.eq(&owner.id))
        .filter(provider_configs::provider.eq(provider))
        .select(provider_configs::id)
        .first::<i64>(c)
        .optional()?;
    if taken.is_some() {
        return Err(Error::Conflict(format!(
            "a config for provider {provider} already exists for this owner"
        ))
        .into());
    }
    let is_default = new.enabled && (new.make_default || existing == 0);
    if is_default {
        clear_other_defaults(c, &owner, None)?;
    }
    let now = new.now.unix_micros();
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
        .get_result(c)?;
    replace_secrets(c, id, &new.secrets)?;
    load_one(c, &owner, id)
}

fn update_config(
    c: &mut SqliteConnection,
    write: &ConfigWrite,
) -> Result<ProviderConfig, StoreError> {
    let owner = OwnerKey::of(&write.owner);
    let id = write.id.0;
    let (version, was_default) = provider_configs::table
        .filter(provider_configs::id.eq(id))
        .filter(provider_configs::owner_kind.eq(owner.kind))
        .filter(provider_configs::owner_id.eq(&owner.id))
        .select((provider_configs::version, provider_configs::is_default))
        .first::<(i64, bool)>(c)
        .optional()?
        .ok_or_else(|| not_found(write.id))?;
    if version != write.expected_version {
        return Err(stale(write.id, write.expected_version).into());
    }
    let make_default = write.make_default && write.enabled;
    if make_default {
        clear_other_defaults(c, &owner, Some(id))?;
    }
    diesel::update(provider_configs::table.find(id))
        .set((
            ConfigChanges {
                settings: settings_json(&write.settings)?,
                model: write.model.as_ref().map(|m| m.as_str()),
                base_url: write.base_url.as_ref().map(|u| u.as_str()),
                enabled: write.enabled,
                is_default: write.enabled && (was_default || make_default),
                updated_at: write.now.unix_micros(),
            },
            provider_configs::version.eq(provider_configs::version + 1),
        ))
        .execute(c)?;
    replace_secrets(c, id, &write.secrets)?;
    load_one(c, &owner, id)
}

fn stale(id: ConfigId, expected: i64) -> Error {
    Error::Conflict(format!(
        "config {id} was changed since version {expected}; reload it and retry"
    ))
}

fn set_default_config(
    c: &mut SqliteConnection,
    owner: &OwnerKey,
    id: ConfigId,
    now: Timestamp,
) -> Result<ProviderConfig, StoreError> {
    let enabled: bool = provider_configs::table
        .filter(provider_configs::id.eq(id.0))
        .filter(provider_configs::owner_kind.eq(owner.kind))
        .filter(provider_configs::owner_id.eq(&owner.id))
        .select(provider_configs::enabled)
        .first(c)
        .optional()?
        .ok_or_else(|| not_found(id))?;
    if !enabled {
        return Err(
            Error::Conflict(format!("config {id} is disabled and cannot be the default")).into(),
        );
    }
    clear_other_defaults(c, owner, Some(id.0))?;
    diesel::update(provider_configs::table.find(id.0))
        .set((
            provider_configs::is_default.eq(true),
            provider_configs::version.eq(provider_configs::version + 1),
            provider_configs::updated_at.eq(now.unix_micros()),
        ))
        .execute(c)?;
    load_one(c, owner, id.0)
}

fn replace_sealed_bytes(
    c: &mut SqliteConnection,
    id: i64,
    version: i64,
    sealed: &BTreeMap<String, SealedSecret>,
) -> Result<bool, StoreError> {
    let current = provider_configs::table
        .find(id)
        .select(provider_configs::version)
        .first::<i64>(c)
        .optional()?;
    if current != Some(version) {
        return Ok(false);
    }
    let fields: Vec<String> = provider_config_secrets::table
        .filter(provider_config_secrets::config_id.eq(id))
        .select(provider_config_secrets::field)
        .load(c)?;
    if !sealed.keys().all(|f| fields.contains(f)) {
        return Ok(false);
    }
    for (field, bytes) in sealed {
        diesel::update(provider_config_secrets::table.find((id, field)))
            .set(provider_config_secrets::sealed.eq(bytes.as_bytes()))
            .execute(c)?;
    }
    Ok(true)
}

#[async_trait]
impl ConfigRepository for SqliteStore {
    async fn list(&self, owner: &Owner) -> Result<Vec<ProviderConfig>> {
        let owner = OwnerKey::of(owner);
        self.blocking(move |c| load_owned(c, &owner, None)).await
    }

    async fn get(&self, owner: &Owner, id: ConfigId) -> Result<Option<ProviderConfig>> {
        let owner = OwnerKey::of(owner);
        self.blocking(move |c| Ok(load_owned(c, &owner, Some(id.0))?.pop()))
            .await
    }

    async fn find_by_provider(
        &self,
        owner: &Owner,
        provider: ProviderId,
    ) -> Result<Option<ProviderConfig>> {
        let owner = OwnerKey::of(owner);
        self.blocking(move |c| {
            let id = provider_configs::table
                .filter(provider_configs::owner_kind.eq(owner.kind))
                .filter(provider_configs::owner_id.eq(&owner.id))
                .filter(provider_configs::provider.eq(provider.as_str()))
                .select(provider_configs::id)
                .first::<i64>(c)
                .optional()?;
            match id {
                Some(id) => Ok(load_owned(c, &owner, Some(id))?.pop()),
                None => Ok(None),
            }
        })
        .await
    }

    async fn find_default(&self, owner: &Owner) -> Result<Option<ProviderConfig>> {
        let owner = OwnerKey::of(owner);
        self.blocking(move |c| {
            let id = provider_configs::table
                .filter(provider_configs::owner_kind.eq(owner.kind))
                .filter(provider_configs::owner_id.eq(&owner.id))
                .filter(provider_configs::is_default.eq(true))
                .select(provider_configs::id)
                .first::<i64>(c)
                .optional()?;
            match id {
                Some(id) => Ok(load_owned(c, &owner, Some(id))?.pop()),
                None => Ok(None),
            }
        })
        .await
    }

    async fn insert(&self, config: NewProviderConfig) -> Result<ProviderConfig> {
        self.write(move |c| insert_config(c, &config)).await
    }

    async fn update(&self, write: ConfigWrite) -> Result<ProviderConfig> {
        self.write(move |c| update_config(c, &write)).await
    }

    async fn set_default(
        &self,
        owner: &Owner,
        id: ConfigId,
        now: Timestamp,
    ) -> Result<ProviderConfig> {
        let owner = OwnerKey::of(owner);
        self.write(move |c| set_default_config(c, &owner, id, now))
            .await
    }

    async fn delete(&self, owner: &Owner, id: ConfigId) -> Result<()> {
        let owner = OwnerKey::of(owner);
        self.write(move |c| {
            let deleted = diesel::delete(
                provider_configs::table
                    .filter(provider_configs::id.eq(id.0))
                    .filter(provider_configs::owner_kind.eq(owner.kind))
                    .filter(provider_configs::owner_id.eq(&owner.id)),
            )
            .execute(c)?;
            if deleted == 0 {
                return Err(not_found(id));
            }
            Ok(())
        })
        .await
    }

    async fn record_test(&self, owner: &Owner, id: ConfigId, record: TestRecord) -> Result<()> {
        let owner = OwnerKey::of(owner);
        self.write(move |c| {
            let changed = diesel::update(
                provider_configs::table
                    .filter(provider_configs::id.eq(id.0))
                    .filter(provider_configs::owner_kind.eq(owner.kind))
                    .filter(provider_configs::owner_id.eq(&owner.id)),
            )
            .set(TestColumns::of(&record))
            .execute(c)?;
            if changed == 0 {
                return Err(not_found(id));
            }
            Ok(())
        })
        .await
    }

    async fn page_all(&self, after: Option<ConfigId>, limit: u32) -> Result<Vec<ProviderConfig>> {
        self.blocking(move |c| {
            c.transaction(|c| {
                let ids: Vec<i64> = provider_configs::table
                    .filter(provider_configs::id.gt(after.map_or(i64::MIN, |a| a.0)))
                    .select(provider_configs::id)
                    .order(provider_configs::id)
                    .limit(i64::from(limit))
                    .load(c)?;
                let rows = provider_configs::table
                    .left_join(provider_config_secrets::table)
                    .filter(provider_configs::id.eq_any(&ids))
                    .select((ConfigRow::as_select(), Option::<SecretRow>::as_select()))
                    .order((provider_configs::id, provider_config_secrets::field))
                    .load(c)?;
                assemble(rows)
            })
        })
        .await
    }

    async fn replace_sealed(
        &self,
        id: ConfigId,
        version: i64,
        sealed: BTreeMap<String, SealedSecret>,
    ) -> Result<bool> {
        self.write(move |c| replace_sealed_bytes(c, id.0, version, &sealed))
            .await
    }
}

#[async_trait]
impl TaskAssignmentRepository for SqliteStore {
    async fn list(&self, owner: &Owner) -> Result<Vec<TaskAssignment>> {
        let owner = OwnerKey::of(owner);
        self.blocking(move |c| {
            task_assignments::table
                .filter(task_assignments::owner_kind.eq(owner.kind))
                .filter(task_assignments::owner_id.eq(&owner.id))
                .order(task_assignments::task)
                .select(TaskRow::as_select())
                .load(c)?
                .into_iter()
                .map(TaskRow::into_domain)
                .collect()
        })
        .await
    }

    async fn upsert(
        &self,
        owner: &Owner,
        assignments: Vec<TaskAssignment>,
        now: Timestamp,
    ) -> Result<()> {
        let owner = OwnerKey::of(owner);
        let now = now.unix_micros();
        self.write(move |c| {
            for a in &assignments {
                diesel::insert_into(task_assignments::table)
                    .values(TaskRow {
                        owner_kind: owner.kind.to_owned(),
                        owner_id: owner.id.clone(),
                        task: a.task.as_str().to_owned(),
                        provider: a.provider.as_str().to_owned(),
                        model: a.model.as_str().to_owned(),
                        created_at: now,
                        updated_at: now,
                    })
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
                    .execute(c)?;
            }
            Ok(())
        })
        .await
    }

    async fn delete(&self, owner: &Owner, task: &TaskName) -> Result<bool> {
        let owner = OwnerKey::of(owner);
        let task = task.as_str().to_owned();
        self.write(move |c| {
            let deleted =
                diesel::delete(task_assignments::table.find((owner.kind, &owner.id, &task)))
                    .execute(c)?;
            Ok(deleted > 0)
        })
        .await
    }
}

#[async_trait]
impl SettingsDocumentRepository for SqliteStore {
    async fn get(&self, owner: &Owner) -> Result<Option<StoredDocument>> {
        let owner = OwnerKey::of(owner);
        self.blocking(move |c| {
            let row = settings_documents::table
                .find((owner.kind, &owner.id))
                .select((settings_documents::document, settings_documents::version))
                .first::<(String, i64)>(c)
                .optional()?;
            row.map(|(text, version)| {
                Ok(StoredDocument {
                    document: serde_json::from_str(&text)
                        .map_err(|_| crate::error::corrupt("settings document"))?,
                    version,
                })
            })
            .transpose()
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
        let owner = OwnerKey::of(owner);
        let now = now.unix_micros();
        let text = serde_json::to_string(&document)
            .map_err(|_| Error::Internal("the settings document could not be encoded".into()))?;
        self.write(move |c| {
            let version = match expected_version {
                None => {
                    let inserted = diesel::insert_into(settings_documents::table)
                        .values((
                            settings_documents::owner_kind.eq(owner.kind),
                            settings_documents::owner_id.eq(&owner.id),
                            settings_documents::document.eq(&text),
                            settings_documents::version.eq(1),
                            settings_documents::created_at.eq(now),
                            settings_documents::updated_at.eq(now),
                        ))
                        .on_conflict_do_nothing()
                        .execute(c)?;
                    if inserted == 0 {
                        return Err(Error::Conflict(
                            "the settings document was created concurrently".into(),
                        )
                        .into());
                    }
                    1
                }
                Some(expected) => {
                    let changed = diesel::update(
                        settings_documents::table
                            .find((owner.kind, &owner.id))
                            .filter(settings_documents::version.eq(expected)),
                    )
                    .set((
                        settings_documents::document.eq(&text),
                        settings_documents::version.eq(expected + 1),
                        settings_documents::updated_at.eq(now),
                    ))
                    .execute(c)?;
                    if changed == 0 {
                        return Err(Error::Conflict(format!(
                            "the settings document is no longer at version {expected}"
                        ))
                        .into());
                    }
                    expected + 1
                }
            };
            Ok(StoredDocument { document, version })
        })
        .await
    }
}

#[async_trait]
impl AuditLog for SqliteStore {
    async fn record(&self, event: AuditEvent) -> Result<()> {
        self.write(move |c| {
            diesel::insert_into(audit_events::table)
                .values(NewAuditRow::of(&event))
                .execute(c)?;
            Ok(())
        })
        .await
    }

    async fn list(&self, owner: &Owner, limit: u32) -> Result<Vec<AuditEvent>> {
        let owner = OwnerKey::of(owner);
        self.blocking(move |c| {
            audit_events::table
                .filter(audit_events::owner_kind.eq(owner.kind))
                .filter(audit_events::owner_id.eq(&owner.id))
                .order((audit_events::at.desc(), audit_events::id.desc()))
                .limit(i64::from(limit))
                .select(AuditRow::as_select())
                .load(c)?
                .into_iter()
                .map(AuditRow::into_domain)
                .collect()
        })
        .await
    }
}
