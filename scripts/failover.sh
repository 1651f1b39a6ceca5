#!/usr/bin/env bash
# Measures failover on a local cluster: kills one node with SIGKILL, times how long until a
# survivor reports every shard owned by the remaining nodes, brings the node back, and repeats.
#
#   scripts/failover.sh [--trials N] [--nodes N] [DIR]
#
# Prints one line per trial and the p50 and max in seconds. Uses scripts/cluster.sh (CREST_BIN
# and NATS_SERVER as there); DIR defaults to a temporary directory, removed at the end.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
trials=10 nodes=3 dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --trials) trials=$2; shift 2 ;;
    --nodes) nodes=$2; shift 2 ;;
    *) dir=$1; shift ;;
  esac
done
cleanup=""
if [ -z "$dir" ]; then
  dir=$(mktemp -d)
  cleanup=$dir
fi
cluster="$root/scripts/cluster.sh"
trap '"$cluster" stop "$dir" >/dev/null 2>&1 || true; [ -z "$cleanup" ] || rm -rf "$cleanup"' EXIT
"$cluster" start "$dir" --nodes "$nodes" >/dev/null

field() {
  python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); print(c["nodes"][int(sys.argv[2])][sys.argv[3]])' \
    "$dir/cluster.json" "$1" "$2"
}

settled_without() {
  curl -sf -m 1 -H "authorization: Bearer $(cat "$dir/operator.token")" "$1/v1/cluster" | python3 -c '
import json, sys
view = json.load(sys.stdin)
names = [m["name"] for m in view["members"]]
ok = sys.argv[1] not in names and len(names) == int(sys.argv[2]) and view["shards_owned"] == view["shards_total"]
sys.exit(0 if ok else 1)' "$2" "$3"
}

results=()
for trial in $(seq 1 "$trials"); do
  victim=$(( (trial - 1) % nodes ))
  survivor=$(( (victim + 1) % nodes ))
  name=$(field "$victim" name)
  url=$(field "$survivor" url)
  kill -KILL "$(field "$victim" pid)"
  start=$(date +%s.%N)
  until settled_without "$url" "$name" $((nodes - 1)); do sleep 0.05; done
  end=$(date +%s.%N)
  seconds=$(python3 -c "print(f'{$end - $start:.2f}')")
  results+=("$seconds")
  echo "trial $trial: killed $name, every shard owned by the $((nodes - 1)) others after ${seconds} s"
  "$cluster" restart-node "$dir" "$name" >/dev/null
done
python3 - "${results[@]}" <<'PY'
import statistics, sys
values = sorted(float(v) for v in sys.argv[1:])
print(f"failover over {len(values)} trials: p50 {statistics.median(values):.2f} s, max {values[-1]:.2f} s, min {values[0]:.2f} s")
PY
