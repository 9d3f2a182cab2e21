//! Test support for the settings service (a dev-dependency only).
//!
//! The heart of it is the store contract suite: one set of async cases in [`contract`],
//! written once and instantiated for every store adapter with [`store_contract_tests!`], so
//! the SQLite and PostgreSQL stores are held to exactly the same behaviour.
//!
//! ```ignore
//! async fn fixture() -> MyFixture { /* open a fresh store */ }
//! llm_settings_testkit::store_contract_tests!(fixture());
//! ```

// Test support: a failed expectation here is a failed test, so panicking is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use async_trait::async_trait;
use llm_settings_domain::ports::{
    AuditLog, ConfigRepository, SettingsDocumentRepository, TaskAssignmentRepository,
};

pub mod bench;
pub mod contract;
pub mod fixtures;
pub mod postgres;

/// A fresh, empty store for one contract case, and the means to open a second one.
#[async_trait]
pub trait StoreFixture: Send + Sync + 'static {
    /// The store under test; it implements every repository port.
    type Store: ConfigRepository + TaskAssignmentRepository + SettingsDocumentRepository + AuditLog;

    /// The store under test.
    fn store(&self) -> Arc<Self::Store>;

    /// A second, independent store (its own connection pool) over the same database,
    /// standing in for another service process.
    async fn second_store(&self) -> Arc<Self::Store>;
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
            audit_lists_newest_first,
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
