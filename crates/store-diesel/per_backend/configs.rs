//! Provider configs: loading them with their secrets, every write step (one implementation,
//! used by the single-operation methods and by `apply`), atomic owner changes, resolution
//! chains and key rotation. Write steps expect to run inside a write transaction that holds the owner's
//! lock (see `Store::write_owner`).

use std::collections::BTreeMap;

use diesel::dsl;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Binary, Bool, Nullable, Text};
use diesel_async::RunQueryDsl;
use llm_settings_domain::{
    ChainQuery, ChainSnapshot, ChangeOutcome, ChangeStep, ConfigId, ConfigWrite, Error,
    NewProviderConfig, Owner, OwnerChange, ProviderConfig, SealedSecret, StoredSecret, TestRecord,
    Timestamp,
};
use llm_settings_store_diesel::{not_found, owner, stale, Operation, OwnerKey, StoreError};

use super::documents;
use super::rows::{
    assemble, assignment, secret_rows, to_json, ConfigFields, ConfigRow, NewConfigRow, SecretRow,
    TestColumns,
};
use super::schema::{page_configs, provider_config_secrets, provider_configs, task_assignments};
use crate::backend::{self, sql as types, Conn, Json, Time};

type OwnedBy<'a> = dsl::And<
    dsl::Eq<provider_configs::owner_kind, &'static str>,
    dsl::Eq<provider_configs::owner_id, &'a str>,
>;

/// The rows of `owner`'s configs.
fn owned_by(owner: &OwnerKey) -> OwnedBy<'_> {
    provider_configs::owner_kind
        .eq(owner.kind)
        .and(provider_configs::owner_id.eq(owner.id.as_str()))
}

type OwnedConfig<'a> = dsl::Filter<
    dsl::Filter<provider_configs::table, dsl::Eq<provider_configs::id, i64>>,
    OwnedBy<'a>,
>;

/// The row of `owner`'s config `id` (none when it belongs to another owner).
fn owned_config(owner: &OwnerKey, id: ConfigId) -> OwnedConfig<'_> {
    provider_configs::table
        .filter(provider_configs::id.eq(id.0))
        .filter(owned_by(owner))
}

/// Which of an owner's configs to load.
#[derive(Debug, Clone, Copy)]
pub(super) enum Which<'a> {
    All,
    Id(i64),
    Provider(&'a str),
    Default,
}

/// The owner's configs, ordered by id, with their secrets, in one statement.
pub(super) async fn load(
    c: &mut Conn,
    owner: &OwnerKey,
    which: Which<'_>,
) -> Result<Vec<ProviderConfig>, StoreError> {
    let mut query = provider_configs::table
        .left_join(provider_config_secrets::table)
        .filter(owned_by(owner))
        .select((ConfigRow::as_select(), Option::<SecretRow>::as_select()))
        .into_boxed();
    query = match which {
        Which::All => query,
        Which::Id(id) => query.filter(provider_configs::id.eq(id)),
        Which::Provider(name) => query.filter(provider_configs::provider.eq(name)),
        Which::Default => query.filter(provider_configs::is_default.eq(true)),
    };
    assemble(query.load(c).await?)
}

/// The owner's config `id`; `NotFound` when it has none.
pub(super) async fn load_one(
    c: &mut Conn,
    owner: &OwnerKey,
    id: i64,
) -> Result<ProviderConfig, StoreError> {
    load(c, owner, Which::Id(id))
        .await?
        .pop()
        .ok_or_else(|| not_found(ConfigId(id)))
}

/// Runs `step`, a write to one of the owner's configs, and reads that config back.
pub(super) async fn read_back<'a>(
    c: &mut Conn,
    owner: &OwnerKey,
    step: &impl Operation<'a, Conn, i64>,
) -> Result<ProviderConfig, StoreError> {
    let id = step(c).await?;
    load_one(c, owner, id).await
}

/// Clears the default flag on the owner's configs other than `keep`.
async fn clear_other_defaults(
    c: &mut Conn,
    owner: &OwnerKey,
    keep: Option<i64>,
) -> Result<(), StoreError> {
    diesel::update(
        provider_configs::table
            .filter(owned_by(owner))
            .filter(provider_configs::is_default.eq(true))
            .filter(provider_configs::id.ne(keep.unwrap_or(0))),
    )
    .set(provider_configs::is_default.eq(false))
    .execute(c)
    .await?;
    Ok(())
}

/// Replaces the secret rows of config `id`; returns the id.
async fn replace_secrets(
    c: &mut Conn,
    id: i64,
    secrets: &BTreeMap<String, StoredSecret>,
) -> Result<i64, StoreError> {
    diesel::delete(
        provider_config_secrets::table.filter(provider_config_secrets::config_id.eq(id)),
    )
    .execute(c)
    .await?;
    let rows = secret_rows(id, secrets)?;
    if !rows.is_empty() {
        backend::insert_rows(
            c,
            diesel::insert_into(provider_config_secrets::table).values(rows),
        )
        .await?;
    }
    Ok(id)
}

/// A step's config must belong to the change's owner; anything else is a bug in the caller.
fn same_owner(step: &Owner, owner: &OwnerKey) -> Result<(), StoreError> {
    if OwnerKey::of(step) == *owner {
        Ok(())
    } else {
        Err(Error::Internal("a change step names a config of another owner".into()).into())
    }
}

/// Inserts a config at version 1; returns its id. `Conflict` when the owner already has one
/// for the provider.
pub(super) async fn insert(
    c: &mut Conn,
    owner: &OwnerKey,
    new: &NewProviderConfig,
) -> Result<i64, StoreError> {
    let provider = new.provider.as_str();
    // One read answers both questions: is the provider taken, is this the first config.
    let taken: Vec<String> = provider_configs::table
        .filter(owned_by(owner))
        .select(provider_configs::provider)
        .load(c)
        .await?;
    if taken.iter().any(|p| p == provider) {
        return Err(Error::Conflict(format!(
            "a config for provider {provider} already exists for this owner"
        ))
        .into());
    }
    let is_default = new.enabled && (new.make_default || taken.is_empty());
    if is_default {
        clear_other_defaults(c, owner, None).await?;
    }
    let fields = ConfigFields::of(
        &new.settings,
        new.model.as_ref(),
        new.base_url.as_ref(),
        new.enabled,
        is_default,
        new.now,
    )?;
    let id: i64 = diesel::insert_into(provider_configs::table)
        .values(NewConfigRow {
            owner_kind: owner.kind,
            owner_id: &owner.id,
            provider,
            fields,
            version: 1,
            created_at: backend::time(new.now),
        })
        .returning(provider_configs::id)
        .get_result(c)
        .await?;
    replace_secrets(c, id, &new.secrets).await
}

/// What a write step checks about a config before it changes it.
#[derive(Debug, Queryable)]
struct ConfigState {
    version: i64,
    is_default: bool,
    enabled: bool,
}

/// The state of the owner's config `id`; `NotFound` when the owner has no such config.
async fn state(c: &mut Conn, owner: &OwnerKey, id: ConfigId) -> Result<ConfigState, StoreError> {
    owned_config(owner, id)
        .select((
            provider_configs::version,
            provider_configs::is_default,
            provider_configs::enabled,
        ))
        .first(c)
        .await
        .optional()?
        .ok_or_else(|| not_found(id))
}

/// Replaces a config's mutable fields and bumps its version; returns its id. `NotFound`, or
/// `Conflict` when the version moved.
pub(super) async fn update(
    c: &mut Conn,
    owner: &OwnerKey,
    write: &ConfigWrite,
) -> Result<i64, StoreError> {
    let id = write.id.0;
    let current = state(c, owner, write.id).await?;
    if current.version != write.expected_version {
        return Err(stale(write.id, write.expected_version));
    }
    let make_default = write.make_default && write.enabled;
    if make_default {
        clear_other_defaults(c, owner, Some(id)).await?;
    }
    let fields = ConfigFields::of(
        &write.settings,
        write.model.as_ref(),
        write.base_url.as_ref(),
        write.enabled,
        write.enabled && (current.is_default || make_default),
        write.now,
    )?;
    diesel::update(provider_configs::table.find(id))
        .set((
            fields,
            provider_configs::version.eq(provider_configs::version + 1),
        ))
        .execute(c)
        .await?;
    replace_secrets(c, id, &write.secrets).await
}

/// Makes the config the owner's default, clearing the others; bumps its version. `NotFound`,
/// or `Conflict` when it is disabled.
pub(super) async fn set_default(
    c: &mut Conn,
    owner: &OwnerKey,
    id: ConfigId,
    now: Timestamp,
) -> Result<i64, StoreError> {
    if !state(c, owner, id).await?.enabled {
        return Err(
            Error::Conflict(format!("config {id} is disabled and cannot be the default")).into(),
        );
    }
    clear_other_defaults(c, owner, Some(id.0)).await?;
    diesel::update(provider_configs::table.find(id.0))
        .set((
            provider_configs::is_default.eq(true),
            provider_configs::version.eq(provider_configs::version + 1),
            provider_configs::updated_at.eq(backend::time(now)),
        ))
        .execute(c)
        .await?;
    Ok(id.0)
}

/// Deletes the config, promoting nothing. `NotFound`, or `Conflict` when it is no longer at
/// `expected_version` (when one is given).
pub(super) async fn delete(
    c: &mut Conn,
    owner: &OwnerKey,
    id: ConfigId,
    expected_version: Option<i64>,
) -> Result<(), StoreError> {
    let mut target = diesel::delete(owned_config(owner, id)).into_boxed();
    if let Some(version) = expected_version {
        target = target.filter(provider_configs::version.eq(version));
    }
    if target.execute(c).await? > 0 {
        return Ok(());
    }
    match expected_version {
        Some(version) => {
            state(c, owner, id).await?;
            Err(stale(id, version))
        }
        None => Err(not_found(id)),
    }
}

/// `Conflict` when the owner has a default config.
async fn require_no_default(c: &mut Conn, owner: &OwnerKey) -> Result<(), StoreError> {
    let has_default: bool = diesel::select(dsl::exists(
        provider_configs::table
            .filter(owned_by(owner))
            .filter(provider_configs::is_default.eq(true)),
    ))
    .get_result(c)
    .await?;
    if has_default {
        return Err(Error::Conflict("the owner already has a default config".into()).into());
    }
    Ok(())
}

/// Runs one step of a change on `owner`'s configs.
pub(super) async fn step(
    c: &mut Conn,
    owner: &OwnerKey,
    step: &ChangeStep,
    now: Timestamp,
) -> Result<(), StoreError> {
    match step {
        ChangeStep::RequireNoDefault => require_no_default(c, owner).await,
        ChangeStep::Insert(new) => {
            same_owner(&new.owner, owner)?;
            insert(c, owner, new).await.map(drop)
        }
        ChangeStep::Update(write) => {
            same_owner(&write.owner, owner)?;
            update(c, owner, write).await.map(drop)
        }
        ChangeStep::Delete {
            id,
            expected_version,
        } => delete(c, owner, *id, Some(*expected_version)).await,
        ChangeStep::SetDefault { id } => set_default(c, owner, *id, now).await.map(drop),
    }
}

/// Every step of `change`, then its document; the owner's configs afterwards.
pub(super) async fn apply(
    c: &mut Conn,
    owner: &OwnerKey,
    change: &OwnerChange,
) -> Result<ChangeOutcome, StoreError> {
    for each in &change.steps {
        step(c, owner, each, change.now).await?;
    }
    let document = match &change.document {
        Some(write) => {
            let (document, expected) = (&write.document, write.expected_version);
            Some(documents::put(c, owner, document, expected, change.now).await?)
        }
        None => None,
    };
    let configs = load(c, owner, Which::All).await?;
    Ok(ChangeOutcome { configs, document })
}

/// Stores the outcome of the last connection test without bumping the version.
pub(super) async fn record_test(
    c: &mut Conn,
    owner: &OwnerKey,
    id: ConfigId,
    record: &TestRecord,
) -> Result<(), StoreError> {
    let changed = diesel::update(owned_config(owner, id))
        .set(TestColumns::of(record))
        .execute(c)
        .await?;
    if changed == 0 {
        return Err(not_found(id));
    }
    Ok(())
}

/// A page of configs of every owner after `after`, ordered by id, in one statement.
pub(super) async fn page_all(
    c: &mut Conn,
    after: Option<ConfigId>,
    limit: u32,
) -> Result<Vec<ProviderConfig>, StoreError> {
    let id = page_configs.field(provider_configs::id);
    let page = page_configs
        .filter(id.gt(after.map_or(i64::MIN, |a| a.0)))
        .select(id)
        .order(id)
        .limit(i64::from(limit));
    let rows = provider_configs::table
        .left_join(provider_config_secrets::table)
        .filter(provider_configs::id.eq_any(page))
        .select((ConfigRow::as_select(), Option::<SecretRow>::as_select()))
        .load(c)
        .await?;
    assemble(rows)
}

/// Swaps the sealed bytes of some secret fields if the config is still at `version`, under
/// its owner's lock so no concurrent update replaces the secrets in between.
pub(super) async fn replace_sealed(
    c: &mut Conn,
    id: i64,
    version: i64,
    sealed: &BTreeMap<String, SealedSecret>,
) -> Result<bool, StoreError> {
    let Some((kind, owner_id)) = provider_configs::table
        .find(id)
        .select((provider_configs::owner_kind, provider_configs::owner_id))
        .first::<(String, String)>(c)
        .await
        .optional()?
    else {
        return Ok(false);
    };
    backend::lock_owner(c, &OwnerKey::of(&owner(&kind, &owner_id)?)).await?;
    let current = provider_configs::table
        .find(id)
        .select(provider_configs::version)
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

/// A secret's field, sealed bytes and hints; NULL on a config without secrets and on an
/// assignment row.
type SecretColumns = (Option<String>, Option<Vec<u8>>, Option<Json>);
type ChainRow = (ConfigRow, SecretColumns, Option<String>);

/// Owners a chain statement always binds: user, instance, global.
const CHAIN_OWNERS: usize = 3;
/// The owner a shorter chain is padded with: no row has this kind.
const NO_OWNER: OwnerKey = OwnerKey {
    kind: "-",
    id: String::new(),
};

/// The settings of an assignment row dressed as a config row.
const EMPTY_OBJECT: BTreeMap<String, String> = BTreeMap::new();

/// The enabled configs (with their secrets) and the task's assignments of the chain's
/// owners, in ONE statement: the configs UNION ALL the assignments, each assignment dressed
/// as a config row (its owner, provider, model and times real, the rest fillers) and told
/// apart by its task column, which is NULL on config rows.
pub(super) async fn load_chain(
    c: &mut Conn,
    query: &ChainQuery,
) -> Result<ChainSnapshot, StoreError> {
    let owners: Vec<OwnerKey> = query.owners.iter().map(OwnerKey::of).collect();
    if owners.is_empty() {
        return Ok(ChainSnapshot::default());
    }
    // Always three owners, padded with one no row can have, so a chain of one, two or three
    // owners is the same statement: prepared once per connection (per provider and task
    // shape), never again.
    let mut bound = owners.clone();
    bound.resize(CHAIN_OWNERS.max(owners.len()), NO_OWNER.clone());
    // One `(kind = ? AND id = ?)` per owner, OR-ed: each is a lookup in the unique
    // (owner, provider) index. (Kind = ANY and id = ANY would match more pairs and read both
    // tables whole until they are large.)
    let mut configs = provider_configs::table
        .left_join(provider_config_secrets::table)
        .select((
            provider_configs::all_columns,
            (
                provider_config_secrets::field.nullable(),
                provider_config_secrets::sealed.nullable(),
                provider_config_secrets::hints.nullable(),
            ),
            None::<String>.into_sql::<Nullable<Text>>(),
        ))
        .into_boxed();
    for owner in &bound {
        configs = configs.or_filter(
            provider_configs::owner_kind
                .eq(owner.kind)
                .and(provider_configs::owner_id.eq(owner.id.as_str())),
        );
    }
    configs = configs.filter(provider_configs::enabled);
    if let Some(provider) = query.provider {
        configs = configs.filter(provider_configs::provider.eq(provider.as_str()));
    }
    let rows: Vec<ChainRow> = match &query.task {
        None => configs.load(c).await?,
        Some(task) => {
            // Bound values, not SQL literals: a literal would keep the statement out of
            // the prepared-statement cache and have it planned on every call.
            let mut assignments = task_assignments::table
                .select((
                    (
                        0_i64.into_sql::<BigInt>(),
                        task_assignments::owner_kind,
                        task_assignments::owner_id,
                        task_assignments::provider,
                        to_json(&EMPTY_OBJECT, "a filler")?.into_sql::<types::Json>(),
                        task_assignments::model.nullable(),
                        None::<String>.into_sql::<Nullable<Text>>(),
                        false.into_sql::<Bool>(),
                        false.into_sql::<Bool>(),
                        0_i64.into_sql::<BigInt>(),
                        None::<Time>.into_sql::<Nullable<types::Time>>(),
                        None::<bool>.into_sql::<Nullable<Bool>>(),
                        None::<i64>.into_sql::<Nullable<BigInt>>(),
                        None::<String>.into_sql::<Nullable<Text>>(),
                        None::<String>.into_sql::<Nullable<Text>>(),
                        task_assignments::created_at,
                        task_assignments::updated_at,
                    ),
                    (
                        None::<String>.into_sql::<Nullable<Text>>(),
                        None::<Vec<u8>>.into_sql::<Nullable<Binary>>(),
                        None::<Json>.into_sql::<Nullable<types::Json>>(),
                    ),
                    task_assignments::task.nullable(),
                ))
                .into_boxed();
            for owner in &bound {
                assignments = assignments.or_filter(
                    task_assignments::owner_kind
                        .eq(owner.kind)
                        .and(task_assignments::owner_id.eq(owner.id.as_str())),
                );
            }
            assignments = assignments.filter(task_assignments::task.eq(task.as_str()));
            configs.union_all(assignments).load(c).await?
        }
    };
    let mut snapshot = ChainSnapshot::default();
    let mut config_rows = Vec::new();
    for (row, secret, task) in rows {
        if !owners.iter().any(|o| o.is(&row.owner_kind, &row.owner_id)) {
            continue;
        }
        match task {
            None => {
                let secret = match secret {
                    (Some(field), Some(sealed), Some(hints)) => Some(SecretRow {
                        config_id: row.id,
                        field,
                        sealed,
                        hints,
                    }),
                    _ => None,
                };
                config_rows.push((row, secret));
            }
            Some(task) => snapshot.assignments.push((
                owner(&row.owner_kind, &row.owner_id)?,
                assignment(
                    task,
                    &row.provider,
                    row.model.as_deref().unwrap_or_default(),
                )?,
            )),
        }
    }
    snapshot.configs = assemble(config_rows)?;
    Ok(snapshot)
}
