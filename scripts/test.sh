#!/usr/bin/env bash
# Runs Crest's whole test suite on a fresh machine: installs the tools, checks formatting and lints,
# checks that doc examples and benchmarks compile, runs the brain's dataset evaluations against
# their floors, then runs every test (unit, golden files, journal
# contract, API, recovery, NATS, kill -9 crash) with nextest. The nextest summary is the last line.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

"$root/scripts/setup.sh"
export NATS_SERVER="$root/.tools/venv/bin/nats-server"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== doc tests"
cargo test --workspace --doc --quiet
echo "== benchmarks compile"
cargo bench --workspace --no-run --quiet
echo "== brain evaluations (../shared/datasets, 90/10 split; floors in brain/eval/floors.json)"
cargo build --release --quiet -p crest-infra --bin crest
python3 scripts/eval.py --crest "$root/target/release/crest"
echo "== tests"
cargo nextest run --workspace --no-fail-fast
