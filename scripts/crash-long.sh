#!/usr/bin/env bash
# The long crash run of docs/RELIABILITY.md: tests/test-crash with ROUNDS
# kill -9 rounds (default 10000) and READERS reader kills (default 2000),
# its summary at the end (and every 1000 rounds); then tests/test-lockstorm
# with STORM kills (EF_STORM_KILLS, default 10000); then the group commit
# storm of tests/test-cqueue for EF_CQ_STORM_MS (default 600000: 10 min) of
# kill -9 of its processes. With --fuzz, then the long
# fuzz run: every libFuzzer target to 10^7 executions (scripts/fuzz.sh 0
# 10000000).
# Usage: scripts/crash-long.sh [--sanitize] [--build DIR] [--fuzz] [ROUNDS [READERS]]
#   --sanitize   build and run under ASan + UBSan (build-asan/)
#   --build DIR  use an existing build directory instead of building one
#   EF_CRASH_FIRST=N starts at round N (to replay: EF_CRASH_FIRST=N ROUNDS=1);
#   EF_CRASH_STRICT=0 ends a lost LMDB mutex wake-up and counts it, not fails.
set -euo pipefail
cd "$(dirname "$0")/.."

build=() dir="" fuzz=0
while [ $# -gt 0 ]; do
  case "$1" in
    --sanitize) build=(--sanitize); shift ;;
    --build) dir=$2; shift 2 ;;
    --fuzz) fuzz=1; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    -*) echo "crash-long: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
rounds=${1:-10000}
readers=${2:-2000}

if [ -z "$dir" ]; then
  scripts/deps.sh
  dir=$(scripts/build.sh "${build[@]}")
fi
if grep -q '"name": "b_sanitize", "value": "address' \
     "$dir/meson-info/intro-buildoptions.json" 2>/dev/null; then
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fi

echo "== crash: $rounds rounds, $readers reader kills ($dir/tests/test-crash), $(date -u +%FT%TZ)"
start=$(date +%s)
CMOCKA_MESSAGE_OUTPUT=stdout EF_CRASH_ROUNDS=$rounds EF_CRASH_READERS=$readers \
  "$dir/tests/test-crash"
echo "== crash: done in $(( $(date +%s) - start )) s"

echo "== lockstorm: ${EF_STORM_KILLS:-10000} kills ($dir/tests/test-lockstorm), $(date -u +%FT%TZ)"
start=$(date +%s)
CMOCKA_MESSAGE_OUTPUT=stdout EF_STORM_KILLS=${EF_STORM_KILLS:-10000} \
  "$dir/tests/test-lockstorm"
echo "== lockstorm: done in $(( $(date +%s) - start )) s"

echo "== group commit storm: ${EF_CQ_STORM_MS:-600000} ms ($dir/tests/test-cqueue), $(date -u +%FT%TZ)"
start=$(date +%s)
CMOCKA_MESSAGE_OUTPUT=stdout EF_CQ_STORM_MS=${EF_CQ_STORM_MS:-600000} \
  "$dir/tests/test-cqueue"
echo "== group commit storm: done in $(( $(date +%s) - start )) s"

if [ "$fuzz" = 1 ]; then
  echo "== fuzz: every target to ${EF_FUZZ_RUNS:-10000000} executions"
  scripts/fuzz.sh 0 "${EF_FUZZ_RUNS:-10000000}"
fi
