# Shared by scripts/fuzz-api and scripts/clients (sourced, not run): the Python tools' venv, the
# built binary, a network namespace of their own, and one fresh service on SQLite.

# Python tools, pinned, in a venv outside the work tree (kept between runs).
TOOLS_DIR="${LLM_SETTINGS_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/llm-settings-ci}"
VENV="$TOOLS_DIR/venv"
PY_TOOLS=(schemathesis==4.32.5 openapi-python-client==0.29.1)

ensure_venv() {
  local stamp="$VENV/.installed"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "${PY_TOOLS[*]}" ]; then
    rm -rf "$VENV"
    mkdir -p "$TOOLS_DIR"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PY_TOOLS[@]}"
    echo "${PY_TOOLS[*]}" >"$stamp"
  fi
}

# The service binary, built with the workspace's profile and target directory.
build_service() {
  cargo build -q --bin llm-settings
  SERVICE_BIN="${CARGO_TARGET_DIR:-target}/debug/llm-settings"
}

# Re-runs the calling script inside a network namespace with only a loopback interface, so
# nothing it starts (the service's connection tests and gateway calls included) can reach
# another machine. `unshare` needs root or user namespaces.
isolate() {
  if [ "${LLM_SETTINGS_ISOLATED:-}" != 1 ]; then
    LLM_SETTINGS_ISOLATED=1 SERVICE_BIN="$SERVICE_BIN" VENV="$VENV" \
      exec unshare --net --map-root-user -- bash "$0" "$@"
  fi
  ip link set lo up
}

# Starts the service on a fresh data directory at $BASE_URL and waits until it is ready.
SERVICE_PORT=18080
BASE_URL="http://127.0.0.1:$SERVICE_PORT"
start_service() {
  DATA_DIR=$(mktemp -d)
  export DATABASE_URL="sqlite://$DATA_DIR/llm-settings.sqlite3"
  export LLM_SETTINGS_DATA_DIR="$DATA_DIR"
  export LLM_SETTINGS_BIND="127.0.0.1:$SERVICE_PORT"
  export LLM_SETTINGS_JWT_SECRET="local-test-secret-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  export LLM_SETTINGS_PROBE_TIMEOUT_MS=2000
  export LLM_SETTINGS_GATEWAY_CONNECT_TIMEOUT_MS=2000
  export LLM_SETTINGS_LOG=warn
  # Rate limits are proven by tests/operations.rs; here they would turn most of the fuzzer's
  # connection tests and refused-token cases into 429s and hide the operations behind them.
  export LLM_SETTINGS_RATE_LIMIT_CONNECTION_TESTS=off
  export LLM_SETTINGS_RATE_LIMIT_GATEWAY_CALLS=off
  export LLM_SETTINGS_RATE_LIMIT_RESOLUTIONS=off
  export LLM_SETTINGS_RATE_LIMIT_FAILED_AUTHENTICATIONS=off
  "$SERVICE_BIN" serve >"$DATA_DIR/service.log" 2>&1 &
  SERVICE_PID=$!
  trap stop_service EXIT
  for _ in $(seq 1 100); do
    if curl -fsS "$BASE_URL/readyz" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  echo "the service did not become ready; its log:" >&2
  cat "$DATA_DIR/service.log" >&2
  return 1
}

stop_service() {
  if [ -n "${SERVICE_PID:-}" ]; then
    kill "$SERVICE_PID" 2>/dev/null || true
    wait "$SERVICE_PID" 2>/dev/null || true
  fi
  rm -rf "${DATA_DIR:?}"
}

# A bearer token from the service's own `token` command: mint SUB [token options…].
mint() {
  local sub=$1
  shift
  "$SERVICE_BIN" token --sub "$sub" --ttl 7200 "$@"
}

# Sends one JSON request and fails unless it answers 2xx: call METHOD PATH TOKEN [BODY].
call() {
  curl -fsS -X "$1" "$BASE_URL$2" -H "Authorization: Bearer $3" \
    -H 'Content-Type: application/json' ${4:+-d "$4"}
}
