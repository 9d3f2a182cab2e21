//! The statement counts of the store contract, run against SQLite (its own test binary:
//! statements are counted process-wide).

mod support;

llm_settings_testkit::statement_count_tests!(support::fixture());
