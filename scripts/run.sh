#!/usr/bin/env bash
# Builds and runs a single Crest node: embedded journal in ./data, demo tenant, web page and API on
# http://127.0.0.1:8080. Extra arguments go to `crest serve` (see `crest serve --help`).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cargo build --release --quiet -p crest-infra --bin crest
exec "$root/target/release/crest" serve "$@"
