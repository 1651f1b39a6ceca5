#!/usr/bin/env bash
# Step runs to find the peak sustainable rate: for each rate, a fresh `crest serve` (release,
# embedded journal, in-process bus) and one constant-rate run of crest-loadtest on the same machine.
#
#   loadtest/steps.sh OUT_DIR RATE... (env: DURATION=20 PORT=18090 FOLLOW=0.1 EXTRA="…")
#
# Needs `cargo build --release -p crest-infra --bin crest` and `cargo build --release -p crest-loadtest`.
# Prints one JSON line per step (the generator's last line plus "rate").
set -euo pipefail
out=${1:?usage: steps.sh OUT_DIR RATE...}
shift
target_dir=${CARGO_TARGET_DIR:-target}
duration=${DURATION:-20}
port=${PORT:-18090}
follow=${FOLLOW:-0.1}
mkdir -p "$out"
# Each step's node gets a fresh operator token, which issues the admin key of the `load` tenant.
operator=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
for rate in "$@"; do
  data=$(mktemp -d /tmp/crest-lt-XXXXXX)
  CREST_OPERATOR_TOKEN="$operator" CREST_LOG=warn "$target_dir/release/crest" serve --no-demo --data-dir "$data" \
    --listen "127.0.0.1:$port" >"$out/server-$rate.log" 2>&1 &
  server=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
  sleep 1 # the brain trains its model at start
  key=$(curl -sf -X POST "http://127.0.0.1:$port/v1/tenants/load/api-keys" \
    -H "authorization: Bearer $operator" -H 'content-type: application/json' \
    -d '{"role":"admin","name":"loadtest"}' | sed -E 's/.*"key":"([^"]+)".*/\1/')
  set +e
  # shellcheck disable=SC2086
  CREST_API_KEY="$key" "$target_dir/release/crest-loadtest" --target "http://127.0.0.1:$port" --rate "$rate" \
    --duration "$duration" --follow-fraction "$follow" --no-progress \
    --report "$out/step-$rate.json" --plot "$out/step-$rate.svg" ${EXTRA:-} >"$out/step-$rate.txt"
  code=$?
  set -e
  kill "$server" 2>/dev/null || echo "server $server had already exited" >&2
  wait "$server" 2>/dev/null || true
  rm -rf "$data"
  echo "{\"rate\":$rate,\"exit\":$code,\"result\":$(tail -n 1 "$out/step-$rate.txt")}"
done
