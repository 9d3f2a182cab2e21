//! The store contract suite, run against SQLite (a fresh database file per case).

mod support;

llm_settings_testkit::store_contract_tests!(support::fixture());
