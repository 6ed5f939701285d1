#!/usr/bin/env bash
# A real Redis Cluster on loopback for edgefeed's tests and benchmarks.
#
#   scripts/redis-cluster.sh start DIR [MASTERS [REPLICAS]]
#       Start MASTERS masters (default 3), each with REPLICAS replicas
#       (default 1), on free loopback ports, AOF on (appendfsync always),
#       every node's files under DIR (which must be empty or absent).
#       Prints the store address, redis://127.0.0.1:PORT,...; writes it to
#       DIR/address and each node's pid to DIR/<port>/redis.pid.
#   scripts/redis-cluster.sh stop DIR
#       Stop every node started in DIR, by pid (SIGTERM, then SIGKILL after
#       5 s), and wait for each to exit. DIR is left for the caller.
#   scripts/redis-cluster.sh ports DIR
#       The nodes' ports, one a line.
#
# Exit status: 0, 1 on a failure (with a message), 2 on a usage error.
set -euo pipefail

die() { echo "redis-cluster: $*" >&2; exit 1; }
usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

[ $# -ge 2 ] || usage
cmd=$1
dir=$2

port_free() { # a port and its cluster bus port (+10000) both unbound
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null &&
    ! (exec 3<>"/dev/tcp/127.0.0.1/$(($1 + 10000))") 2>/dev/null
}

# Client ports come from 10000-19999, so their bus ports (+10000) lie in
# 20000-29999: one cluster's client port is never another's bus port, and
# neither is in Linux's range of ephemeral ports (32768-60999), which
# outgoing connections take.
pick_ports() { # N free ports, from a random base, so parallel runs differ
  local n=$1 p tries=0 got=()
  p=$((10000 + RANDOM % 10000))
  while [ ${#got[@]} -lt "$n" ]; do
    tries=$((tries + 1))
    [ "$tries" -lt 2000 ] || die "no free loopback ports found"
    p=$((p + 1))
    [ "$p" -lt 20000 ] || p=10000
    port_free "$p" && got+=("$p")
  done
  echo "${got[@]}"
}

node_conf() { # port dir
  cat <<EOF
port $1
bind 127.0.0.1
dir $2
daemonize yes
pidfile $2/redis.pid
logfile $2/redis.log
cluster-enabled yes
cluster-config-file nodes.conf
cluster-node-timeout 2000
cluster-replica-validity-factor 0
appendonly yes
appendfsync always
save ""
repl-diskless-sync yes
repl-diskless-load swapdb
EOF
}

wait_ok() { # every node reports cluster_state:ok and the same epoch of slots
  local deadline=$((SECONDS + 60)) port ok
  while :; do
    ok=1
    for port in "$@"; do
      redis-cli -p "$port" cluster info 2>/dev/null | grep -q 'cluster_state:ok' || ok=0
    done
    [ "$ok" = 1 ] && return 0
    [ "$SECONDS" -lt "$deadline" ] || die "cluster not ready after 60 s (logs in $dir/*/redis.log)"
    sleep 0.2
  done
}

wait_replicas() { # N replicas known to every node, each linked to its master
  local want=$1 deadline=$((SECONDS + 60)) port ok up
  shift
  while :; do
    ok=1 up=0
    for port in "$@"; do
      [ "$(redis-cli -p "$port" cluster nodes 2>/dev/null | grep -cE ' (myself,)?slave ')" = "$want" ] || ok=0
      redis-cli -p "$port" info replication 2>/dev/null | grep -q 'master_link_status:up' && up=$((up + 1))
    done
    [ "$ok" = 1 ] && [ "$up" = "$want" ] && return 0
    [ "$SECONDS" -lt "$deadline" ] || die "replicas not linked after 60 s (logs in $dir/*/redis.log)"
    sleep 0.2
  done
}

start() {
  local masters=${1:-3} replicas=${2:-1}
  case "$masters$replicas" in *[!0-9]*) usage ;; esac
  [ "$masters" -ge 1 ] || die "MASTERS: at least 1"
  command -v redis-server >/dev/null || die "redis-server not found (scripts/deps.sh installs it)"
  command -v redis-cli >/dev/null || die "redis-cli not found (scripts/deps.sh installs it)"
  if [ -e "$dir" ] && [ -n "$(ls -A "$dir")" ]; then die "$dir: not empty"; fi
  mkdir -p "$dir"
  # a start that fails stops what it started
  trap 'rc=$?; [ "$rc" = 0 ] || stop; exit "$rc"' EXIT
  local n=$((masters * (1 + replicas))) ports port addrs=() list=""
  # Picking free ports and binding them is not atomic: clusters started
  # at once (tests run in parallel) take turns here, until every node
  # answers, so that none takes a port another has just picked.
  exec 9>"${TMPDIR:-/tmp}/edgefeed-redis-ports.lock"
  flock 9
  read -r -a ports <<<"$(pick_ports "$n")"
  for port in "${ports[@]}"; do
    mkdir -p "$dir/$port"
    node_conf "$port" "$(cd "$dir/$port" && pwd)" >"$dir/$port/redis.conf"
    redis-server "$dir/$port/redis.conf" || die "node $port did not start (see $dir/$port/redis.log)"
    addrs+=("127.0.0.1:$port")
  done
  for port in "${ports[@]}"; do # each answers before the cluster is made
    local deadline=$((SECONDS + 20))
    until redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; do
      [ "$SECONDS" -lt "$deadline" ] ||
        die "node $port does not answer; its log ends: $(tail -n 3 "$dir/$port/redis.log" 2>/dev/null | tr '\n' ' ')"
      sleep 0.1
    done
  done
  flock -u 9
  exec 9>&-
  if [ "$masters" -ge 3 ]; then
    redis-cli --cluster create "${addrs[@]}" --cluster-replicas "$replicas" \
      --cluster-yes >"$dir/create.log" 2>&1 || die "cluster create failed (see $dir/create.log)"
  else # redis-cli wants 3 masters; assign slots and replicas by hand
    manual_create "$masters" "$replicas" "${ports[@]}"
  fi
  wait_ok "${ports[@]}"
  wait_replicas "$((masters * replicas))" "${ports[@]}"
  list=$(IFS=,; echo "${addrs[*]}")
  echo "redis://$list" >"$dir/address"
  echo "redis://$list"
  trap - EXIT
}

manual_create() { # masters replicas ports...
  local masters=$1 replicas=$2 i per first last id
  shift 2
  local ports=("$@")
  for ((i = 1; i < ${#ports[@]}; i++)); do
    redis-cli -p "${ports[0]}" cluster meet 127.0.0.1 "${ports[i]}" >/dev/null
  done
  per=$((16384 / masters))
  for ((i = 0; i < masters; i++)); do
    first=$((i * per)); last=$(( i == masters - 1 ? 16383 : (i + 1) * per - 1 ))
    redis-cli -p "${ports[i]}" cluster addslotsrange "$first" "$last" >/dev/null
  done
  sleep 1 # let the meets spread before naming masters
  for ((i = masters; i < ${#ports[@]}; i++)); do
    id=$(redis-cli -p "${ports[$(( (i - masters) % masters ))]}" cluster myid)
    local deadline=$((SECONDS + 20))
    until redis-cli -p "${ports[i]}" cluster replicate "$id" 2>/dev/null | grep -q OK; do
      [ "$SECONDS" -lt "$deadline" ] || die "node ${ports[i]} cannot replicate $id"
      sleep 0.2
    done
  done
}

stop() {
  local pidf pid pids=()
  for pidf in "$dir"/*/redis.pid; do
    [ -f "$pidf" ] || continue
    pid=$(cat "$pidf")
    case "$pid" in ''|*[!0-9]*) continue ;; esac
    # only a redis-server of this directory: a pid can be reused
    if grep -qa "redis-server" "/proc/$pid/cmdline" 2>/dev/null; then
      kill "$pid" 2>/dev/null && pids+=("$pid")
    fi
  done
  local deadline=$((SECONDS + 5))
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null; do
      if [ "$SECONDS" -ge "$deadline" ]; then kill -9 "$pid" 2>/dev/null || true; fi
      sleep 0.05
    done
  done
}

case "$cmd" in
  start) shift 2; start "$@" ;;
  stop) stop ;;
  ports) for d in "$dir"/*/redis.conf; do [ -f "$d" ] && basename "$(dirname "$d")"; done ;;
  *) usage ;;
esac
