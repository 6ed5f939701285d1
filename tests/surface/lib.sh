# lib.sh - shared by the tests of tests/surface: failing with a message,
# a scratch directory removed on exit, and the help text of the command.
set -euo pipefail

fail()
{
    echo "FAIL: $*" >&2
    exit 1
}

skip()
{
    echo "SKIP: $*" >&2
    exit 77
}

scratch=$(mktemp -d "${TMPDIR:-/tmp}/edgefeed-surface-XXXXXX")
cleanup_hooks=()
cleanup()
{
    local h
    for h in "${cleanup_hooks[@]}"; do eval "$h" || true; done
    rm -rf "$scratch"
}
trap cleanup EXIT

: "${EDGEFEED_BIN:?run the tests with meson test}"

# The commands that `edgefeed --help` lists, one a line.
help_commands()
{
    "$EDGEFEED_BIN" --help | sed -n '/^Commands:/,/^$/p' | awk 'NF > 1 { print $1 }'
}

# The options of COMMAND that `edgefeed COMMAND --help` names (without
# --db, the global option its usage line repeats), sorted, one a line.
help_options()
{
    "$EDGEFEED_BIN" "$1" --help | { grep -oE -- '--[a-z][a-z-]*' || true; } |
        { grep -vx -- '--db' || true; } | sort -u
}
