#!/usr/bin/env bash
# Dependencies point inward: no database, web, HTTP-client or cipher crate is ever under the
# domain crate (`cargo tree -i` lists every path from the domain to it; none may exist), and
# every adapter crate depends on the domain. Used by CI (.ci/run) and `just layering`.
set -euo pipefail
cd "$(dirname "$0")/.."

domain=llm-settings-domain
adapters=(diesel diesel-async tokio-postgres actix-web reqwest chacha20poly1305 metrics governor)
inner=(llm-settings-crypto llm-settings-store-postgres llm-settings-store-sqlite llm-settings-probes llm-settings-http)
status=0

for crate in "${adapters[@]}"; do
  # The crate must exist in the workspace, so a misspelt name cannot pass silently.
  if ! cargo tree --workspace -e normal -i "$crate" --depth 0 >/dev/null 2>&1; then
    echo "layering: $crate is not a dependency of any workspace crate; check the list" >&2
    status=1
    continue
  fi
  if paths=$(cargo tree -p "$domain" -e normal,build -i "$crate" 2>/dev/null); then
    echo "layering: $domain depends on $crate:" >&2
    echo "$paths" >&2
    status=1
  fi
done

for crate in "${inner[@]}"; do
  if ! cargo tree -p "$crate" -e normal -i "$domain" --depth 1 >/dev/null 2>&1; then
    echo "layering: $crate does not depend on $domain" >&2
    status=1
  fi
done

if [ "$status" -eq 0 ]; then
  echo "layering: $domain depends on none of ${adapters[*]}; every adapter depends on it"
fi
exit "$status"
