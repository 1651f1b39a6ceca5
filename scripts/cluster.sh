#!/usr/bin/env bash
# A Crest cluster on this machine's loopback: 3 nats-server processes (one JetStream cluster, the
# journal's streams replicated 3 times) and N `crest serve` nodes sharing that journal.
#
#   scripts/cluster.sh start DIR [--nodes N] [-- EXTRA crest serve ARGS]
#       Starts everything on free ports with data under DIR, writes DIR/cluster.json
#       {"nats":[{"url","pid"}],"nodes":[{"name","url","pid"}]} and returns once every node is a
#       member and every shard is owned.
#   scripts/cluster.sh stop DIR
#       Stops the nodes (SIGTERM, then SIGKILL after 15 s) and the NATS servers.
#   scripts/cluster.sh restart-node DIR NAME
#       Starts node NAME again (after a crash or a kill) on its port and data directory, and waits
#       until it is back in the cluster with every shard owned.
#   scripts/cluster.sh add-node DIR
#       Starts one more node (crest-<N+1>) and waits until the cluster has placed shards on it.
#   scripts/cluster.sh restart-nats DIR NAME
#       Starts NATS server NAME (nats-1..3) again after a crash or a kill, on its ports and store.
#   scripts/cluster.sh status DIR
#       Prints each node's GET /v1/cluster summary.
#
# The crest binary is target/release/crest (built if missing or older than the sources), or
# CREST_BIN. The nats-server binary is .tools/venv/bin/nats-server (installed by scripts/setup.sh),
# or NATS_SERVER. Logs: DIR/nats-K/log, DIR/crest-K/log. The nodes' operator token is
# CREST_OPERATOR_TOKEN, or a random one; either is kept in DIR/operator.token (mode 600), which
# creates tenants' API keys: curl -H "authorization: Bearer $(cat DIR/operator.token)" ….
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

usage() {
  sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

die() {
  echo "cluster.sh: $*" >&2
  exit 1
}

free_ports() {
  python3 - "$1" <<'EOF'
import socket, sys
held = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    held.append(s)
print(" ".join(str(s.getsockname()[1]) for s in held))
EOF
}

# json_get FILE EXPRESSION: evaluates a Python expression over the file's JSON as `c`.
json_get() {
  python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

nats_binary() {
  if [ -n "${NATS_SERVER:-}" ]; then
    echo "$NATS_SERVER"
    return
  fi
  local nats="$root/.tools/venv/bin/nats-server"
  if [ ! -x "$nats" ]; then
    "$root/scripts/setup.sh" >&2
  fi
  echo "$nats"
}

crest_binary() {
  if [ -n "${CREST_BIN:-}" ]; then
    [ -x "$CREST_BIN" ] || die "CREST_BIN=$CREST_BIN is not an executable"
    echo "$CREST_BIN"
    return
  fi
  (cd "$root" && cargo build --release --quiet -p crest-infra --bin crest) >&2
  echo "$root/target/release/crest"
}

# wait_until SECONDS DESCRIPTION COMMAND...: runs COMMAND every 200 ms until it succeeds.
wait_until() {
  local seconds=$1 what=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      die "$what: not within ${seconds} s"
    fi
    sleep 0.2
  done
}

nats_healthy() {
  curl -sf "http://127.0.0.1:$1/healthz" | grep -q '"ok"'
}

# cluster_settled DIR URL NODES: the node at URL sees NODES members and every shard owned.
cluster_settled() {
  curl -sf -m 2 -H "authorization: Bearer $(cat "$1/operator.token")" "$2/v1/cluster" | python3 -c '
import json, sys
view = json.load(sys.stdin)
members = view.get("members", [])
ok = len(members) == int(sys.argv[1]) and view["shards_owned"] == view["shards_total"]
sys.exit(0 if ok else 1)' "$3"
}

start_nats() {
  local dir=$1 name=$2 args
  mapfile -t args <"$dir/$name/args"
  nohup "$(cat "$dir/nats.bin")" "${args[@]}" >>"$dir/$name/log" 2>&1 </dev/null &
  echo $! >"$dir/$name/pid"
}

start_node() {
  local dir=$1 name=$2 port=$3
  local bin nats_urls extra=()
  bin=$(cat "$dir/crest.bin")
  nats_urls=$(cat "$dir/nats.urls")
  if [ -s "$dir/serve.args" ]; then
    mapfile -t extra <"$dir/serve.args"
  fi
  mkdir -p "$dir/$name"
  CREST_OPERATOR_TOKEN= CREST_LOG="${CREST_LOG:-info}" nohup "$bin" serve \
    --operator-token-file "$dir/operator.token" \
    --listen "127.0.0.1:$port" \
    --advertise-url "http://127.0.0.1:$port" \
    --data-dir "$dir/$name/data" \
    --nats "$nats_urls" \
    --journal jetstream --replicas 3 \
    --cluster-node "$name" \
    "${extra[@]}" >>"$dir/$name/log" 2>&1 </dev/null &
  echo $! >"$dir/$name/pid"
}

write_json() {
  local dir=$1
  python3 - "$dir" <<'EOF'
import json, os, sys
dir = sys.argv[1]
def read(path):
    with open(os.path.join(dir, path)) as f:
        return f.read().strip()
nats = [{"url": read(f"{n}/url"), "pid": int(read(f"{n}/pid")), "monitor": int(read(f"{n}/monitor"))}
        for n in sorted(d for d in os.listdir(dir) if d.startswith("nats-"))]
nodes = [{"name": n, "url": read(f"{n}/url"), "pid": int(read(f"{n}/pid"))}
         for n in sorted((d for d in os.listdir(dir) if d.startswith("crest-")),
                         key=lambda d: int(d.split("-")[1]))]
with open(os.path.join(dir, "cluster.json.tmp"), "w") as f:
    json.dump({"nats": nats, "nodes": nodes}, f, indent=2)
os.replace(os.path.join(dir, "cluster.json.tmp"), os.path.join(dir, "cluster.json"))
EOF
}

wait_settled() {
  local dir=$1 count
  count=$(json_get "$dir/cluster.json" 'len(c["nodes"])')
  for url in $(json_get "$dir/cluster.json" '" ".join(n["url"] for n in c["nodes"])'); do
    wait_until 60 "node $url ready" curl -sf -m 2 "$url/healthz"
    wait_until 90 "node $url sees $count members and every shard owned" \
      cluster_settled "$dir" "$url" "$count"
  done
}

cmd_start() {
  local dir="" nodes=3 extra=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --nodes) nodes=${2:?--nodes needs a number}; shift 2 ;;
      --) shift; extra=("$@"); break ;;
      -*) die "unknown option $1" ;;
      *) [ -z "$dir" ] || die "one DIR only"; dir=$1; shift ;;
    esac
  done
  [ -n "$dir" ] || usage
  [[ "$nodes" =~ ^[1-9][0-9]*$ ]] || die "--nodes must be a positive number, got $nodes"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ -f "$dir/cluster.json" ]; then
    die "$dir/cluster.json exists: stop that cluster first (scripts/cluster.sh stop $dir) or pick another DIR"
  fi
  local nats bin
  nats=$(nats_binary)
  bin=$(crest_binary)
  echo "$bin" >"$dir/crest.bin"
  (
    umask 077
    printf '%s\n' "${CREST_OPERATOR_TOKEN:-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')}" \
      >"$dir/operator.token"
  )
  if [ ${#extra[@]} -gt 0 ]; then
    printf '%s\n' "${extra[@]}" >"$dir/serve.args"
  else
    : >"$dir/serve.args"
  fi

  local ports
  read -r -a ports <<<"$(free_ports $((3 * 3 + nodes)))"
  local routes="" k
  for k in 0 1 2; do
    routes+="${routes:+,}nats://127.0.0.1:${ports[$((3 + k))]}"
  done
  local urls=""
  echo "$nats" >"$dir/nats.bin"
  for k in 0 1 2; do
    local name="nats-$((k + 1))" client=${ports[$k]} route=${ports[$((3 + k))]} monitor=${ports[$((6 + k))]}
    mkdir -p "$dir/$name/store"
    printf '%s\n' -a 127.0.0.1 -p "$client" -m "$monitor" -n "$name" -js -sd "$dir/$name/store" \
      --cluster_name crest --cluster "nats://127.0.0.1:$route" --routes "$routes" >"$dir/$name/args"
    echo "nats://127.0.0.1:$client" >"$dir/$name/url"
    echo "$monitor" >"$dir/$name/monitor"
    start_nats "$dir" "$name"
    urls+="${urls:+,}nats://127.0.0.1:$client"
  done
  echo "$urls" >"$dir/nats.urls"
  for k in 0 1 2; do
    wait_until 30 "nats-$((k + 1)) JetStream ready" nats_healthy "${ports[$((6 + k))]}"
  done

  for k in $(seq 1 "$nodes"); do
    local port=${ports[$((8 + k))]}
    mkdir -p "$dir/crest-$k"
    echo "http://127.0.0.1:$port" >"$dir/crest-$k/url"
    start_node "$dir" "crest-$k" "$port"
  done
  write_json "$dir"
  wait_settled "$dir"
  echo "cluster of $nodes nodes ready: $dir/cluster.json"
  cat "$dir/cluster.json"
}

# alive PID: the process runs (an exited process nobody reaped yet is a zombie: not alive).
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local state
  state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ "$state" != Z ]
}

stop_pid() {
  local pid=$1 seconds=$2
  alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  local deadline=$((SECONDS + seconds))
  while alive "$pid"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
}

cmd_stop() {
  local dir=${1:-}
  [ -n "$dir" ] || usage
  [ -f "$dir/cluster.json" ] || die "no cluster at $dir (no cluster.json)"
  local pid
  for pid in $(json_get "$dir/cluster.json" '" ".join(str(n["pid"]) for n in c["nodes"])'); do
    stop_pid "$pid" 15 &
  done
  wait
  for pid in $(json_get "$dir/cluster.json" '" ".join(str(n["pid"]) for n in c["nats"])'); do
    stop_pid "$pid" 10 &
  done
  wait
  mv "$dir/cluster.json" "$dir/cluster.stopped.json"
  echo "cluster at $dir stopped"
}

cmd_restart_node() {
  local dir=${1:-} name=${2:-}
  [ -n "$dir" ] && [ -n "$name" ] || usage
  [ -f "$dir/cluster.json" ] || die "no cluster at $dir (no cluster.json)"
  dir=$(cd "$dir" && pwd)
  [ -f "$dir/$name/url" ] || die "no node $name in $dir"
  local pid url port
  pid=$(cat "$dir/$name/pid")
  if alive "$pid"; then
    die "node $name is still running (pid $pid): stop or kill it first"
  fi
  url=$(cat "$dir/$name/url")
  port=${url##*:}
  start_node "$dir" "$name" "$port"
  write_json "$dir"
  wait_settled "$dir"
  echo "node $name is back: $url"
}

cmd_add_node() {
  local dir=${1:-}
  [ -n "$dir" ] || usage
  [ -f "$dir/cluster.json" ] || die "no cluster at $dir (no cluster.json)"
  dir=$(cd "$dir" && pwd)
  local count name port
  count=$(json_get "$dir/cluster.json" 'len(c["nodes"])')
  name="crest-$((count + 1))"
  port=$(free_ports 1)
  mkdir -p "$dir/$name"
  echo "http://127.0.0.1:$port" >"$dir/$name/url"
  start_node "$dir" "$name" "$port"
  write_json "$dir"
  wait_settled "$dir"
  echo "node $name joined: http://127.0.0.1:$port"
}

cmd_restart_nats() {
  local dir=${1:-} name=${2:-}
  [ -n "$dir" ] && [ -n "$name" ] || usage
  [ -f "$dir/cluster.json" ] || die "no cluster at $dir (no cluster.json)"
  dir=$(cd "$dir" && pwd)
  [ -f "$dir/$name/args" ] || die "no NATS server $name in $dir"
  if alive "$(cat "$dir/$name/pid")"; then
    die "NATS server $name is still running: stop or kill it first"
  fi
  start_nats "$dir" "$name"
  write_json "$dir"
  wait_until 30 "$name JetStream ready" nats_healthy "$(cat "$dir/$name/monitor")"
  echo "NATS server $name is back"
}

cmd_status() {
  local dir=${1:-}
  [ -n "$dir" ] || usage
  [ -f "$dir/cluster.json" ] || die "no cluster at $dir (no cluster.json)"
  local url
  for url in $(json_get "$dir/cluster.json" '" ".join(n["url"] for n in c["nodes"])'); do
    printf '%s ' "$url"
    curl -sf -m 2 -H "authorization: Bearer $(cat "$dir/operator.token")" "$url/v1/cluster" ||
      printf 'unreachable'
    echo
  done
}

command=${1:-}
[ $# -gt 0 ] && shift
case "$command" in
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  restart-node) cmd_restart_node "$@" ;;
  add-node) cmd_add_node "$@" ;;
  restart-nats) cmd_restart_nats "$@" ;;
  status) cmd_status "$@" ;;
  *) usage ;;
esac
