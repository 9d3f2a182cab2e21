# Recipes for working on the LLM settings service. `just --list` shows them.

# Run every test (the same command CI runs).
test:
    cargo test --workspace

# Lints as CI runs them.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

# Format the code.
fmt:
    cargo fmt --all

# Run the service on the embedded SQLite store.
run:
    cargo run --release
