//! The store contract suite, run against PostgreSQL (a fresh database per case, dropped
//! afterwards).

mod support;

llm_settings_testkit::store_contract_tests!(support::fixture());
