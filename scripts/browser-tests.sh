#!/usr/bin/env bash
# The consoles and the customer widget in Debian's Chromium (web/tests/e2e.mjs, playwright-core):
# starts a node alone on a free port with a temporary data directory and a fresh operator token,
# waits until it is ready, and runs the browser test against it. Prints the test's measurements
# (browser-to-browser latency p50/p99, page weights) and exits non-zero if it fails.
#
#   scripts/browser-tests.sh [--screenshots DIR]
#
# Needs /usr/bin/chromium and web/tests/node_modules (scripts/setup.sh installs both); without
# Chromium it says so and exits 0 (skipped). The crest binary is CREST_BIN, or target/release/crest
# (built if missing or older than the sources).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
shots=""
if [ "${1:-}" = "--screenshots" ]; then
  shots="$(cd "${2:?--screenshots needs a directory}" && pwd)"
fi

chromium="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
  echo "browser tests SKIPPED: $chromium not found (scripts/setup.sh installs Debian's chromium)"
  exit 0
fi
if ! command -v node >/dev/null; then
  echo "error: node not found (scripts/setup.sh installs Debian's nodejs)" >&2
  exit 1
fi
if [ ! -d "$root/web/tests/node_modules/playwright-core" ]; then
  (cd "$root/web/tests" && npm ci --silent --no-audit --no-fund)
fi
if [ -n "${CREST_BIN:-}" ]; then
  crest="$CREST_BIN"
else
  cargo build --release --quiet -p crest-infra --bin crest
  crest="$root/target/release/crest"
fi

work="$(mktemp -d)"
node_pid=""
cleanup() {
  if [ -n "$node_pid" ]; then
    kill "$node_pid" 2>/dev/null || true
    wait "$node_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
operator="$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')"
# The latency measurement sends its samples back to back from one customer: more than the default
# customer burst (20), so the node allows more here; the widget waits out a 429 by itself anyway.
CREST_OPERATOR_TOKEN="$operator" CREST_LOG=warn "$crest" serve --no-demo --data-dir "$work/data" \
  --listen "127.0.0.1:$port" --customer-messages-per-min 600 --customer-message-burst 100 \
  >"$work/node.log" 2>&1 &
node_pid=$!
for _ in $(seq 1 600); do
  if curl -fsS "$base/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$node_pid" 2>/dev/null; then
    echo "error: the node exited at start:" >&2
    cat "$work/node.log" >&2
    exit 1
  fi
  sleep 0.1
done
curl -fsS "$base/readyz" >/dev/null

status=0
CREST_URL="$base" CREST_OPERATOR_TOKEN="$operator" CHROMIUM="$chromium" SCREENSHOTS="$shots" \
  node "$root/web/tests/e2e.mjs" || status=$?
if [ "$status" != 0 ]; then
  echo "node log (last 40 lines):" >&2
  tail -n 40 "$work/node.log" >&2
fi
exit "$status"
