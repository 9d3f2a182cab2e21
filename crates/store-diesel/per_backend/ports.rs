//! The domain's repository ports on the store. Every method runs through `read` (a pooled
//! connection), `write_statement` (one statement that changes data) or `write` (one write
//! transaction); changes to an owner's configs go through `write_owner`, which also holds
//! the owner's lock.
//!
//! `load_chain` goes through the store's [`ChainCache`](llm_settings_store_diesel::ChainCache),
//! and every write that can change a chain (each config and task-assignment write, key
//! rotation) holds the cache's invalidation guard, so the chain cache is retired once the
//! write is over (see `llm_settings_store_diesel::ChainCache` for the rule).

use std::collections::BTreeMap;

use async_trait::async_trait;
use diesel_async::scoped_futures::ScopedFutureExt;
use llm_settings_domain::document::StoredDocument;
use llm_settings_domain::ports::{
    AuditLog, ConfigRepository, SettingsDocumentRepository, TaskAssignmentRepository,
};
use llm_settings_domain::{
    AuditEvent, AuditQuery, AuditRecord, ChainQuery, ChainSnapshot, ChangeOutcome, ConfigId,
    ConfigWrite, NewProviderConfig, Owner, OwnerChange, ProviderConfig, ProviderId, Result,
    SealedSecret, TaskAssignment, TaskName, TestRecord, Timestamp,
};
use llm_settings_store_diesel::{ChainCache, Operation, OwnerKey};
use serde_json::Value;

use super::configs::{self, Which};
use super::{audit, documents, tasks};
use crate::backend::{self, Conn, Store};

/// How the ports run their operations, on top of the store's `run` and `as_writer`.
impl Store {
    /// The store with resolution chains cached for `ttl` (at most 1 s; zero turns the cache
    /// off). See [`ChainCache`] for when a change is seen.
    #[must_use]
    pub fn with_chain_cache_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.chain_cache = ChainCache::new(ttl);
        self
    }

    /// The cache of resolution chains.
    pub(crate) fn chain_cache(&self) -> &ChainCache {
        &self.chain_cache
    }

    /// Runs `op`, one or more reads, on a pooled connection.
    pub(super) async fn read<'a, T: Send + 'a>(
        &self,
        op: impl Operation<'a, Conn, T>,
    ) -> Result<T> {
        self.run(op).await
    }

    /// Runs `op`, one statement that changes data (atomic on its own), as a writer.
    pub(super) async fn write_statement<'a, T: Send + 'a>(
        &self,
        op: impl Operation<'a, Conn, T>,
    ) -> Result<T> {
        self.as_writer(self.run(op)).await
    }

    /// Runs `op` in one write transaction: all of it is committed or none of it.
    pub(super) async fn write<'a, T: Send + 'a>(
        &self,
        op: impl Operation<'a, Conn, T>,
    ) -> Result<T> {
        let op = &op;
        self.as_writer(self.run(|c| backend::transaction(c, op).scope_boxed()))
            .await
    }

    /// Runs `op` in one write transaction holding `owner`'s lock, so every change to the
    /// owner's configs is serialised with every other, across processes.
    async fn write_owner<'a, T: Send + 'a>(
        &self,
        owner: &'a OwnerKey,
        op: impl Operation<'a, Conn, T>,
    ) -> Result<T> {
        let op = &op;
        self.write(|c| {
            async move {
                backend::lock_owner(c, owner).await?;
                op(c).await
            }
            .scope_boxed()
        })
        .await
    }

    /// Runs `step`, one write to one of the owner's configs, as [`Store::write_owner`] does;
    /// returns that config as it is afterwards.
    async fn write_one<'a>(
        &self,
        owner: &'a OwnerKey,
        step: &impl Operation<'a, Conn, i64>,
    ) -> Result<ProviderConfig> {
        self.write_owner(owner, |c| configs::read_back(c, owner, step).scope_boxed())
            .await
    }

    /// The first of the owner's configs that `which` selects.
    async fn load_first(&self, owner: &Owner, which: Which<'_>) -> Result<Option<ProviderConfig>> {
        let owner = &OwnerKey::of(owner);
        self.read(|c| async move { Ok(configs::load(c, owner, which).await?.pop()) }.scope_boxed())
            .await
    }
}

#[async_trait]
impl ConfigRepository for Store {
    async fn list(&self, owner: &Owner) -> Result<Vec<ProviderConfig>> {
        let owner = &OwnerKey::of(owner);
        self.read(|c| configs::load(c, owner, Which::All).scope_boxed())
            .await
    }

    async fn get(&self, owner: &Owner, id: ConfigId) -> Result<Option<ProviderConfig>> {
        self.load_first(owner, Which::Id(id.0)).await
    }

    async fn find_by_provider(
        &self,
        owner: &Owner,
        provider: ProviderId,
    ) -> Result<Option<ProviderConfig>> {
        self.load_first(owner, Which::Provider(provider.as_str()))
            .await
    }

    async fn find_default(&self, owner: &Owner) -> Result<Option<ProviderConfig>> {
        self.load_first(owner, Which::Default).await
    }

    async fn insert(&self, config: NewProviderConfig) -> Result<ProviderConfig> {
        let _chains = self.chain_cache().invalidate_on_drop();
        let (owner, config) = (&OwnerKey::of(&config.owner), &config);
        self.write_one(owner, &|c| configs::insert(c, owner, config).scope_boxed())
            .await
    }

    async fn update(&self, write: ConfigWrite) -> Result<ProviderConfig> {
        let _chains = self.chain_cache().invalidate_on_drop();
        let (owner, write) = (&OwnerKey::of(&write.owner), &write);
        self.write_one(owner, &|c| configs::update(c, owner, write).scope_boxed())
            .await
    }

    async fn set_default(
        &self,
        owner: &Owner,
        id: ConfigId,
        now: Timestamp,
    ) -> Result<ProviderConfig> {
        let _chains = self.chain_cache().invalidate_on_drop();
        let owner = &OwnerKey::of(owner);
        self.write_one(owner, &|c| {
            configs::set_default(c, owner, id, now).scope_boxed()
        })
        .await
    }

    async fn delete(&self, owner: &Owner, id: ConfigId) -> Result<()> {
        let _chains = self.chain_cache().invalidate_on_drop();
        let owner = &OwnerKey::of(owner);
        self.write_owner(owner, |c| configs::delete(c, owner, id, None).scope_boxed())
            .await
    }

    async fn apply(&self, change: OwnerChange) -> Result<ChangeOutcome> {
        let _chains = self.chain_cache().invalidate_on_drop();
        let (owner, change) = (&OwnerKey::of(&change.owner), &change);
        self.write_owner(owner, |c| configs::apply(c, owner, change).scope_boxed())
            .await
    }

    /// Served from the chain cache when it holds a current entry; otherwise one read,
    /// stored for the next calls unless a write ended meanwhile.
    async fn load_chain(&self, query: ChainQuery) -> Result<ChainSnapshot> {
        let cache = self.chain_cache();
        if let Some(snapshot) = cache.get(&query) {
            return Ok(snapshot);
        }
        let ticket = cache.ticket();
        let read = &query;
        let snapshot = self
            .read(|c| configs::load_chain(c, read).scope_boxed())
            .await?;
        cache.put(query, ticket, &snapshot);
        Ok(snapshot)
    }

    async fn record_test(&self, owner: &Owner, id: ConfigId, record: TestRecord) -> Result<()> {
        let _chains = self.chain_cache().invalidate_on_drop();
        let (owner, record) = (&OwnerKey::of(owner), &record);
        self.write_statement(|c| configs::record_test(c, owner, id, record).scope_boxed())
            .await
    }

    async fn page_all(&self, after: Option<ConfigId>, limit: u32) -> Result<Vec<ProviderConfig>> {
        self.read(|c| configs::page_all(c, after, limit).scope_boxed())
            .await
    }

    async fn replace_sealed(
        &self,
        id: ConfigId,
        version: i64,
        sealed: BTreeMap<String, SealedSecret>,
    ) -> Result<bool> {
        let _chains = self.chain_cache().invalidate_on_drop();
        let sealed = &sealed;
        self.write(|c| configs::replace_sealed(c, id.0, version, sealed).scope_boxed())
            .await
    }
}

#[async_trait]
impl TaskAssignmentRepository for Store {
    async fn list(&self, owner: &Owner) -> Result<Vec<TaskAssignment>> {
        let owner = &OwnerKey::of(owner);
        self.read(|c| tasks::list(c, owner).scope_boxed()).await
    }

    async fn upsert(
        &self,
        owner: &Owner,
        assignments: Vec<TaskAssignment>,
        now: Timestamp,
    ) -> Result<()> {
        let _chains = self.chain_cache().invalidate_on_drop();
        let (owner, assignments) = (&OwnerKey::of(owner), &assignments);
        self.write(|c| tasks::upsert(c, owner, assignments, now).scope_boxed())
            .await
    }

    async fn delete(&self, owner: &Owner, task: &TaskName) -> Result<bool> {
        let _chains = self.chain_cache().invalidate_on_drop();
        let owner = &OwnerKey::of(owner);
        self.write_statement(|c| tasks::delete(c, owner, task).scope_boxed())
            .await
    }
}

#[async_trait]
impl SettingsDocumentRepository for Store {
    async fn put(
        &self,
        owner: &Owner,
        document: Value,
        expected_version: Option<i64>,
        now: Timestamp,
    ) -> Result<StoredDocument> {
        let (owner, document) = (&OwnerKey::of(owner), &document);
        self.write_statement(|c| {
            documents::put(c, owner, document, expected_version, now).scope_boxed()
        })
        .await
    }

    async fn get(&self, owner: &Owner) -> Result<Option<StoredDocument>> {
        let owner = &OwnerKey::of(owner);
        self.read(|c| documents::get(c, owner).scope_boxed()).await
    }
}

#[async_trait]
impl AuditLog for Store {
    async fn record(&self, event: AuditEvent) -> Result<()> {
        self.record_many(vec![event]).await
    }

    async fn record_many(&self, events: Vec<AuditEvent>) -> Result<()> {
        let events = &events;
        self.write_statement(|c| audit::record(c, events).scope_boxed())
            .await
    }

    async fn query(&self, query: AuditQuery) -> Result<Vec<AuditRecord>> {
        let query = &query;
        self.read(|c| audit::query(c, query).scope_boxed()).await
    }

    async fn prune(&self, before: Timestamp, batch: u32) -> Result<u64> {
        self.write_statement(|c| audit::prune(c, before, batch).scope_boxed())
            .await
    }
}
