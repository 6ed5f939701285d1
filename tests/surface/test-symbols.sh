#!/usr/bin/env bash
# The shared library exports exactly the ef_ functions that
# include/edgefeed.h declares with EF_EXPORT (no internal ef__ name, no
# symbol of LMDB, libsodium or jansson), under the version node
# EDGEFEED_0, with soname libedgefeed.so.0.
# Usage: test-symbols.sh LIBRARY HEADER
. "$(dirname "$0")/lib.sh"
lib=$1 header=$2

command -v nm >/dev/null || skip "nm (binutils) is not installed"

# every function the header exports: EF_EXPORT <type> [*]name(
grep -oE 'EF_EXPORT[^(]*[^a-z_0-9(]ef_[a-z_0-9]+\(' "$header" |
    grep -oE 'ef_[a-z_0-9]+\($' | tr -d '(' | sort -u >"$scratch/declared"
# every defined dynamic symbol but the version node itself (type A)
nm -D --defined-only "$lib" | awk '$2 != "A" { print $3 }' |
    sed 's/@.*//' | sort -u >"$scratch/exported"

[ "$(wc -l <"$scratch/declared")" -ge 25 ] ||
    fail "found only $(wc -l <"$scratch/declared") declarations in $header"
if ! diff -u "$scratch/declared" "$scratch/exported" >"$scratch/diff"; then
    cat "$scratch/diff" >&2
    fail "exports of $lib differ from the header (- declared only, + exported only)"
fi

if command -v objdump >/dev/null; then
    unversioned=$(objdump -T "$lib" | awk '/ DF \.text/ && $0 !~ / EDGEFEED_0 / { print $NF }')
    [ -z "$unversioned" ] || fail "functions outside version node EDGEFEED_0: $unversioned"
fi
if command -v readelf >/dev/null; then
    soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
    [ "$soname" = libedgefeed.so.0 ] || fail "soname is '$soname', not libedgefeed.so.0"
fi
echo "ok: $(wc -l <"$scratch/exported") ef_ functions exported, as declared"
