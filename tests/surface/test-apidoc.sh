#!/usr/bin/env bash
# The API reference builds from include/edgefeed.h with doxygen without a
# single warning (warnings are errors): every public function, type,
# field, macro, enum value and parameter is documented, and every
# reference in the comments resolves. Skipped (77) without doxygen.
# Usage: test-apidoc.sh DOXYFILE
. "$(dirname "$0")/lib.sh"
doxyfile=$1

command -v doxygen >/dev/null || skip "doxygen is not installed (scripts/deps.sh installs it)"
if ! doxygen "$doxyfile" >"$scratch/log" 2>&1; then
    cat "$scratch/log" >&2
    fail "doxygen found undocumented or broken API documentation"
fi
out=$(sed -n 's/^OUTPUT_DIRECTORY *= *//p' "$doxyfile")
for page in index.html group__feed.html group__errors.html; do
    [ -s "$out/html/$page" ] || fail "doxygen did not write $out/html/$page"
done
grep -q 'ef_feed_page' "$out/html/group__feed.html" || fail "ef_feed_page is not in the reference"
echo "ok: the API reference builds without a warning ($out/html/index.html)"
