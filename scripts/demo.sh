#!/usr/bin/env bash
# Install what is missing, build, seed a demo store and show a feed page.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
dir=$(scripts/build.sh)
ef="$dir/cli/edgefeed"
db=${EDGEFEED_DB:-./demo.db}
now=2026-11-23T12:00:00Z

echo "== seed 20 owners x 40 receives into $db" >&2
"$ef" --db "$db" seed --owners 20 --receives 40 --rng-seed 7 --now "$now" --reset
echo "== newest 5 entries of user0007@example.com" >&2
"$ef" --db "$db" feed --owner user0007@example.com --limit 5 --now "$now"
echo "== unread count" >&2
"$ef" --db "$db" unread --owner user0007@example.com --now "$now"
echo "== finalize twice (the second is a duplicate)" >&2
"$ef" --db "$db" finalize --owner User0007@Example.com --reservation demo-1 \
  --created "$now" --ip 203.0.113.10 --payload '{"fileName":"hello.txt","size":12}'
"$ef" --db "$db" finalize --owner user0007@example.com --reservation demo-1 \
  --created "$now"
echo "== mark it read; unread count again" >&2
"$ef" --db "$db" mark-read --owner user0007@example.com --reservation demo-1
echo "== store statistics" >&2
"$ef" --db "$db" stat
echo "demo done: try $ef --db $db --help" >&2
