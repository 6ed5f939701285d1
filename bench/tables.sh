#!/usr/bin/env bash
# Markdown tables of docs/BENCHMARKS.md from edgefeed-bench's JSON rows
# (the "median" rows; lost, duplicated and unexpected are summed over runs).
#   bench/tables.sh RESULTS.jsonl        (needs jq)
set -euo pipefail
in=${1:?usage: bench/tables.sh RESULTS.jsonl}

echo "### concurrent"
echo
echo "| system | sync | owners | P x T | calls/s | p50 us | p99 us | p999 us | acked | lost | dup | unexp |"
echo "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
jq -r 'select(.scenario=="concurrent" and .rep=="median")
  | "| \(.system) | \(.config.sync) | \(.config.distribution) | \(.config.procs)x\(.config.threads) | \(.opsPerSec|floor) | \(.p50Us|floor) | \(.p99Us|floor) | \(.p999Us|floor) | \(.acked) | \(.lost) | \(.duplicated) | \(.unexpected + .doubleCreated) |"' "$in"

echo
echo "### scale"
echo
echo "| system | sweep | store entries | owner entries | finalize p50 us (no sync) | finalize p99 us (no sync) | finalize p50 us (durable) | page p50 us | page p99 us |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
jq -r 'select(.scenario=="scale" and .rep=="median")
  | "| \(.system) | \(.config.sweep) | \(.config.storeEntries) | \(.config.ownerEntries) | \(.finalizeNosyncP50Us*10|floor/10) | \(.finalizeNosyncP99Us*10|floor/10) | \(.finalizeDurableP50Us*10|floor/10) | \(.pageP50Us*10|floor/10) | \(.pageP99Us*10|floor/10) |"' "$in"
echo
jq -r 'select(.scenario=="scale" and .rep=="ledger")
  | "- scale ledger, \(.system): acked \(.acked), found \(.found), lost \(.lost), duplicated \(.duplicated), unexpected \(.unexpected)"' "$in"

echo
echo "### read"
echo
echo "| system | newest p50 us | newest p99 us | deep p50 us | deep p99 us | busy p50 us | busy p99 us | writers calls/s |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
jq -r 'select(.scenario=="read" and .rep=="median")
  | "| \(.system) | \(.newestP50Us*10|floor/10) | \(.newestP99Us*10|floor/10) | \(.deepP50Us*10|floor/10) | \(.deepP99Us*10|floor/10) | \(.busyP50Us*10|floor/10) | \(.busyP99Us*10|floor/10) | \(.writersOpsPerSec|floor) |"' "$in"

echo
echo "### size"
echo
echo "| system | entries | data B/entry | dir B/entry | compacted data B/entry | compacted dir B/entry | lost | dup | unexp |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
jq -r 'select(.scenario=="size")
  | "| \(.system) | \(.config.entries) | \(.dataBytesPerEntry|floor) | \(.dirBytesPerEntry|floor) | \(.compactedDataBytesPerEntry|floor) | \(.compactedDirBytesPerEntry|floor) | \(.lost) | \(.duplicated) | \(.unexpected) |"' "$in"
