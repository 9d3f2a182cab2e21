# Recipes for working on the LLM settings service. `just --list` shows them.

# Run every test (the same command CI runs).
test:
    bash scripts/test

# Lints as CI runs them.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

# Prove the layering: no adapter crate (diesel, actix-web, reqwest, chacha20poly1305 …) is ever
# under the domain crate, and every adapter depends on it (`cargo tree -i`, as CI runs it).
layering:
    bash .ci/layering.sh

# Format the code.
fmt:
    cargo fmt --all

# Run the service on the embedded SQLite store.
run:
    cargo run --release

# Load benchmark of the release service against raw store calls (Postgres and SQLite), then the
# gateway against a local nginx upstream called directly and through nginx proxy_pass (needs wrk
# and nginx). Tables also go to bench/results.md.
bench:
    cargo bench -p llm-settings-server --bench load

# The gateway next to LiteLLM's proxy (installed from PyPI into a virtualenv), same load, one run.
bench-litellm:
    bash bench/gateway-vs-litellm.sh

# Store micro-benchmarks (list / upsert / set-default per store).
bench-stores:
    cargo bench -p llm-settings-store-sqlite -p llm-settings-store-postgres
