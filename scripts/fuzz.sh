#!/usr/bin/env bash
# Builds the coverage-guided fuzz targets (fuzz/, libFuzzer through the libfuzzer-sys crate on the
# stable toolchain: SanitizerCoverage passes instead of cargo-fuzz's nightly-only sanitizer flags)
# and runs each for SECONDS (default 20, or $CREST_FUZZ_SECONDS), starting from the committed seeds
# (fuzz/seeds/<target>) and the working corpus (fuzz/corpus/<target>, not committed). Prints each
# target's executions, executions per second and corpus size, and exits non-zero if any target
# crashed, hung or ran out of memory: the input is left in fuzz/artifacts/<target>/ (turn it into a
# regression test in the normal test suite, then fix the code).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# CREST_FUZZ_TARGET_DIR puts the (large) instrumented build elsewhere than fuzz/target.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${1:-${CREST_FUZZ_SECONDS:-20}}"
shift || true
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  targets=(codec envelope api_json http_bodies)
fi
triple="$(rustc -vV | sed -n 's/^host: //p')"
export CARGO_TARGET_DIR="${CREST_FUZZ_TARGET_DIR:-$root/fuzz/target}"
# The flags cargo-fuzz passes for coverage, minus the sanitizer (nightly only). With an explicit
# --target they reach the targets' crates but not build scripts and proc macros.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing"
unset CARGO_BUILD_RUSTFLAGS
cd "$root/fuzz"
echo "building ${targets[*]} (instrumented, $CARGO_TARGET_DIR)"
build_started=$SECONDS
bins=()
for target in "${targets[@]}"; do bins+=(--bin "$target"); done
cargo build --release --quiet --target "$triple" "${bins[@]}"
echo "built in $((SECONDS - build_started)) s"

failed=()
summary=()
for target in "${targets[@]}"; do
  corpus="$root/fuzz/corpus/$target"
  artifacts="$root/fuzz/artifacts/$target"
  mkdir -p "$corpus" "$artifacts"
  dict=()
  case "$target" in api_json | http_bodies) dict=(-dict="$root/fuzz/dicts/json.dict") ;; esac
  log="$(mktemp)"
  status=0
  "$CARGO_TARGET_DIR/$triple/release/$target" "$corpus" "$root/fuzz/seeds/$target" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len=65536 \
    -artifact_prefix="$artifacts/" -print_final_stats=1 "${dict[@]}" >"$log" 2>&1 || status=$?
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
  done_line="$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)"
  cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")"
  files="$(find "$corpus" "$root/fuzz/seeds/$target" -type f | wc -l)"
  bytes="$(find "$corpus" "$root/fuzz/seeds/$target" -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}')"
  line="$(printf '%-12s %8s s  execs %10s  exec/s %7s  cov %6s  corpus %5s files %9s bytes' \
    "$target" "$seconds" "${execs:-?}" "${rate:-?}" "${cov:-?}" "$files" "$bytes")"
  if [ "$status" -ne 0 ]; then
    failed+=("$target")
    line="$line  FAILED (exit $status)"
    echo "---- $target failed; its log:" >&2
    grep -v '^#[0-9]' "$log" | tail -60 >&2
    ls -l "$artifacts" >&2
  fi
  echo "$line"
  summary+=("$line")
  rm -f "$log"
done
echo "== fuzzing summary"
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -ne 0 ]; then
  echo "fuzzing found failures in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
