//! A local fake LLM provider server for tests (work in progress).
