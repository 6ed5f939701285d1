#!/usr/bin/env bash
# Configure (once) and build. Usage: scripts/build.sh [--sanitize]
#   --sanitize  build in build-asan with AddressSanitizer + UBSan
set -euo pipefail
cd "$(dirname "$0")/.."

dir=build
args=()
if [ "${1:-}" = "--sanitize" ]; then
  dir=build-asan
  args=(-Db_sanitize=address,undefined -Db_lundef=false)
fi
if [ ! -f "$dir/build.ninja" ]; then
  meson setup "$dir" "${args[@]}" >&2
else
  meson setup --reconfigure "$dir" "${args[@]}" >/dev/null
fi
ninja -C "$dir" -j "$(nproc)" >&2
echo "$dir"
