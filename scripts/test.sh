#!/usr/bin/env bash
# Runs Crest's whole test suite on a fresh machine: installs the tools, checks formatting and lints,
# checks that doc examples and benchmarks compile, runs the brain's dataset evaluations against
# their floors, fuzzes the served API contract with schemathesis (scripts/schemathesis.sh), checks the alerting rules and Prometheus config with promtool, runs every fuzz
# target for a bounded time (scripts/fuzz.sh), then runs every test (unit, golden files, journal
# contract, API, recovery, NATS, kill -9 crash, dashboards against a live Prometheus) with nextest.
# The browser test of the consoles and the widget (scripts/browser-tests.sh) runs against the
# release build before the fuzzing.
# The nextest summary is the last line.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

"$root/scripts/setup.sh"
export NATS_SERVER="$root/.tools/venv/bin/nats-server"
# A from-scratch run gains nothing from incremental caches, which would double the debug build on disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

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
echo "== API contract (schemathesis against a live node, SCHEMATHESIS_MAX_EXAMPLES per operation: default 25)"
"$root/scripts/schemathesis.sh"
echo "== browser tests (the consoles and the widget in Debian's Chromium: scripts/browser-tests.sh)"
CREST_BIN="$root/target/release/crest" "$root/scripts/browser-tests.sh"
echo "== promtool (alerting rules and the compose Prometheus config)"
promtool check rules infra/deploy/prometheus/rules.yml
promtool_dir="$(mktemp -d)"
trap 'rm -rf "$promtool_dir"' EXIT
# The compose config names the rules at their mount point; check a copy pointing at the repo's file.
sed "s#/etc/prometheus/rules.yml#$root/infra/deploy/prometheus/rules.yml#" \
  infra/deploy/prometheus/prometheus.yml >"$promtool_dir/prometheus.yml"
promtool check config "$promtool_dir/prometheus.yml"
sed "s#/etc/prometheus/rules.yml#$root/infra/deploy/prometheus/rules.yml#" \
  infra/deploy/prometheus/prometheus.cluster.yml >"$promtool_dir/prometheus.cluster.yml"
promtool check config "$promtool_dir/prometheus.cluster.yml"
echo "== fuzzing (every target, CREST_FUZZ_SECONDS each: default 15)"
# The instrumented build lives outside the clone so later runs on the same machine reuse it.
fuzz_target_dir="${CREST_FUZZ_TARGET_DIR:-$HOME/.cache/crest/fuzz-target}"
CREST_FUZZ_TARGET_DIR="$fuzz_target_dir" "$root/scripts/fuzz.sh" "${CREST_FUZZ_SECONDS:-15}"
# The instrumented build is a second full build of the server: drop it before the test build
# (disk), unless asked to keep it for the next run (CREST_FUZZ_KEEP_BUILD=1).
if [ "${CREST_FUZZ_KEEP_BUILD:-0}" != 1 ]; then rm -rf "$fuzz_target_dir"; fi
echo "== tests"
cargo nextest run --workspace --no-fail-fast
