//! Test support for the settings service (a dev-dependency only).
//!
//! The heart of it is the store contract suite: one set of async cases in [`contract`],
//! written once and instantiated for every store adapter with [`store_contract_tests!`], so
//! the SQLite and PostgreSQL stores are held to exactly the same behaviour. The statement
//! counts of [`statements`] run the same way, each store in a test binary of its own.
//!
//! ```ignore
//! async fn fixture() -> OpenedStore<MyStore> { /* open a fresh store */ }
//! llm_settings_testkit::store_contract_tests!(fixture());
//! ```

// Test support: a failed expectation here is a failed test, so panicking is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::future::BoxFuture;
use llm_settings_domain::ports::{
    AuditLog, ConfigRepository, SettingsDocumentRepository, TaskAssignmentRepository,
};
use llm_settings_store_diesel::MasterKeyChecks;

pub mod bench;
pub mod contract;
pub mod fixtures;
pub mod postgres;
pub mod statements;

/// Everything a store adapter implements.
pub trait Store:
    ConfigRepository
    + TaskAssignmentRepository
    + SettingsDocumentRepository
    + AuditLog
    + MasterKeyChecks
{
}

impl<S> Store for S where
    S: ConfigRepository
        + TaskAssignmentRepository
        + SettingsDocumentRepository
        + AuditLog
        + MasterKeyChecks
{
}

/// A fresh, empty store for one contract case, and the means to open a second one.
#[async_trait]
pub trait StoreFixture: Send + Sync + 'static {
    /// The store under test.
    type Store: Store;

    /// The store under test.
    fn store(&self) -> Arc<Self::Store>;

    /// A second, independent store (its own connection pool) over the same database,
    /// standing in for another service process.
    async fn second_store(&self) -> Arc<Self::Store>;
}

type Reopen<S> = Box<dyn Fn() -> BoxFuture<'static, Arc<S>> + Send + Sync>;

/// The usual fixture: an opened store, how to open another over the same database, and
/// what must outlive both (a temporary directory, a test database).
pub struct OpenedStore<S> {
    // Declared first so the store closes before what it lives in goes away.
    store: Arc<S>,
    reopen: Reopen<S>,
    _home: Box<dyn Any + Send + Sync>,
}

impl<S> fmt::Debug for OpenedStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenedStore").finish_non_exhaustive()
    }
}

impl<S: Store> OpenedStore<S> {
    /// `store`, living in `home`; `reopen` opens another store over the same database.
    pub fn new<H, R, Fut>(store: S, home: H, reopen: R) -> Self
    where
        H: Send + Sync + 'static,
        R: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = S> + Send + 'static,
    {
        Self {
            store: Arc::new(store),
            reopen: Box::new(move || {
                let opening = reopen();
                Box::pin(async move { Arc::new(opening.await) })
            }),
            _home: Box::new(home),
        }
    }
}

#[async_trait]
impl<S: Store> StoreFixture for OpenedStore<S> {
    type Store = S;

    fn store(&self) -> Arc<S> {
        self.store.clone()
    }

    async fn second_store(&self) -> Arc<S> {
        (self.reopen)().await
    }
}

/// Expands into one `#[tokio::test]` per contract case, each with its own fixture built by
/// the given async expression (e.g. `fixture()`). The calling crate needs `tokio` as a
/// dev-dependency.
#[macro_export]
macro_rules! store_contract_tests {
    ($fixture:expr) => {
        $crate::__store_contract_cases! { $fixture;
            insert_round_trips_every_field,
            first_config_becomes_default,
            disabled_config_is_never_default,
            insert_with_make_default_moves_the_default,
            duplicate_provider_is_a_conflict,
            list_is_ordered_and_scoped,
            find_by_provider_is_scoped,
            update_replaces_fields_and_bumps_version,
            stale_update_is_a_conflict,
            update_moves_or_clears_the_default,
            update_of_missing_config_is_not_found,
            set_default_moves_the_flag,
            set_default_refuses_disabled_and_missing,
            delete_promotes_nothing,
            record_test_keeps_the_version,
            page_all_walks_every_owner,
            replace_sealed_is_guarded_by_version,
            owners_are_isolated,
            upsert_creates_then_updates_in_place,
            task_assignments_upsert_and_delete,
            settings_documents_are_versioned,
            free_text_reads_back_the_same_on_every_store,
            key_checks_are_kept_and_never_overwritten,
            abandoned_writes_leave_no_transaction_behind,
            apply_lands_every_step_and_the_document,
            apply_is_all_or_nothing,
            apply_deletes_and_inserts_in_one_change,
            apply_refuses_steps_of_another_owner,
            apply_require_no_default_admits_one_of_many,
            load_chain_reads_enabled_configs_of_the_chain,
            load_chain_filters_by_provider,
            load_chain_reads_the_task_per_owner,
            load_chain_sees_every_write_of_the_same_store_at_once,
            load_chain_sees_another_stores_write_within_a_second,
            audit_round_trips_every_field,
            audit_query_filters,
            audit_scopes_reach_owner_and_calls,
            audit_cursor_pages_without_overlap,
            audit_prune_deletes_the_oldest_in_batches,
            audit_never_holds_the_planted_secret,
            concurrent_set_default_keeps_one_default,
            two_stores_set_default_keep_one_default,
            concurrent_first_inserts_make_one_default,
            concurrent_duplicate_inserts_conflict,
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __store_contract_cases {
    ($fixture:expr; $($case:ident),+ $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let fixture = $fixture.await;
                $crate::contract::$case(&fixture).await;
            }
        )+
    };
}

/// Expands into the one test of [`statements`]: statements are counted process-wide, so
/// the calling test binary must hold no other test.
#[macro_export]
macro_rules! statement_count_tests {
    ($fixture:expr) => {
        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn operations_issue_the_statements_they_should() {
            $crate::statements::count_every_statement();
            let fixture = $fixture.await;
            $crate::statements::operations_issue_the_statements_they_should(&fixture).await;
        }
    };
}
