#!/usr/bin/env bash
# The gateway next to LiteLLM's proxy, in one run, against the same local upstream and load.
#
# Installs LiteLLM's proxy (`pip install 'litellm[proxy]'`) in a virtualenv, starts it twice
# (1 worker and 2 workers) with a config whose models point at the nginx upstream that the
# gateway phase of `cargo bench --bench load` starts on a port chosen here, then runs that
# phase with LiteLLM added as peers: direct, nginx proxy_pass, the gateway (Postgres and
# SQLite) and LiteLLM are all driven by wrk with the same bodies at 16 and 64 clients,
# non-streaming and streaming. Not part of the tests. Only 127.0.0.1 is contacted (besides
# PyPI for the install).
#
# Environment: LITELLM_VENV (default: $TMPDIR/llm-settings-litellm-venv, reused when present),
# BENCH_GATEWAY_SECONDS (default 5), BENCH_GATEWAY_CLIENTS (default 16,64),
# BENCH_GATEWAY_STORES (default postgres,sqlite), LITELLM_WORKERS (default "1 2").
# Needs wrk and nginx (apt-get install -y wrk nginx), Python 3 and PostgreSQL as for `just bench`.
# The tables are printed and written to bench/results-litellm.md.

set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${LITELLM_VENV:-${TMPDIR:-/tmp}/llm-settings-litellm-venv}"
workers_list="${LITELLM_WORKERS:-1 2}"
master_key="sk-litellm-bench-0123456789"
# LiteLLM: no model-cost map fetched from the network, no telemetry, errors only in the log.
export LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_LOG=ERROR

for tool in wrk python3; do
    command -v "$tool" >/dev/null || { echo "$tool is not installed (apt-get install -y wrk nginx)" >&2; exit 1; }
done
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { echo "nginx is not installed (apt-get install -y nginx)" >&2; exit 1; }

if ! "$venv/bin/python" -c 'import litellm.proxy.proxy_server' 2>/dev/null; then
    echo "installing litellm[proxy] into $venv"
    python3 -m venv "$venv"
    if ! "$venv/bin/pip" install --quiet 'litellm[proxy]'; then
        echo "LiteLLM could not be installed from PyPI (see pip's error above)" >&2
        exit 1
    fi
fi
echo "LiteLLM $("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("litellm"))')"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        # Each LiteLLM was started in its own session: stop its whole process group.
        kill -TERM -- "-$pid" 2>/dev/null || true
    done
    sleep 1
    for pid in "${pids[@]}"; do
        kill -KILL -- "-$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

upstream="$(free_port)"
cat >"$work/litellm.yaml" <<EOF
model_list:
  - model_name: bench-chat
    litellm_params:
      model: openai/bench-chat
      api_base: http://127.0.0.1:$upstream/v1
      api_key: sk-upstream-bench
  - model_name: bench-stream
    litellm_params:
      model: openai/bench-stream
      api_base: http://127.0.0.1:$upstream/v1/stream
      api_key: sk-upstream-bench
litellm_settings:
  telemetry: false
general_settings:
  master_key: $master_key
EOF

peers=""
for workers in $workers_list; do
    port="$(free_port)"
    extra=()
    # uvicorn restarts a worker that misses its health check (5 s by default): importing
    # LiteLLM takes longer than that on a busy machine, so the workers would never come up.
    [ "$workers" = 1 ] || extra=(--timeout_worker_healthcheck 300)
    setsid "$venv/bin/litellm" --config "$work/litellm.yaml" --host 127.0.0.1 --port "$port" \
        --num_workers "$workers" "${extra[@]}" >"$work/litellm-$workers.log" 2>&1 &
    pids+=("$!")
    label="litellm ${workers} worker"
    [ "$workers" = 1 ] || label="${label}s"
    peers="${peers}${label}=http://127.0.0.1:${port};"
    for _ in $(seq 1 600); do
        if python3 - "$port" <<'EOF' 2>/dev/null; then break; fi
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/health/liveliness", timeout=1)
EOF
        if ! kill -0 "${pids[-1]}" 2>/dev/null; then
            echo "LiteLLM ($workers workers) exited:" >&2
            cat "$work/litellm-$workers.log" >&2
            exit 1
        fi
        sleep 0.5
    done
    echo "LiteLLM with $workers worker(s) listening on 127.0.0.1:$port"
done

cd "$root"
BENCH_PHASES=gateway \
BENCH_UPSTREAM_PORT="$upstream" \
BENCH_GATEWAY_CLIENTS="${BENCH_GATEWAY_CLIENTS:-16,64}" \
BENCH_PEERS="$peers" \
BENCH_PEER_TOKEN="$master_key" \
BENCH_RESULTS="${BENCH_RESULTS:-$root/bench/results-litellm.md}" \
    cargo bench -p llm-settings-server --bench load
