#!/usr/bin/env bash
# Make the PNG plots of docs/BENCHMARKS.md from edgefeed-bench's JSON rows.
#   bench/plot.sh RESULTS.jsonl [OUTDIR] [ONLY]   (OUTDIR: docs/plots)
# ONLY: all (default), or throughput, store, owner, read, groupcommit,
# cluster or masters for a run that made only those rows (groupcommit:
# issue 13's shapes 1x1, 8x1, 1x16 of the concurrent scenario; cluster:
# issue 14's cluster systems beside edgefeed and sqlite, durable, at the
# shapes the run gave the cluster systems, and the read scenario's pages
# into cluster-page-latency.png; masters: 1 against 3 masters and where
# the CPU went). "all" makes the cluster plots only when the rows hold a
# cluster system.
# Needs jq and gnuplot (Debian: jq gnuplot-nox). Uses the "median" rows.
set -euo pipefail

in=${1:?usage: bench/plot.sh RESULTS.jsonl [OUTDIR]}
out=${2:-$(dirname "$0")/../docs/plots}
only=${3:-all}
gp=$(dirname "$0")/plots.gp
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

writers="1x1 1x4 1x16 2x1 4x1 8x1 4x4"

# conc_rows SYS DURABLE "SHAPES" FIELDS OUT: the concurrent scenario's
# median rows of SYS (uniform owners), one line per shape: its position in
# SHAPES, its label, then FIELDS (a jq string of the row's fields)
conc_rows() {
  local sys=$1 d=$2 shapes=$3 fields=$4 f=$5 i=0 w p t
  : >"$f"
  for w in $shapes; do
    p=${w%x*} t=${w#*x}
    jq -r --arg s "$sys" --argjson d "$d" --argjson p "$p" --argjson t "$t" \
      --arg i "$i" --arg w "$w" '
      select(.scenario=="concurrent" and .rep=="median" and .system==$s
             and .config.durable==$d and .config.distribution=="uniform"
             and .config.procs==$p and .config.threads==$t)
      | "\($i)\t\($w)\t'"$fields"'"' "$in" >>"$f"
    i=$((i + 1))
  done
}

# throughput against writers: one file per (durability, system); column 1
# is the position of the writer shape in $writers, 2 its label, 3 calls/s
for d in true false; do
  for sys in edgefeed edgefeed-gc lmdb-raw sqlite legacy-txn legacy-lock \
             edgefeed-redis edgefeed-redis1; do
    conc_rows "$sys" "$d" "$writers" '\(.opsPerSec)' "$tmp/conc-$d-$sys.tsv"
  done
done

# issue 13: group commit at the shapes 1x1, 8x1, 1x16 (uniform owners):
# column 3 calls/s, 4 p50 us
for d in true false; do
  for sys in edgefeed edgefeed-gc sqlite; do
    conc_rows "$sys" "$d" "1x1 8x1 1x16" '\(.opsPerSec)\t\(.p50Us)' \
      "$tmp/gc-$d-$sys.tsv"
  done
done

# issue 14: the shapes the run gave the cluster systems (durable, uniform
# owners), by writers, then processes
cl_shapes=$(jq -rs '[.[] | select(.scenario=="concurrent" and .rep=="median"
    and (.system|startswith("edgefeed-redis"))
    and .config.distribution=="uniform") | .config]
  | unique_by([.writers, .procs]) | .[] | "\(.procs)x\(.threads)"' "$in" |
  tr '\n' ' ')
hascl=0
if [ -n "$cl_shapes" ]; then
  hascl=1
  # column 3 calls/s, 4 p50 us, 5 cpuBusy %, 6 ioWait %, 7 redisCores,
  # 8 the workers' CPU us per call, 9 the nodes' CPU us per call
  for sys in edgefeed edgefeed-gc sqlite edgefeed-redis1 edgefeed-redis; do
    conc_rows "$sys" true "$cl_shapes" \
      '\(.opsPerSec)\t\(.p50Us)\t\((.cpuBusy // 0) * 100)\t\((.ioWait // 0) * 100)\t\(.redisCores // 0)\t\(.workersCpuUsPerCall // 0)\t\((.redisCores // 0) / .opsPerSec * 1e6)' \
      "$tmp/cl-$sys.tsv"
  done
fi
nshapes=$(echo "$cl_shapes" | wc -w)

# latency against store size, and against one owner's feed size
for sys in edgefeed lmdb-raw sqlite legacy-txn; do
  jq -r --arg s "$sys" '
    select(.scenario=="scale" and .rep=="median" and .system==$s
           and .config.sweep=="store")
    | "\(.config.storeEntries)\t\(.finalizeNosyncP50Us)\t\(.finalizeDurableP50Us)\t\(.pageP50Us)"' \
    "$in" >"$tmp/store-$sys.tsv"
  jq -r --arg s "$sys" '
    select(.scenario=="scale" and .rep=="median" and .system==$s
           and .config.sweep=="owner")
    | "\(.config.ownerEntries)\t\(.finalizeNosyncP50Us)\t\(.pageP50Us)"' \
    "$in" >"$tmp/owner-$sys.tsv"
done

# page latency of the read scenario
jq -r 'select(.scenario=="read" and .rep=="median")
  | "\(.system)\t\(.newestP50Us)\t\(.deepP50Us)\t\(.busyP50Us)"' \
  "$in" >"$tmp/read.tsv"

gnuplot -e "dat='$tmp'; out='$out'; only='$only'; hascl=$hascl; nshapes=$nshapes" "$gp"
ls "$out"/*.png
