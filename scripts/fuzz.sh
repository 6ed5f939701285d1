#!/usr/bin/env bash
# Build the libFuzzer targets (clang, ASan + UBSan) and run each: replay its
# corpus, then fuzz for SECONDS (default 20) from a scratch copy of it.
# Usage: scripts/fuzz.sh [SECONDS] [RUNS]   (RUNS: stop after that many
# executions instead; the long run of docs/RELIABILITY.md uses 10000000)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
runs=${2:-}

EDGEFEED_EXTRA_PKGS="clang libclang-rt-14-dev" scripts/deps.sh
if [ ! -f build-fuzz/build.ninja ]; then
  CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=false -Dbench=false \
    -Db_sanitize=address,undefined -Db_lundef=false >&2
fi
ninja -C build-fuzz >&2

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
for t in legacy keys record cursor kvbulk; do
  dict=()
  [ -f "fuzz/dict/$t.dict" ] && dict=(-dict="fuzz/dict/$t.dict")
  [ "$t" = record ] || [ "$t" = cursor ] && dict=()
  mkdir -p "$work/$t"
  cp -r "fuzz/corpus/$t/." "$work/$t/"
  limit=(-max_total_time="$secs")
  [ -n "$runs" ] && limit=(-runs="$runs")
  echo "== fuzz-$t: corpus replay, then ${runs:-${secs}s}" >&2
  if ! ./build-fuzz/fuzz/fuzz-$t "${dict[@]}" -runs=0 "fuzz/corpus/$t" >"$work/$t.replay.log" 2>&1; then
    tail -40 "$work/$t.replay.log" >&2; status=1; continue
  fi
  if ! ./build-fuzz/fuzz/fuzz-$t "${dict[@]}" "${limit[@]}" -max_len=20000 \
      -artifact_prefix="$work/" "$work/$t" >"$work/$t.log" 2>&1; then
    tail -60 "$work/$t.log" >&2; status=1; continue
  fi
  grep -E "^(Done|#[0-9]+ +DONE)" "$work/$t.log" | tail -1 >&2 || true
done
exit $status
