//! Private row types and their conversion to and from the domain. Diesel derives live here,
//! never on domain types.

use std::collections::BTreeMap;

use diesel::prelude::*;
use llm_settings_domain::values::BaseUrl;
use llm_settings_domain::{
    AuditAction, AuditEvent, AuditOutcome, ConfigId, FailureClass, ModelName, Owner,
    ProviderConfig, ProviderId, SealedSecret, SecretHints, StoredSecret, TaskAssignment, TaskName,
    TestRecord, Timestamp,
};
use serde_json::Value;
use time::OffsetDateTime;

use crate::error::{corrupt, StoreError};
use crate::schema::{audit_events, provider_config_secrets, provider_configs, task_assignments};

/// How an owner is stored: its kind and its id (`''` for the global owner).
#[derive(Debug, Clone)]
pub(crate) struct OwnerKey {
    pub kind: &'static str,
    pub id: String,
}

impl OwnerKey {
    pub fn of(owner: &Owner) -> Self {
        Self {
            kind: owner.kind().as_str(),
            id: owner.id().to_owned(),
        }
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = provider_configs)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub(crate) struct ConfigRow {
    pub id: i64,
    pub owner_kind: String,
    pub owner_id: String,
    pub provider: String,
    pub settings: Value,
    pub model: Option<String>,
    pub base_url: Option<String>,
    pub enabled: bool,
    pub is_default: bool,
    pub version: i64,
    pub last_test_at: Option<OffsetDateTime>,
    pub last_test_success: Option<bool>,
    pub last_test_latency_ms: Option<i64>,
    pub last_test_failure: Option<String>,
    pub last_test_message: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = provider_config_secrets)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub(crate) struct SecretRow {
    pub config_id: i64,
    pub field: String,
    pub sealed: Vec<u8>,
    pub hints: Value,
}

/// The columns written when a config is created.
#[derive(Debug, Insertable)]
#[diesel(table_name = provider_configs)]
pub(crate) struct NewConfigRow<'a> {
    pub owner_kind: &'a str,
    pub owner_id: &'a str,
    pub provider: &'a str,
    pub settings: Value,
    pub model: Option<&'a str>,
    pub base_url: Option<&'a str>,
    pub enabled: bool,
    pub is_default: bool,
    pub version: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// The mutable columns replaced by an update.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = provider_configs, treat_none_as_null = true)]
pub(crate) struct ConfigChanges<'a> {
    pub settings: Value,
    pub model: Option<&'a str>,
    pub base_url: Option<&'a str>,
    pub enabled: bool,
    pub is_default: bool,
    pub updated_at: OffsetDateTime,
}

/// The last-test columns.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = provider_configs, treat_none_as_null = true)]
pub(crate) struct TestColumns {
    pub last_test_at: Option<OffsetDateTime>,
    pub last_test_success: Option<bool>,
    pub last_test_latency_ms: Option<i64>,
    pub last_test_failure: Option<String>,
    pub last_test_message: Option<String>,
}

impl TestColumns {
    pub fn of(record: &TestRecord) -> Self {
        Self {
            last_test_at: Some(record.at.as_offset()),
            last_test_success: Some(record.success),
            last_test_latency_ms: Some(i64::try_from(record.latency_ms).unwrap_or(i64::MAX)),
            last_test_failure: record.failure.map(|f| f.as_str().to_owned()),
            last_test_message: Some(text(&record.message)),
        }
    }
}

pub(crate) fn settings_json(settings: &BTreeMap<String, String>) -> Result<Value, StoreError> {
    serde_json::to_value(settings).map_err(|_| {
        StoreError::Domain(llm_settings_domain::Error::Internal(
            "settings could not be encoded".into(),
        ))
    })
}

/// Secret rows of one config.
pub(crate) fn secret_rows(
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
                hints: serde_json::to_value(&secret.hints).map_err(|_| corrupt("secret hint"))?,
            })
        })
        .collect()
}

/// Timestamps are stored as `timestamptz` (microsecond precision, like [`Timestamp`]).
pub(crate) fn timestamp(at: OffsetDateTime) -> Result<Timestamp, StoreError> {
    Ok(Timestamp::new(at))
}

/// PostgreSQL text cannot hold NUL; a NUL in a free-text field becomes U+FFFD.
pub(crate) fn text(value: &str) -> String {
    if value.contains('\0') {
        value.replace('\0', "\u{fffd}")
    } else {
        value.to_owned()
    }
}

pub(crate) fn owner(kind: &str, id: &str) -> Result<Owner, StoreError> {
    Owner::from_parts(kind, id).map_err(|_| corrupt("owner"))
}

pub(crate) fn provider(name: &str) -> Result<ProviderId, StoreError> {
    ProviderId::lookup(name).ok_or_else(|| corrupt("provider"))
}

pub(crate) fn model(name: &str) -> Result<ModelName, StoreError> {
    ModelName::parse(name).map_err(|_| corrupt("model"))
}

impl ConfigRow {
    fn into_domain(
        self,
        secrets: BTreeMap<String, StoredSecret>,
    ) -> Result<ProviderConfig, StoreError> {
        let last_test = match (self.last_test_at, self.last_test_success) {
            (Some(at), Some(success)) => Some(TestRecord {
                at: timestamp(at)?,
                success,
                latency_ms: u64::try_from(self.last_test_latency_ms.unwrap_or(0)).unwrap_or(0),
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
            settings: serde_json::from_value(self.settings).map_err(|_| corrupt("settings"))?,
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
            created_at: timestamp(self.created_at)?,
            updated_at: timestamp(self.updated_at)?,
        })
    }
}

impl SecretRow {
    fn into_domain(self) -> Result<(String, StoredSecret), StoreError> {
        let hints: SecretHints =
            serde_json::from_value(self.hints).map_err(|_| corrupt("secret hint"))?;
        Ok((
            self.field,
            StoredSecret {
                sealed: SealedSecret::from_bytes(self.sealed),
                hints,
            },
        ))
    }
}

/// Builds configs from `provider_configs LEFT JOIN provider_config_secrets` rows ordered by
/// config id: one row per secret field, or one row without a secret.
pub(crate) fn assemble(
    rows: Vec<(ConfigRow, Option<SecretRow>)>,
) -> Result<Vec<ProviderConfig>, StoreError> {
    let mut out: Vec<ProviderConfig> = Vec::new();
    let mut pending: Option<(ConfigRow, BTreeMap<String, StoredSecret>)> = None;
    for (config, secret) in rows {
        let same = pending.as_ref().is_some_and(|(c, _)| c.id == config.id);
        if !same {
            if let Some((row, secrets)) = pending.take() {
                out.push(row.into_domain(secrets)?);
            }
            pending = Some((config, BTreeMap::new()));
        }
        if let (Some((_, secrets)), Some(secret)) = (pending.as_mut(), secret) {
            let (field, stored) = secret.into_domain()?;
            secrets.insert(field, stored);
        }
    }
    if let Some((row, secrets)) = pending {
        out.push(row.into_domain(secrets)?);
    }
    Ok(out)
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = task_assignments)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub(crate) struct TaskRow {
    pub owner_kind: String,
    pub owner_id: String,
    pub task: String,
    pub provider: String,
    pub model: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl TaskRow {
    pub fn into_domain(self) -> Result<TaskAssignment, StoreError> {
        Ok(TaskAssignment {
            task: TaskName::parse(self.task).map_err(|_| corrupt("task name"))?,
            provider: provider(&self.provider)?,
            model: model(&self.model)?,
        })
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = audit_events)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub(crate) struct AuditRow {
    pub actor: String,
    pub owner_kind: String,
    pub owner_id: String,
    pub provider: Option<String>,
    pub config_id: Option<i64>,
    pub action: String,
    pub outcome: String,
    pub at: OffsetDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = audit_events)]
pub(crate) struct NewAuditRow<'a> {
    pub actor: &'a str,
    pub owner_kind: &'a str,
    pub owner_id: &'a str,
    pub provider: Option<&'a str>,
    pub config_id: Option<i64>,
    pub action: &'a str,
    pub outcome: &'a str,
    pub at: OffsetDateTime,
}

impl<'a> NewAuditRow<'a> {
    pub fn of(event: &'a AuditEvent) -> Self {
        Self {
            actor: &event.actor,
            owner_kind: event.owner.kind().as_str(),
            owner_id: event.owner.id(),
            provider: event.provider.map(|p| p.as_str()),
            config_id: event.config_id.map(|id| id.0),
            action: event.action.as_str(),
            outcome: event.outcome.as_str(),
            at: event.at.as_offset(),
        }
    }
}

impl AuditRow {
    pub fn into_domain(self) -> Result<AuditEvent, StoreError> {
        Ok(AuditEvent {
            actor: self.actor,
            owner: owner(&self.owner_kind, &self.owner_id)?,
            provider: self.provider.as_deref().map(provider).transpose()?,
            config_id: self.config_id.map(ConfigId),
            action: AuditAction::parse(&self.action).ok_or_else(|| corrupt("audit action"))?,
            outcome: AuditOutcome::parse(&self.outcome),
            at: timestamp(self.at)?,
        })
    }
}
