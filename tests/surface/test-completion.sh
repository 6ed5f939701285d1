#!/usr/bin/env bash
# completion/edgefeed, sourced into bash, completes the commands of
# `edgefeed --help`, for each command exactly the options of `edgefeed
# COMMAND --help`, the global options, and the values it can list.
# Usage: test-completion.sh COMPLETION_FILE
. "$(dirname "$0")/lib.sh"
# shellcheck source=/dev/null
. "$1"

# complete WORD... (the last word is the one being completed), sorted
complete_words()
{
    COMP_WORDS=("$@")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMPREPLY=()
    _edgefeed 2>/dev/null
    printf '%s\n' "${COMPREPLY[@]}" | sed '/^$/d' | sort
}
expect()
{
    # expect "WANTED (space separated)" WORD...
    local want got
    want=$(printf "%s\n" $1 | sed "/^$/d" | sort -u)
    shift
    got=$(complete_words "$@")
    [ "$got" = "$want" ] || fail "completing '$*': got [$(echo $got)], wanted [$(echo $want)]"
}

[ "$(complete -p edgefeed)" = "complete -F _edgefeed edgefeed" ] ||
    fail "sourcing it does not register _edgefeed for edgefeed"

# the commands, by prefix
expect "$(help_commands)" edgefeed ""
expect "finalize feed" edgefeed f
expect "mark-read migrate" edgefeed m
expect "--db --no-wait --help --version" edgefeed --
# each command: exactly the options its --help names, and --help
while read -r cmd; do
    want="$(help_options "$cmd") --help"
    expect "$want" edgefeed "$cmd" --
    expect "$want" edgefeed --db /var/lib/edgefeed "$cmd" -
done < <(help_commands)
# after --db its value, the command still counts
expect "--owner --reservation --all --help" edgefeed --db ./x mark-read --owner o --
expect "--no-wait --now" edgefeed seed --n
# values: kv-bulk, directories for --db, files for import and --output,
# nothing for a value only the user knows
expect "kv-bulk" edgefeed import --format ""
expect "" edgefeed finalize --owner ""
mkdir -p "$scratch/stores/a.db" && touch "$scratch/stores/kv.json"
expect "$scratch/stores/a.db" edgefeed --db "$scratch/stores/a"
expect "$scratch/stores/kv.json" edgefeed import --format kv-bulk "$scratch/stores/k"
expect "$scratch/stores/kv.json" edgefeed export --output "$scratch/stores/k"
echo "ok: commands, every command's options and values complete"
