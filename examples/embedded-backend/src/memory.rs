//! One in-memory store for everything the domain persists: provider configs, task
//! assignments, settings documents and the audit trail.
//!
//! Every port method takes the same lock, so each call is one "transaction" and writes to an
//! owner are serialised. [`ConfigRepository::apply`] runs a whole [`OwnerChange`] on a scratch
//! copy of the configs under that lock and swaps it in only when every step succeeded: all of
//! it lands or none of it does. Nothing here can be unreachable, so no method returns
//! `Unavailable`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use llm_settings_domain::document::StoredDocument;
use llm_settings_domain::ports::{
    AuditLog, AuditQueue, ConfigRepository, SettingsDocumentRepository, TaskAssignmentRepository,
};
use llm_settings_domain::{
    AuditEvent, AuditQuery, AuditRecord, AuditScope, ChainQuery, ChainSnapshot, ChangeOutcome,
    ChangeStep, ConfigId, ConfigWrite, Error, NewProviderConfig, Owner, OwnerChange,
    ProviderConfig, ProviderId, Result, SealedSecret, TaskAssignment, TaskName, TestRecord,
    Timestamp,
};
use serde_json::Value;

/// The store: configs, task assignments, documents and audit events behind one lock.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

/// Everything the store holds.
#[derive(Debug, Default)]
struct State {
    configs: Configs,
    tasks: BTreeMap<Owner, BTreeMap<TaskName, TaskAssignment>>,
    documents: BTreeMap<Owner, StoredDocument>,
    /// Ordered by id, which grows with every event.
    audit: Vec<AuditRecord>,
    last_audit_id: i64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The state, even after a panic elsewhere: every write checks all it needs before it
    /// changes anything, so a poisoned lock never guards a half-done write.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The provider configs of every owner, with the id sequence.
#[derive(Debug, Clone, Default)]
struct Configs {
    rows: BTreeMap<ConfigId, ProviderConfig>,
    last_id: i64,
}

fn not_found(id: ConfigId) -> Error {
    Error::NotFound(format!("config {id}"))
}

fn stale(id: ConfigId, expected: i64) -> Error {
    Error::Conflict(format!(
        "config {id} was changed since version {expected}; reload it and retry"
    ))
}

impl Configs {
    /// The owner's configs, ordered by id.
    fn owned<'a>(&'a self, owner: &'a Owner) -> impl Iterator<Item = &'a ProviderConfig> + 'a {
        self.rows.values().filter(move |c| c.owner == *owner)
    }

    /// The config `id` when `owner` holds it: other owners' rows are invisible.
    fn find(&self, owner: &Owner, id: ConfigId) -> Option<&ProviderConfig> {
        self.rows.get(&id).filter(|c| c.owner == *owner)
    }

    /// The config `id` for changing, when `owner` holds it; `NotFound` otherwise.
    fn find_mut(&mut self, owner: &Owner, id: ConfigId) -> Result<&mut ProviderConfig> {
        self.rows
            .get_mut(&id)
            .filter(|c| c.owner == *owner)
            .ok_or_else(|| not_found(id))
    }

    /// Clears the default flag on the owner's configs other than `keep` (versions unchanged).
    fn clear_defaults(&mut self, owner: &Owner, keep: Option<ConfigId>) {
        for config in self.rows.values_mut() {
            if config.owner == *owner && Some(config.id) != keep {
                config.is_default = false;
            }
        }
    }

    fn insert(&mut self, new: NewProviderConfig) -> Result<ProviderConfig> {
        if self.owned(&new.owner).any(|c| c.provider == new.provider) {
            return Err(Error::Conflict(format!(
                "a config for provider {} already exists for this owner",
                new.provider
            )));
        }
        let first = self.owned(&new.owner).next().is_none();
        let is_default = new.enabled && (new.make_default || first);
        if is_default {
            self.clear_defaults(&new.owner, None);
        }
        self.last_id += 1;
        let config = ProviderConfig {
            id: ConfigId(self.last_id),
            owner: new.owner,
            provider: new.provider,
            secrets: new.secrets,
            settings: new.settings,
            model: new.model,
            base_url: new.base_url,
            enabled: new.enabled,
            is_default,
            version: 1,
            last_test: None,
            created_at: new.now,
            updated_at: new.now,
        };
        self.rows.insert(config.id, config.clone());
        Ok(config)
    }

    fn update(&mut self, write: ConfigWrite) -> Result<ProviderConfig> {
        let current = self.find_mut(&write.owner, write.id)?;
        if current.version != write.expected_version {
            return Err(stale(write.id, write.expected_version));
        }
        let make_default = write.make_default && write.enabled;
        let is_default = write.enabled && (current.is_default || make_default);
        if make_default {
            self.clear_defaults(&write.owner, Some(write.id));
        }
        let config = self.find_mut(&write.owner, write.id)?;
        config.secrets = write.secrets;
        config.settings = write.settings;
        config.model = write.model;
        config.base_url = write.base_url;
        config.enabled = write.enabled;
        config.is_default = is_default;
        config.version += 1;
        config.updated_at = write.now;
        Ok(config.clone())
    }

    fn set_default(
        &mut self,
        owner: &Owner,
        id: ConfigId,
        now: Timestamp,
    ) -> Result<ProviderConfig> {
        if !self.find_mut(owner, id)?.enabled {
            return Err(Error::Conflict(format!(
                "config {id} is disabled and cannot be the default"
            )));
        }
        self.clear_defaults(owner, Some(id));
        let config = self.find_mut(owner, id)?;
        config.is_default = true;
        config.version += 1;
        config.updated_at = now;
        Ok(config.clone())
    }

    /// Deletes a config (promoting nothing), guarded by its version when one is given.
    fn delete(&mut self, owner: &Owner, id: ConfigId, expected: Option<i64>) -> Result<()> {
        let current = self.find_mut(owner, id)?;
        if let Some(expected) = expected.filter(|v| *v != current.version) {
            return Err(stale(id, expected));
        }
        self.rows.remove(&id);
        Ok(())
    }

    /// `Internal` when the step's config (named or stored) is not `owner`'s: a use case
    /// planned a change across owners, which is a bug, not a missing row.
    fn check_owner(&self, owner: &Owner, step: &ChangeStep) -> Result<()> {
        let (named, id) = match step {
            ChangeStep::RequireNoDefault => (None, None),
            ChangeStep::Insert(new) => (Some(&new.owner), None),
            ChangeStep::Update(write) => (Some(&write.owner), Some(write.id)),
            ChangeStep::Delete { id, .. } | ChangeStep::SetDefault { id } => (None, Some(*id)),
        };
        let stored = id.and_then(|id| self.rows.get(&id)).map(|c| &c.owner);
        if named.into_iter().chain(stored).any(|o| o != owner) {
            return Err(Error::Internal(
                "a change step names a config of another owner".into(),
            ));
        }
        Ok(())
    }

    /// Runs one step of an owner change, with the error its contract documents.
    fn step(&mut self, owner: &Owner, step: ChangeStep, now: Timestamp) -> Result<()> {
        self.check_owner(owner, &step)?;
        match step {
            ChangeStep::RequireNoDefault => {
                if self.owned(owner).any(|c| c.is_default) {
                    return Err(Error::Conflict(
                        "this owner already has an active configuration".into(),
                    ));
                }
            }
            ChangeStep::Insert(new) => {
                self.insert(new)?;
            }
            ChangeStep::Update(write) => {
                self.update(write)?;
            }
            ChangeStep::Delete {
                id,
                expected_version,
            } => self.delete(owner, id, Some(expected_version))?,
            ChangeStep::SetDefault { id } => {
                self.set_default(owner, id, now)?;
            }
        }
        Ok(())
    }
}

/// The document that replaces `current`, if its version guard holds (`Conflict` otherwise).
fn next_document(
    current: Option<&StoredDocument>,
    document: Value,
    expected_version: Option<i64>,
) -> Result<StoredDocument> {
    let current_version = current.map(|d| d.version);
    if current_version != expected_version {
        return Err(Error::Conflict(
            "the settings document was changed meanwhile; reload it and retry".into(),
        ));
    }
    Ok(StoredDocument {
        document,
        version: current_version.unwrap_or(0) + 1,
    })
}

#[async_trait]
impl ConfigRepository for MemoryStore {
    async fn list(&self, owner: &Owner) -> Result<Vec<ProviderConfig>> {
        Ok(self.lock().configs.owned(owner).cloned().collect())
    }

    async fn get(&self, owner: &Owner, id: ConfigId) -> Result<Option<ProviderConfig>> {
        Ok(self.lock().configs.find(owner, id).cloned())
    }

    async fn find_by_provider(
        &self,
        owner: &Owner,
        provider: ProviderId,
    ) -> Result<Option<ProviderConfig>> {
        let state = self.lock();
        let found = state.configs.owned(owner).find(|c| c.provider == provider);
        Ok(found.cloned())
    }

    async fn find_default(&self, owner: &Owner) -> Result<Option<ProviderConfig>> {
        Ok(self
            .lock()
            .configs
            .owned(owner)
            .find(|c| c.is_default)
            .cloned())
    }

    async fn insert(&self, config: NewProviderConfig) -> Result<ProviderConfig> {
        self.lock().configs.insert(config)
    }

    async fn update(&self, write: ConfigWrite) -> Result<ProviderConfig> {
        self.lock().configs.update(write)
    }

    async fn set_default(
        &self,
        owner: &Owner,
        id: ConfigId,
        now: Timestamp,
    ) -> Result<ProviderConfig> {
        self.lock().configs.set_default(owner, id, now)
    }

    async fn delete(&self, owner: &Owner, id: ConfigId) -> Result<()> {
        self.lock().configs.delete(owner, id, None)
    }

    async fn apply(&self, change: OwnerChange) -> Result<ChangeOutcome> {
        let mut state = self.lock();
        let mut configs = state.configs.clone();
        for step in change.steps {
            configs.step(&change.owner, step, change.now)?;
        }
        let document = match change.document {
            Some(write) => Some(next_document(
                state.documents.get(&change.owner),
                write.document,
                write.expected_version,
            )?),
            None => None,
        };
        state.configs = configs;
        if let Some(document) = &document {
            state
                .documents
                .insert(change.owner.clone(), document.clone());
        }
        Ok(ChangeOutcome {
            configs: state.configs.owned(&change.owner).cloned().collect(),
            document,
        })
    }

    async fn load_chain(&self, query: ChainQuery) -> Result<ChainSnapshot> {
        let state = self.lock();
        let configs = state
            .configs
            .rows
            .values()
            .filter(|c| c.enabled && query.owners.contains(&c.owner))
            .filter(|c| query.provider.is_none_or(|p| c.provider == p))
            .cloned()
            .collect();
        let assignments = match &query.task {
            Some(task) => query
                .owners
                .iter()
                .filter_map(|owner| {
                    let assignment = state.tasks.get(owner)?.get(task)?;
                    Some((owner.clone(), assignment.clone()))
                })
                .collect(),
            None => Vec::new(),
        };
        Ok(ChainSnapshot {
            configs,
            assignments,
        })
    }

    async fn record_test(&self, owner: &Owner, id: ConfigId, record: TestRecord) -> Result<()> {
        self.lock().configs.find_mut(owner, id)?.last_test = Some(record);
        Ok(())
    }

    async fn page_all(&self, after: Option<ConfigId>, limit: u32) -> Result<Vec<ProviderConfig>> {
        let state = self.lock();
        let start = after.map_or(ConfigId(i64::MIN), |id| ConfigId(id.0.saturating_add(1)));
        let page = state.configs.rows.range(start..).map(|(_, c)| c.clone());
        Ok(page.take(limit as usize).collect())
    }

    async fn replace_sealed(
        &self,
        id: ConfigId,
        version: i64,
        sealed: BTreeMap<String, SealedSecret>,
    ) -> Result<bool> {
        let mut state = self.lock();
        let Some(config) = state.configs.rows.get_mut(&id) else {
            return Ok(false);
        };
        if config.version != version || !sealed.keys().all(|f| config.secrets.contains_key(f)) {
            return Ok(false);
        }
        for (field, bytes) in sealed {
            if let Some(secret) = config.secrets.get_mut(&field) {
                secret.sealed = bytes;
            }
        }
        Ok(true)
    }
}

#[async_trait]
impl TaskAssignmentRepository for MemoryStore {
    async fn list(&self, owner: &Owner) -> Result<Vec<TaskAssignment>> {
        let state = self.lock();
        let assignments = state
            .tasks
            .get(owner)
            .map(|t| t.values().cloned().collect());
        Ok(assignments.unwrap_or_default())
    }

    async fn upsert(
        &self,
        owner: &Owner,
        assignments: Vec<TaskAssignment>,
        _now: Timestamp,
    ) -> Result<()> {
        let mut state = self.lock();
        let tasks = state.tasks.entry(owner.clone()).or_default();
        for assignment in assignments {
            tasks.insert(assignment.task.clone(), assignment);
        }
        Ok(())
    }

    async fn delete(&self, owner: &Owner, task: &TaskName) -> Result<bool> {
        let mut state = self.lock();
        let removed = state.tasks.get_mut(owner).and_then(|t| t.remove(task));
        Ok(removed.is_some())
    }
}

#[async_trait]
impl SettingsDocumentRepository for MemoryStore {
    async fn get(&self, owner: &Owner) -> Result<Option<StoredDocument>> {
        Ok(self.lock().documents.get(owner).cloned())
    }

    async fn put(
        &self,
        owner: &Owner,
        document: Value,
        expected_version: Option<i64>,
        _now: Timestamp,
    ) -> Result<StoredDocument> {
        let mut state = self.lock();
        let stored = next_document(state.documents.get(owner), document, expected_version)?;
        state.documents.insert(owner.clone(), stored.clone());
        Ok(stored)
    }
}

/// Whether a reader with `scope` may see `event`.
fn visible(scope: &AuditScope, event: &AuditEvent) -> bool {
    match scope {
        AuditScope::All => true,
        AuditScope::User(user) => {
            event.owner == Owner::User(user.clone()) || event.on_behalf_of.as_ref() == Some(user)
        }
        AuditScope::Instance(instance) => {
            event.owner == Owner::Instance(instance.clone())
                || event.instance.as_ref() == Some(instance)
        }
    }
}

/// Whether a stored event matches every filter of `query`.
fn matches(query: &AuditQuery, record: &AuditRecord) -> bool {
    let event = &record.event;
    visible(&query.scope, event)
        && query.owner.as_ref().is_none_or(|o| *o == event.owner)
        && query.actor.as_ref().is_none_or(|a| *a == event.actor)
        && query.action.is_none_or(|a| a == event.action)
        && query.provider.is_none_or(|p| Some(p) == event.provider)
        && query.since.is_none_or(|t| event.at >= t)
        && query.until.is_none_or(|t| event.at < t)
        && query.before_id.is_none_or(|id| record.id < id)
}

impl State {
    fn append(&mut self, event: AuditEvent) {
        self.last_audit_id += 1;
        let id = self.last_audit_id;
        self.audit.push(AuditRecord { id, event });
    }
}

#[async_trait]
impl AuditLog for MemoryStore {
    async fn record(&self, event: AuditEvent) -> Result<()> {
        self.lock().append(event);
        Ok(())
    }

    async fn record_many(&self, events: Vec<AuditEvent>) -> Result<()> {
        let mut state = self.lock();
        for event in events {
            state.append(event);
        }
        Ok(())
    }

    async fn query(&self, query: AuditQuery) -> Result<Vec<AuditRecord>> {
        let state = self.lock();
        let newest_first = state.audit.iter().rev().filter(|r| matches(&query, r));
        Ok(newest_first.take(query.limit as usize).cloned().collect())
    }

    async fn prune(&self, before: Timestamp, batch: u32) -> Result<u64> {
        let mut state = self.lock();
        let mut old: Vec<(Timestamp, i64)> = state
            .audit
            .iter()
            .filter(|r| r.event.at < before)
            .map(|r| (r.event.at, r.id))
            .collect();
        old.sort_unstable();
        old.truncate(batch as usize);
        let doomed: BTreeSet<i64> = old.into_iter().map(|(_, id)| id).collect();
        state.audit.retain(|r| !doomed.contains(&r.id));
        Ok(doomed.len() as u64)
    }
}

/// Gateway events land in the same audit log, at once: memory has no outage to batch around.
impl AuditQueue for MemoryStore {
    fn submit(&self, event: AuditEvent) {
        self.lock().append(event);
    }
}
