#!/usr/bin/env bash
# Build the libFuzzer targets (clang, ASan + UBSan) and run each: replay its
# corpus, then fuzz for SECONDS (default 20) from a scratch copy of it.
# Usage: scripts/fuzz.sh [SECONDS] [RUNS] [TARGET...]   (RUNS: stop after
# that many executions instead; the long run of docs/RELIABILITY.md uses
# 10000000; TARGET: legacy, keys, record, cursor, kvbulk, redis; default all)
# For each target it says on stderr what docs/RELIABILITY.md reports: the
# final libFuzzer stats line (executions, cov, ft, corpus, exec/s), the wall
# time, and whether it ended clean (exit 0, no crash, leak or sanitizer
# report); a summary of all of them comes last. The inputs and logs of a
# target that did not end clean are kept in $EDGEFEED_FUZZ_ARTIFACTS
# (default build-fuzz/artifacts).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
runs=${2:-}
shift $(($# < 2 ? $# : 2))
all=(legacy keys record cursor kvbulk redis)
targets=("${all[@]}")
[ $# -eq 0 ] || targets=("$@")
for t in "${targets[@]}"; do
  case " ${all[*]} " in
    *" $t "*) ;;
    *) echo "fuzz.sh: no target '$t' (targets: ${all[*]})" >&2; exit 2 ;;
  esac
done
keep=${EDGEFEED_FUZZ_ARTIFACTS:-build-fuzz/artifacts}
# UBSan only prints and goes on unless told to stop; stopped, libFuzzer
# keeps the input
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

EDGEFEED_EXTRA_PKGS="clang libclang-rt-14-dev" scripts/deps.sh
if [ ! -f build-fuzz/build.ninja ]; then
  CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=false -Dbench=false \
    -Db_sanitize=address,undefined -Db_lundef=false >&2
fi
ninja -C build-fuzz >&2

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
# Lines of a log that are a crash, leak or sanitizer report.
reports() { grep -hE '^==[0-9]+== ?ERROR|runtime error:|^SUMMARY: ' "$@" || true; }
# "#N DONE cov: C ft: F corp: U/S ... exec/s: E ..." -> "N runs, cov C, ..."
figures() {
  sed -nE 's/^#([0-9]+)[[:space:]]+[A-Za-z]+[[:space:]]+cov: ([0-9]+) ft: ([0-9]+) corp: ([0-9]+)\/([^ ]+) .*exec\/s: ([0-9]+).*/\1 runs, cov \2, ft \3, corpus \4 (\5), \6 exec\/s/p' <<<"$1"
}

started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
summary=()
for t in "${targets[@]}"; do
  dict=()
  [ -f "fuzz/dict/$t.dict" ] && dict=(-dict="fuzz/dict/$t.dict")
  [ "$t" = record ] || [ "$t" = cursor ] && dict=()
  mkdir -p "$work/$t"
  cp -r "fuzz/corpus/$t/." "$work/$t/"
  limit=(-max_total_time="$secs")
  [ -n "$runs" ] && limit=(-runs="$runs")
  echo "== fuzz-$t: corpus replay, then ${runs:-${secs}s}" >&2
  : >"$work/$t.log"
  t0=$(now)
  rc=0
  ./build-fuzz/fuzz/fuzz-$t "${dict[@]}" -runs=0 -artifact_prefix="$work/$t-" \
    "fuzz/corpus/$t" >"$work/$t.replay.log" 2>&1 || rc=$?
  replay=$(since "$t0")
  log=$work/$t.replay.log
  if [ $rc -eq 0 ]; then
    log=$work/$t.log
    ./build-fuzz/fuzz/fuzz-$t "${dict[@]}" "${limit[@]}" -max_len=20000 \
      -artifact_prefix="$work/$t-" "$work/$t" >"$log" 2>&1 || rc=$?
  fi
  wall=$(since "$t0")
  last=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
  [ -n "$last" ] || last=$(grep -E '^#[0-9]+[[:space:]]' "$log" | tail -1 || true)
  found=$(reports "$work/$t.replay.log" "$work/$t.log")
  if [ $rc -eq 0 ] && [ -z "$found" ]; then
    verdict=clean
  else
    verdict="NOT clean (exit $rc)"
    grep -qs 'libFuzzer: run interrupted' "$log" &&
      verdict="NOT clean: interrupted by a signal from outside (exit $rc)"
    status=1
    tail -60 "$log" >&2
    mkdir -p "$keep"
    cp "$work/$t.replay.log" "$work/$t.log" "$keep/" 2>/dev/null || true
    cp "$work/$t-"* "$keep/" 2>/dev/null || true
    echo "fuzz-$t: inputs and logs kept in $keep" >&2
  fi
  echo "fuzz-$t: last stats: ${last:-none}" >&2
  grep -E '^Done [0-9]+ runs' "$log" >&2 || true
  figs=$(figures "$last")
  case $last in
    *DONE*) ;;
    ?*) figs="stopped; at its last report: $figs" ;;
  esac
  line="fuzz-$t: ${figs}${figs:+, }wall ${wall} s (replay ${replay} s), $verdict"
  echo "$line" >&2
  summary+=("$line")
done
# what was built: the commit, and whether its sources had local changes
built=$(git rev-parse --short HEAD 2>/dev/null || echo "not a git checkout")
if git rev-parse -q --verify HEAD >/dev/null 2>&1 &&
    ! git diff --quiet HEAD -- meson.build include store feed migrate fuzz; then
  built+=", with uncommitted changes to its sources"
fi
echo "== summary (started $started, built from $built)" >&2
printf '%s\n' "${summary[@]}" >&2
exit $status
