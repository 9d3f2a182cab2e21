//! Private row types and their conversion to and from the domain. Diesel derives live here,
//! never on domain types; time and JSON columns take the backend's types.

use std::borrow::Cow;
use std::collections::BTreeMap;

use diesel::prelude::*;
use llm_settings_domain::values::BaseUrl;
use llm_settings_domain::{
    AuditAction, AuditEvent, AuditOutcome, AuditRecord, CallStats, ConfigId, Error, FailureClass,
    InstanceId, ModelName, ProviderConfig, SealedSecret, SecretHints, StoredSecret, TaskAssignment,
    TaskName, TestRecord, Timestamp, UserId,
};
use llm_settings_store_diesel::{corrupt, model, owner, provider, text, StoreError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::schema::{audit_events, provider_config_secrets, provider_configs, task_assignments};
use crate::backend::{self, Db, Json, Time};

/// Encodes `value` for a JSON column.
pub(super) fn to_json<T: Serialize + ?Sized>(value: &T, what: &str) -> Result<Json, StoreError> {
    backend::json(value)
        .map_err(|_| StoreError::Domain(Error::Internal(format!("{what} could not be encoded"))))
}

/// Decodes a JSON column.
pub(super) fn from_json<T: DeserializeOwned>(value: Json, what: &str) -> Result<T, StoreError> {
    backend::from_json(value).map_err(|_| corrupt(what))
}

/// A stored count, 0 when absent or negative.
fn optional_u64(value: Option<i64>) -> u64 {
    value.and_then(|v| u64::try_from(v).ok()).unwrap_or(0)
}

/// A count as stored (BIGINT), saturating.
fn stored_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A `provider_configs` row, its fields in column order (the chain query selects
/// `all_columns`).
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = provider_configs, check_for_backend(Db))]
pub(super) struct ConfigRow {
    pub id: i64,
    pub owner_kind: String,
    pub owner_id: String,
    pub provider: String,
    pub settings: Json,
    pub model: Option<String>,
    pub base_url: Option<String>,
    pub enabled: bool,
    pub is_default: bool,
    pub version: i64,
    pub last_test_at: Option<Time>,
    pub last_test_success: Option<bool>,
    pub last_test_latency_ms: Option<i64>,
    pub last_test_failure: Option<String>,
    pub last_test_message: Option<String>,
    pub created_at: Time,
    pub updated_at: Time,
}

/// One sealed secret field of a config, with its display hints.
#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = provider_config_secrets, check_for_backend(Db))]
pub(super) struct SecretRow {
    pub config_id: i64,
    pub field: String,
    pub sealed: Vec<u8>,
    pub hints: Json,
}

/// The columns written when a config is created.
#[derive(Debug, Insertable)]
#[diesel(table_name = provider_configs)]
pub(super) struct NewConfigRow<'a> {
    pub owner_kind: &'a str,
    pub owner_id: &'a str,
    pub provider: &'a str,
    #[diesel(embed)]
    pub fields: ConfigFields<'a>,
    pub version: i64,
    pub created_at: Time,
}

/// The columns a create and an update both write.
#[derive(Debug, Insertable, AsChangeset)]
#[diesel(table_name = provider_configs, treat_none_as_null = true)]
pub(super) struct ConfigFields<'a> {
    settings: Json,
    model: Option<&'a str>,
    base_url: Option<&'a str>,
    enabled: bool,
    is_default: bool,
    updated_at: Time,
}

impl<'a> ConfigFields<'a> {
    /// The fields of a config written at `now`.
    pub fn of(
        settings: &BTreeMap<String, String>,
        model: Option<&'a ModelName>,
        base_url: Option<&'a BaseUrl>,
        enabled: bool,
        is_default: bool,
        now: Timestamp,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            settings: to_json(settings, "settings")?,
            model: model.map(ModelName::as_str),
            base_url: base_url.map(BaseUrl::as_str),
            enabled,
            is_default,
            updated_at: backend::time(now),
        })
    }
}

/// The last-test columns.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = provider_configs, treat_none_as_null = true)]
pub(super) struct TestColumns<'a> {
    last_test_at: Option<Time>,
    last_test_success: Option<bool>,
    last_test_latency_ms: Option<i64>,
    last_test_failure: Option<&'static str>,
    last_test_message: Option<Cow<'a, str>>,
}

impl<'a> TestColumns<'a> {
    /// The columns of a test outcome (its message as free text).
    pub fn of(record: &'a TestRecord) -> Self {
        Self {
            last_test_at: Some(backend::time(record.at)),
            last_test_success: Some(record.success),
            last_test_latency_ms: Some(stored_i64(record.latency_ms)),
            last_test_failure: record.failure.map(|f| f.as_str()),
            last_test_message: Some(text(&record.message)),
        }
    }
}

/// Secret rows of one config.
pub(super) fn secret_rows(
    config_id: i64,
    secrets: &BTreeMap<String, StoredSecret>,
) -> Result<Vec<SecretRow>, StoreError> {
    secrets
        .iter()
        .map(|(field, secret)| {
            Ok(SecretRow {
                config_id,
                field: field.clone(),
                sealed: secret.sealed.as_bytes().to_vec(),
                hints: to_json(&secret.hints, "a secret hint")?,
            })
        })
        .collect()
}

impl ConfigRow {
    fn into_domain(
        self,
        secrets: BTreeMap<String, StoredSecret>,
    ) -> Result<ProviderConfig, StoreError> {
        let last_test = match (self.last_test_at, self.last_test_success) {
            (Some(at), Some(success)) => Some(TestRecord {
                at: backend::timestamp(at)?,
                success,
                latency_ms: optional_u64(self.last_test_latency_ms),
                failure: self
                    .last_test_failure
                    .as_deref()
                    .map(|code| FailureClass::parse(code).ok_or_else(|| corrupt("test outcome")))
                    .transpose()?,
                message: self.last_test_message.unwrap_or_default(),
            }),
            _ => None,
        };
        Ok(ProviderConfig {
            id: ConfigId(self.id),
            owner: owner(&self.owner_kind, &self.owner_id)?,
            provider: provider(&self.provider)?,
            secrets,
            settings: from_json(self.settings, "settings")?,
            model: self.model.as_deref().map(model).transpose()?,
            base_url: self
                .base_url
                .as_deref()
                .map(|u| BaseUrl::parse(u).map_err(|_| corrupt("base URL")))
                .transpose()?,
            enabled: self.enabled,
            is_default: self.is_default,
            version: self.version,
            last_test,
            created_at: backend::timestamp(self.created_at)?,
            updated_at: backend::timestamp(self.updated_at)?,
        })
    }
}

impl SecretRow {
    fn into_domain(self) -> Result<(String, StoredSecret), StoreError> {
        let hints: SecretHints = from_json(self.hints, "secret hint")?;
        Ok((
            self.field,
            StoredSecret {
                sealed: SealedSecret::from_bytes(self.sealed),
                hints,
            },
        ))
    }
}

/// Builds configs, ordered by id, from `provider_configs LEFT JOIN provider_config_secrets`
/// rows in any order: one row per secret field, or one row without a secret.
pub(super) fn assemble(
    rows: impl IntoIterator<Item = (ConfigRow, Option<SecretRow>)>,
) -> Result<Vec<ProviderConfig>, StoreError> {
    let mut configs: BTreeMap<i64, (ConfigRow, BTreeMap<String, StoredSecret>)> = BTreeMap::new();
    for (config, secret) in rows {
        let (_, secrets) = configs
            .entry(config.id)
            .or_insert_with(|| (config, BTreeMap::new()));
        if let Some(secret) = secret {
            let (field, stored) = secret.into_domain()?;
            secrets.insert(field, stored);
        }
    }
    configs
        .into_values()
        .map(|(row, secrets)| row.into_domain(secrets))
        .collect()
}

/// A task assignment of one owner.
#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = task_assignments, check_for_backend(Db))]
pub(super) struct TaskRow {
    pub owner_kind: String,
    pub owner_id: String,
    pub task: String,
    pub provider: String,
    pub model: String,
    pub created_at: Time,
    pub updated_at: Time,
}

/// A task assignment as stored.
pub(super) fn assignment(
    task: String,
    provider_name: &str,
    model_name: &str,
) -> Result<TaskAssignment, StoreError> {
    Ok(TaskAssignment {
        task: TaskName::parse(task).map_err(|_| corrupt("task name"))?,
        provider: provider(provider_name)?,
        model: model(model_name)?,
    })
}

impl TaskRow {
    /// The assignment this row stores.
    pub fn into_domain(self) -> Result<TaskAssignment, StoreError> {
        assignment(self.task, &self.provider, &self.model)
    }
}

/// An audit event as stored; every column is an id, a name, a code, a number or a time, so
/// none can hold a secret. Owned, so a batch of them can move to the backend.
#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(
    table_name = audit_events,
    check_for_backend(Db),
    treat_none_as_default_value = false
)]
pub(super) struct AuditRow {
    /// Given by the database.
    #[diesel(skip_insertion)]
    id: i64,
    actor: String,
    owner_kind: String,
    owner_id: String,
    provider: Option<String>,
    config_id: Option<i64>,
    action: String,
    outcome: String,
    at: Time,
    on_behalf_of: Option<String>,
    instance_id: Option<String>,
    call_latency_ms: Option<i64>,
    call_upstream_status: Option<i32>,
    call_request_bytes: Option<i64>,
    call_response_bytes: Option<i64>,
}

impl AuditRow {
    /// The row of a new event (its id is left to the database).
    pub fn of(event: &AuditEvent) -> Self {
        let call = event.call.as_ref();
        Self {
            id: 0,
            actor: text(&event.actor).into_owned(),
            owner_kind: event.owner.kind().as_str().to_owned(),
            owner_id: event.owner.id().to_owned(),
            provider: event.provider.map(|p| p.as_str().to_owned()),
            config_id: event.config_id.map(|id| id.0),
            action: event.action.as_str().to_owned(),
            outcome: text(event.outcome.as_str()).into_owned(),
            at: backend::time(event.at),
            on_behalf_of: event.on_behalf_of.as_ref().map(|u| u.as_str().to_owned()),
            instance_id: event.instance.as_ref().map(|i| i.as_str().to_owned()),
            call_latency_ms: call.map(|c| stored_i64(c.latency_ms)),
            call_upstream_status: call.and_then(|c| c.upstream_status).map(i32::from),
            call_request_bytes: call.map(|c| stored_i64(c.request_bytes)),
            call_response_bytes: call.map(|c| stored_i64(c.response_bytes)),
        }
    }

    /// The event this row stores, with its id.
    pub fn into_domain(self) -> Result<AuditRecord, StoreError> {
        let call = match self.call_latency_ms {
            Some(latency_ms) => Some(CallStats {
                latency_ms: optional_u64(Some(latency_ms)),
                upstream_status: self
                    .call_upstream_status
                    .map(|s| u16::try_from(s).map_err(|_| corrupt("upstream status")))
                    .transpose()?,
                request_bytes: optional_u64(self.call_request_bytes),
                response_bytes: optional_u64(self.call_response_bytes),
            }),
            None => None,
        };
        let event = AuditEvent {
            actor: self.actor,
            on_behalf_of: self
                .on_behalf_of
                .map(|u| UserId::parse(u).map_err(|_| corrupt("audit user")))
                .transpose()?,
            instance: self
                .instance_id
                .map(|i| InstanceId::parse(i).map_err(|_| corrupt("audit instance")))
                .transpose()?,
            owner: owner(&self.owner_kind, &self.owner_id)?,
            provider: self.provider.as_deref().map(provider).transpose()?,
            config_id: self.config_id.map(ConfigId),
            action: AuditAction::parse(&self.action).ok_or_else(|| corrupt("audit action"))?,
            outcome: AuditOutcome::parse(&self.outcome),
            at: backend::timestamp(self.at)?,
            call,
        };
        Ok(AuditRecord { id: self.id, event })
    }
}
