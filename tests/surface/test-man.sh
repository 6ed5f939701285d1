#!/usr/bin/env bash
# man/edgefeed.1 agrees with the command: the same commands as `edgefeed
# --help`, for each command the same options as `edgefeed COMMAND --help`
# (named in its section and each described in a .TP item), the same global
# options and exit codes, the same version; every option it documents is
# one the command's parser accepts; and groff renders it without a warning.
# Usage: test-man.sh MANPAGE
. "$(dirname "$0")/lib.sh"
man=$1

# the roff source with its escapes taken off the options: \-\- -> --
plain()
{
    sed -e 's/\\-/-/g' -e 's/\\&//g' "$@"
}
# the lines of section .SH NAME (up to the next .SH)
sh_section()
{
    plain "$man" | awk -v s="$1" '/^\.SH / { on = ($2 == s) ; next } on'
}
# the lines of command section .SS NAME within COMMANDS
ss_section()
{
    sh_section COMMANDS | awk -v s="$1" '/^\.SS / { on = ($2 == s); next } on'
}
opts()
{
    grep -oE -- '--[a-z][a-z-]*' | sort -u
}
# options that a .TP item describes: the line after .TP starts with them
tp_opts()
{
    awk 'prev ~ /^\.TP/ { print } { prev = $0 }' | grep -oE -- '^\.B[IR]? +--[a-z][a-z-]*' |
        grep -oE -- '--[a-z][a-z-]*' | sort -u
}
same()
{
    # same WHAT FILE_A FILE_B
    if ! diff -u "$2" "$3" >"$scratch/diff"; then
        cat "$scratch/diff" >&2
        fail "$1 differ (- edgefeed --help, + $man)"
    fi
}

help_commands | sort >"$scratch/help-commands"
sh_section COMMANDS | awk '/^\.SS / { print $2 }' | sort >"$scratch/man-commands"
same "commands" "$scratch/help-commands" "$scratch/man-commands"

while read -r cmd; do
    help_options "$cmd" | { grep -vx -- --help || true; } >"$scratch/help-$cmd"
    ss_section "$cmd" | opts >"$scratch/man-$cmd" || true
    same "options of $cmd" "$scratch/help-$cmd" "$scratch/man-$cmd"
    ss_section "$cmd" | tp_opts >"$scratch/tp-$cmd" || true
    same "options of $cmd described in .TP items" "$scratch/help-$cmd" "$scratch/tp-$cmd"
    # each documented option is known to the parser: "--opt=x --help"
    # either prints the help or complains about the value, never that
    # the option does not exist
    while read -r o; do
        err=$("$EDGEFEED_BIN" --db "$scratch/db" "$cmd" "$o=x" --help 2>&1 >/dev/null || true)
        case $err in
        *"is not an option"*) fail "$cmd rejects $o, which $man documents: $err" ;;
        esac
    done <"$scratch/man-$cmd"
done <"$scratch/help-commands"

# global options: the "Options:" block of --help, the OPTIONS section
"$EDGEFEED_BIN" --help | sed -n '/^Options:/,/^$/p' | opts >"$scratch/help-global"
sh_section OPTIONS | tp_opts >"$scratch/man-global"
same "global options" "$scratch/help-global" "$scratch/man-global"

# exit codes: "Exit codes: 0 success, 1 failure, ..." and EXIT STATUS
"$EDGEFEED_BIN" --help | sed -n '/^Exit codes:/,$p' | tr '\n' ' ' |
    grep -oE '(:|,) ?[0-9]+ [a-z]|^[0-9]+ [a-z]| [0-9]+ [a-z]' | grep -oE '[0-9]+' | sort -n >"$scratch/help-exit"
plain "$man" | awk '/^\.SH EXIT/ { on = 1; next } /^\.SH / { on = 0 } on' |
    awk 'prev ~ /^\.TP/ { print $2 } { prev = $0 }' | sort -n >"$scratch/man-exit"
[ -s "$scratch/help-exit" ] || fail "no exit codes found in edgefeed --help"
same "exit codes" "$scratch/help-exit" "$scratch/man-exit"

# version: .TH EDGEFEED 1 DATE "edgefeed X.Y.Z"
version=$("$EDGEFEED_BIN" --version | awk '{ print $2 }')
grep -q "^\.TH EDGEFEED 1 \"[^\"]*\" \"edgefeed $version\"" "$man" ||
    fail ".TH of $man does not say edgefeed $version"

# the page renders cleanly
if command -v groff >/dev/null; then
    warnings=$(groff -man -Tutf8 -ww -z "$man" 2>&1)
    [ -z "$warnings" ] || fail "groff warns about $man: $warnings"
fi
echo "ok: $(wc -l <"$scratch/help-commands") commands, their options, the global options and exit codes agree"
