//! The statement counts of the store contract, run against PostgreSQL (its own test
//! binary: statements are counted process-wide). Among them: checking a connection out of
//! the pool costs no round trip.

mod support;

llm_settings_testkit::statement_count_tests!(support::fixture());
