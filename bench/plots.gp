# plots.gp - the plots of docs/BENCHMARKS.md; run by bench/plot.sh, which
# sets dat (the directory of extracted .tsv files), out (where PNGs go) and
# only ("all", or one of throughput, store, owner, read, groupcommit,
# cluster, masters: for a run that made only that scenario's rows), hascl
# (1 when the rows hold a cluster system) and nshapes (the writer shapes
# of the cluster systems' rows).

set terminal pngcairo size 900,560 font "sans,10"
set grid
set key outside right top
set datafile separator "\t"

systems = "edgefeed edgefeed-gc lmdb-raw sqlite legacy-txn legacy-lock edgefeed-redis edgefeed-redis1"

# ---- throughput against writers (uniform owners) ----
if (only eq "all" || only eq "throughput") {
do for [d in "true false"] {
    set output sprintf("%s/throughput-%s.png", out, d eq "true" ? "durable" : "nosync")
    set title sprintf("finalize calls/s against writers, %s; 1000 owners, 10%% retries", \
                      d eq "true" ? "durable (sqlite FULL)" : "no sync (sqlite NORMAL)")
    set xlabel "writers (P x T)"
    set ylabel "finalize calls / s (median of 3)"
    set logscale y
    set xrange [-0.5:6.5]
    unset logscale x
    plot for [i=1:words(systems)] sprintf("%s/conc-%s-%s.tsv", dat, d, word(systems, i)) \
         using 1:3:xtic(2) with linespoints lw 2 pt 7 lc i title word(systems, i)
}
}

# ---- latency against store size ----
if (only eq "all" || only eq "store") {
set output sprintf("%s/latency-store-size.png", out)
set title "latency against store size (100 entries per owner; median of 3 runs of p50)"
set xlabel "entries in the store"
set ylabel "microseconds (p50)"
set logscale xy
set xrange [*:*]
set format x "10^{%L}"
st = "edgefeed lmdb-raw sqlite"
plot for [i=1:3] sprintf("%s/store-%s.tsv", dat, word(st, i)) \
        using 1:2 with linespoints lw 2 pt 7 lc i title word(st, i)." finalize (no sync)", \
     for [i=1:3] sprintf("%s/store-%s.tsv", dat, word(st, i)) \
        using 1:3 with linespoints lw 1 pt 9 dt 3 lc i title word(st, i)." finalize (durable)", \
     for [i=1:3] sprintf("%s/store-%s.tsv", dat, word(st, i)) \
        using 1:4 with linespoints lw 2 pt 5 dt 2 lc i title word(st, i)." newest-50 page"
}

# ---- latency against one owner's feed size ----
if (only eq "all" || only eq "owner") {
set logscale xy
set format x "10^{%L}"
set xrange [*:*]
set output sprintf("%s/latency-owner-size.png", out)
set title "latency against the size of one owner's feed (no sync; median of 3 runs of p50)"
set xlabel "entries in the owner's feed"
ow = "edgefeed lmdb-raw sqlite legacy-txn"
plot for [i=1:4] sprintf("%s/owner-%s.tsv", dat, word(ow, i)) \
        using 1:2 with linespoints lw 2 pt 7 lc i title word(ow, i)." finalize", \
     for [i=1:4] sprintf("%s/owner-%s.tsv", dat, word(ow, i)) \
        using 1:3 with linespoints lw 2 pt 5 dt 2 lc i title word(ow, i)." newest-50 page"
}

# ---- page latency (read scenario) ----
if (only eq "all" || only eq "read") {
set output sprintf("%s/page-latency.png", out)
set title "page latency, limit 50 (200 owners x 1000 entries; median of 3 runs of p50)"
unset logscale x
set logscale y
set format x "%g"
set xrange [*:*]
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set xlabel ""
set xtics rotate by -25
set ylabel "microseconds (p50)"
plot sprintf("%s/read.tsv", dat) using 2:xtic(1) title "newest page", \
     "" using 3 title "page 11 (deep)", \
     "" using 4 title "newest, beside 2 durable writers"
}

# ---- issue 13: group commit across processes ----
if (only eq "all" || only eq "groupcommit") {
gcs = "edgefeed edgefeed-gc sqlite"
do for [d in "true false"] {
    set output sprintf("%s/group-commit-%s.png", out, d eq "true" ? "durable" : "nosync")
    set multiplot layout 1,2 title sprintf("group commit across processes, %s; 1000 owners, 10%% retries", \
                      d eq "true" ? "durable (sqlite FULL)" : "no sync (sqlite NORMAL)")
    unset logscale x
    set xrange [-0.5:2.5]
    set xlabel "writers (P x T)"
    set key inside left top
    set logscale y
    set title "finalize calls / s"
    set ylabel "calls / s (median of runs)"
    plot for [i=1:3] sprintf("%s/gc-%s-%s.tsv", dat, d, word(gcs, i)) \
         using 1:3:xtic(2) with linespoints lw 2 pt 7 lc i title word(gcs, i)
    set title "latency p50"
    set ylabel "microseconds (p50, median of runs)"
    plot for [i=1:3] sprintf("%s/gc-%s-%s.tsv", dat, d, word(gcs, i)) \
         using 1:4:xtic(2) with linespoints lw 2 pt 7 lc i title word(gcs, i)
    unset multiplot
}
}

# ---- issue 14: the store on Redis Cluster ----
cls = "edgefeed edgefeed-gc sqlite edgefeed-redis1 edgefeed-redis"
# colours: edgefeed-redis1 orange (4) and edgefeed-redis blue (6) in both
# plots; yellow (5) is hard to see
if (hascl && (only eq "all" || only eq "cluster")) {
    set output sprintf("%s/cluster-durable.png", out)
    set multiplot layout 1,2 title "edgefeed on Redis Cluster (appendfsync always, no replicas) beside LMDB and SQLite FULL; durable, 1000 owners, 10% retries"
    unset logscale x
    set style data linespoints
    set xrange [-0.5:nshapes - 0.5]
    set xtics norotate
    set xlabel "writers (P x T)"
    set key below
    set logscale y
    set title "finalize calls / s"
    set ylabel "calls / s (median of runs)"
    plot for [i=1:words(cls)] sprintf("%s/cl-%s.tsv", dat, word(cls, i)) \
         using 1:3:xtic(2) with linespoints lw 2 pt 7 lc (i == 5 ? 6 : i) title word(cls, i)
    set title "latency p50"
    set ylabel "microseconds (p50, median of runs)"
    plot for [i=1:words(cls)] sprintf("%s/cl-%s.tsv", dat, word(cls, i)) \
         using 1:4:xtic(2) with linespoints lw 2 pt 7 lc (i == 5 ? 6 : i) title word(cls, i)
    unset multiplot
}
if (only eq "cluster") {
    set output sprintf("%s/cluster-page-latency.png", out)
    set title "page latency, limit 50 (200 owners x 1000 entries; median of runs of p50)"
    unset logscale x
    set logscale y
    set format x "%g"
    set xrange [*:*]
    set style data histograms
    set style histogram clustered gap 1
    set style fill solid 0.8 border -1
    set boxwidth 0.9
    set xlabel ""
    set xtics rotate by -25
    set key outside right top
    set ylabel "microseconds (p50)"
    plot sprintf("%s/read.tsv", dat) using 2:xtic(1) title "newest page", \
         "" using 3 title "page 11 (deep)", \
         "" using 4 title "newest, beside 2 durable writers"
}
ms = "edgefeed-redis1 edgefeed-redis"
if (hascl && (only eq "all" || only eq "masters")) {
    set terminal pngcairo size 1300,560 font "sans,10"
    set output sprintf("%s/cluster-masters.png", out)
    set multiplot layout 1,3 title "1 against 3 masters on one 2-core machine (durable, 1000 owners, 10% retries; medians of runs)"
    unset logscale
    set style data linespoints
    set style fill empty
    set xrange [-0.5:nshapes - 0.5]
    set xtics norotate
    set xlabel "writers (P x T)"
    set key below
    set yrange [0:*]
    set title "finalize calls / s"
    set ylabel "calls / s"
    plot for [i=1:2] sprintf("%s/cl-%s.tsv", dat, word(ms, i)) \
         using 1:3:xtic(2) with linespoints lw 2 pt 7 lc (i == 1 ? 4 : 6) \
         title (i == 1 ? "1 master" : "3 masters")
    set title "CPU per finalize call"
    set ylabel "microseconds of CPU"
    plot for [i=1:2] sprintf("%s/cl-%s.tsv", dat, word(ms, i)) \
         using 1:9:xtic(2) with linespoints lw 2 pt 5 lc (i == 1 ? 4 : 6) \
         title sprintf("redis-server(s), %s", i == 1 ? "1 master" : "3 masters"), \
         for [i=1:2] sprintf("%s/cl-%s.tsv", dat, word(ms, i)) \
         using 1:8 with linespoints lw 2 pt 7 dt 2 lc (i == 1 ? 4 : 6) \
         title sprintf("workers (library), %s", i == 1 ? "1 master" : "3 masters")
    set title "the machine (other work on it included)"
    set ylabel "% of one core (2 cores = 200%)"
    set yrange [0:200]
    plot for [i=1:2] sprintf("%s/cl-%s.tsv", dat, word(ms, i)) \
         using 1:($5 * 2):xtic(2) with linespoints lw 2 pt 7 lc (i == 1 ? 4 : 6) \
         title sprintf("busy, %s", i == 1 ? "1 master" : "3 masters"), \
         for [i=1:2] sprintf("%s/cl-%s.tsv", dat, word(ms, i)) \
         using 1:($6 * 2) with linespoints lw 1 pt 9 dt 3 lc (i == 1 ? 4 : 6) \
         title sprintf("iowait, %s", i == 1 ? "1 master" : "3 masters")
    unset multiplot
    set yrange [*:*]
    set terminal pngcairo size 900,560 font "sans,10"
}
