#!/usr/bin/env bash
# Install what edgefeed needs from Debian 12 packages, by name; skipped when
# everything is present. Uses sudo when not root.
set -euo pipefail

PKGS=(
  gcc libc6-dev pkg-config meson ninja-build
  liblmdb-dev libsodium-dev libjansson-dev libcmocka-dev
  libhiredis-dev redis-server redis-tools
  libsqlite3-dev
  jq gnuplot-nox
  doxygen groff-base
)
# The Node.js binding (bindings/node): node-gyp needs g++, make and python3;
# Node.js itself from Debian only where the machine has none (a Node.js from
# elsewhere, such as CI's Node 20, comes with its npm and headers).
PKGS+=(g++ make python3)
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  PKGS+=(nodejs npm libnode-dev)
fi
[ "${EDGEFEED_EXTRA_PKGS:-}" ] && read -r -a extra <<<"$EDGEFEED_EXTRA_PKGS" && PKGS+=("${extra[@]}")

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: every package is present" >&2
  exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "deps: missing packages (${missing[*]}) and not root; install them, or run as root" >&2
    exit 1
  fi
  SUDO=(sudo)
fi
echo "deps: installing ${missing[*]}" >&2
"${SUDO[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
