#!/bin/sh
# with-cluster.sh TEST [ARGS...] - run a test program against a real Redis
# Cluster (3 masters, no replicas) of its own, started by
# scripts/redis-cluster.sh in a fresh directory and stopped by pid after,
# whatever the test's end. The program finds the cluster's address in
# $EF_TEST_REDIS (tests/helpers.h: th_store).
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d "${TMPDIR:-/tmp}/edgefeed-cluster-XXXXXX") || exit 1
stop() {
	"$root/scripts/redis-cluster.sh" stop "$dir" >/dev/null 2>&1
	rm -rf "$dir"
}
trap stop EXIT
trap 'exit 130' INT TERM
addr=$("$root/scripts/redis-cluster.sh" start "$dir" 3 0) || {
	echo "with-cluster.sh: the test cluster did not start" >&2
	exit 1
}
EF_TEST_REDIS=$addr "$@"
