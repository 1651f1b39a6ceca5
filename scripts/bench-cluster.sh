#!/usr/bin/env bash
# Ingest throughput of one node on its own journal (fjall), one cluster node on JetStream and three
# cluster nodes on JetStream, in one run on this machine (every process shares its cores, so read
# the figures as ratios). Closed loop: wrk with ../shared/bench/ingest.lua-style unique messages,
# 50 connections in all, spread evenly over the nodes.
#
#   scripts/bench-cluster.sh [SECONDS]
#
# Needs wrk (Debian package) and a release build (CREST_BIN, default target/release/crest).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
seconds=${1:-20}
bin=${CREST_BIN:-$root/target/release/crest}
command -v wrk >/dev/null || { echo "bench-cluster.sh: needs wrk (apt-get install wrk)" >&2; exit 1; }
work=$(mktemp -d)
trap 'for d in "$work"/c*; do [ -f "$d/cluster.json" ] && "$root/scripts/cluster.sh" stop "$d" >/dev/null 2>&1; done; kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
cat >"$work/ingest.lua" <<'LUA'
local runid = os.getenv("RUNID") or "x"
local auth = os.getenv("AUTH")
local counter = 0
request = function()
  counter = counter + 1
  local customer = "w-" .. math.floor(counter / 10) .. "-" .. runid
  local body = '{"channel":"web","customer":"' .. customer .. '","id":"m-' .. counter .. "-" .. runid ..
    '","text":"我的订单什么时候到"}'
  local headers = { ["content-type"] = "application/json" }
  if auth then headers["authorization"] = "Bearer " .. auth end
  return wrk.format("POST", "/v1/tenants/bench/messages", headers, body)
end
LUA

# key URL TOKEN: an integration key of the `bench` tenant, issued with the operator token.
key() {
  curl -sf -X POST "$1/v1/tenants/bench/api-keys" -H "authorization: Bearer $2" \
    -H 'content-type: application/json' -d '{"role":"integration","name":"bench"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])'
}

# run LABEL URL...: wrk on every URL at once, connections split evenly (AUTH: the bearer key);
# prints the sum and the worst p99.
run() {
  local label=$1
  shift
  local count=$# connections=$((50 / $#)) index=0 pids=()
  for url in "$@"; do
    index=$((index + 1))
    RUNID="$label-$index-$RANDOM" wrk -t1 -c"$connections" -d"${seconds}s" --latency \
      -s "$work/ingest.lua" "$url" >"$work/$label-$index.txt" 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}"
  python3 - "$label" "$count" "$work"/"$label"-*.txt <<'PY'
import re, sys
label, count, files = sys.argv[1], sys.argv[2], sys.argv[3:]
total, p99s, errors = 0.0, [], 0
def ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
for path in files:
    text = open(path).read()
    total += float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", text)
    p99s.append(ms(*p99.groups()))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors += int(non2xx.group(1)) if non2xx else 0
print(f"{label:28} {total:9.0f} msg/s   ack p99 {max(p99s):7.1f} ms   non-2xx {errors}   ({count} node(s))")
PY
}

echo "== one node, fjall journal"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
operator=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
CREST_OPERATOR_TOKEN=$operator CREST_LOG=warn "$bin" serve --no-demo --listen "127.0.0.1:$port" \
  --data-dir "$work/fjall" >"$work/fjall.log" 2>&1 &
fjall_pid=$!
until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; do sleep 0.2; done
AUTH=$(key "http://127.0.0.1:$port" "$operator") run fjall-1-node "http://127.0.0.1:$port"
kill "$fjall_pid"; wait "$fjall_pid" 2>/dev/null || true

for nodes in 1 3; do
  echo "== $nodes cluster node(s), JetStream journal (R3 on 3 nats-server)"
  CREST_LOG=warn CREST_BIN="$bin" "$root/scripts/cluster.sh" start "$work/c$nodes" --nodes "$nodes" -- --no-demo >/dev/null
  mapfile -t urls < <(python3 -c 'import json,sys; [print(n["url"]) for n in json.load(open(sys.argv[1]))["nodes"]]' "$work/c$nodes/cluster.json")
  AUTH=$(key "${urls[0]}" "$(cat "$work/c$nodes/operator.token")") run "jetstream-$nodes-node" "${urls[@]}"
  "$root/scripts/cluster.sh" stop "$work/c$nodes" >/dev/null
done
