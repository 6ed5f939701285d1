#!/usr/bin/env bash
# Install what is missing, build, and run every test.
# Usage: scripts/test.sh [--sanitize]   (ASan + UBSan build in build-asan)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
dir=$(scripts/build.sh "$@")
mult=1
if [ "${1:-}" = "--sanitize" ]; then
  mult=3
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fi
rc=0
meson test -C "$dir" --print-errorlogs --timeout-multiplier "$mult" --num-processes 2 || rc=$?
log="$dir/meson-logs/testlog.json"
if [ -f "$log" ]; then
  total=$(grep -c '"result"' "$log" || true)
  passed=$(grep -c '"result": "OK"' "$log" || true)
  echo "tests: $passed passed, $((total - passed)) failed"
fi
# The Node.js binding, against the library just built: npm install builds
# the addon (node-gyp, this machine's Node headers), npm test runs its tests.
# Not under --sanitize: node itself is not built with ASan, so the addon's
# sanitizer runtime would have to be preloaded into it; the C library under
# the addon is the one the sanitized meson suite above already covers.
if [ "${1:-}" = "--sanitize" ]; then
  echo "node: bindings/node skipped under --sanitize" >&2
else
  (cd bindings/node &&
    EDGEFEED_BUILD_DIR="$dir" npm install --no-audit --no-fund &&
    npm test) || rc=$?
fi
exit "$rc"
