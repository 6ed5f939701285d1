#!/usr/bin/env bash
# Install and consume: `meson install --destdir` puts the library, header,
# edgefeed.pc, the command, its man page and bash completion into a staging
# prefix; examples/worker.c, copied out of the tree, builds against that
# prefix through pkg-config alone (no source or build tree path), runs as a
# pre-forking HTTP worker on 127.0.0.1 with the installed libedgefeed.so
# loaded, and serves concurrent finalizations from several processes and
# threads without losing or duplicating one; the installed command reads
# the same store meanwhile; a killed worker is replaced; SIGTERM stops
# every process cleanly. Under a sanitizer build the example is compiled
# with the same -fsanitize flags (the installed library needs its runtime).
. "$(dirname "$0")/lib.sh"
: "${EDGEFEED_SRC:?}" "${EDGEFEED_BUILD:?}"
meson=${MESON:-meson}
cc=${CC:-cc}
san=()
case ${EDGEFEED_SANITIZE:-none} in
none | "") ;;
*) san=(-fsanitize="$EDGEFEED_SANITIZE" -fno-omit-frame-pointer) ;;
esac
command -v pkg-config >/dev/null || skip "pkg-config is not installed"
command -v jq >/dev/null || skip "jq is not installed (scripts/deps.sh installs it)"
command -v timeout >/dev/null || skip "timeout (coreutils) is not installed"

# ---- install into a staging directory
stage=$scratch/stage
"$meson" install -C "$EDGEFEED_BUILD" --destdir "$stage" --no-rebuild \
    >"$scratch/install.log" 2>&1 || { cat "$scratch/install.log" >&2; fail "meson install failed"; }
installed()
{
    local f
    f=$(find "$stage" -path "*$1" -print -quit)
    [ -n "$f" ] || fail "meson install did not install *$1"
    echo "$f"
}
pcfile=$(installed /pkgconfig/edgefeed.pc)
installed /include/edgefeed.h >/dev/null
installed /libedgefeed.so.0 >/dev/null
installed /man1/edgefeed.1 >/dev/null
installed /bash-completion/completions/edgefeed >/dev/null
cli=$(installed /bin/edgefeed)

# ---- build the example against the staged prefix, through pkg-config only
export PKG_CONFIG_PATH=${pcfile%/*} PKG_CONFIG_SYSROOT_DIR=$stage
cflags=$(pkg-config --cflags edgefeed)
libs=$(pkg-config --libs edgefeed)
case $cflags in *"$stage"/*) ;; *) fail "pkg-config --cflags '$cflags' does not point into $stage" ;; esac
case " $cflags $libs " in
*"$EDGEFEED_SRC"* | *"$EDGEFEED_BUILD"*) fail "pkg-config points into the source or build tree: $cflags $libs" ;;
esac
libdir=$(echo "$libs" | grep -oE -- '-L[^ ]+' | head -1)
libdir=$(realpath "${libdir#-L}")
mkdir "$scratch/src"
cp "$EDGEFEED_SRC/examples/worker.c" "$scratch/src/"
# shellcheck disable=SC2086 # flags are words
(cd "$scratch/src" && $cc -std=c11 -Wall -Wextra -Wpedantic -Werror "${san[@]}" \
    -pthread $cflags worker.c -o worker $libs) ||
    fail "examples/worker.c does not build against the installed library"
export LD_LIBRARY_PATH=$libdir # the installed library, not the build tree's

# ---- run it: 3 processes of 4 threads, any free port on 127.0.0.1
"$scratch/src/worker" --db "$scratch/store" --workers 3 --threads 4 --port 0 \
    >"$scratch/worker.out" 2>"$scratch/worker.err" &
wpid=$!
cleanup_hooks+=("kill $wpid 2>/dev/null; wait $wpid 2>/dev/null")
children()
{
    sed -n 's/^worker \([0-9]*\) started$/\1/p' "$scratch/worker.out"
}
wait_for()
{
    # wait_for COUNT: until COUNT workers have started (10 s at most)
    for _ in $(seq 100); do
        [ "$(children | wc -l)" -ge "$1" ] && return 0
        kill -0 "$wpid" 2>/dev/null || break
        sleep 0.1
    done
    cat "$scratch/worker.out" "$scratch/worker.err" >&2
    fail "the worker did not start $1 processes"
}
wait_for 3
cleanup_hooks+=('for p in $(children); do kill -9 $p 2>/dev/null; done')
port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$scratch/worker.out")
[ -n "$port" ] || fail "the worker did not say its port"

for p in $(children); do
    grep -q "$libdir/libedgefeed\.so" "/proc/$p/maps" ||
        fail "worker $p did not load $libdir/libedgefeed.so: $(grep edgefeed "/proc/$p/maps")"
done

# req METHOD PATH [BODY]: the whole response (10 s at most), over loopback
http_client='exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
printf "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n%s" "$2" "$3" "${#4}" "$4" >&3
cat <&3'
req()
{
    timeout 10 bash -c "$http_client" _ "$port" "$1" "$2" "${3:-}"
}
status_of() { head -1 "$1" | awk '{ print $2 }'; }
body_of() { sed '1,/^\r$/d' "$1"; }
worker_of() { sed -n 's/^X-Worker: \([0-9]*\)\r$/\1/p' "$1"; }

# ---- 50 concurrent finalizations: 40 reservations, 10 of them twice
# under another spelling of the owner
mkdir "$scratch/r"
for i in $(seq -w 1 40); do
    req POST "/finalize?owner=Alice%40Example.com&reservation=r$i&ip=203.0.113.$((10#$i))" \
        "{\"n\":$((10#$i))}" >"$scratch/r/a$i" &
done
for i in $(seq -w 1 10); do
    req POST "/finalize?owner=+alice%40example.com+&reservation=r$i" "" >"$scratch/r/b$i" &
done
wait_jobs=$(jobs -p | grep -vx "$wpid" || true)
for j in $wait_jobs; do wait "$j" || true; done
created=0 dup=0
for f in "$scratch"/r/*; do
    case $(status_of "$f") in
    201) created=$((created + 1)) ;;
    200) dup=$((dup + 1)) ;;
    *) fail "finalize ${f##*/}: $(cat "$f")" ;;
    esac
    grep -qx "$(worker_of "$f")" <(children) || fail "${f##*/} was not served by a worker: $(cat "$f")"
done
[ "$created" = 40 ] && [ "$dup" = 10 ] || fail "$created created and $dup duplicates; wanted 40 and 10"
for i in $(seq -w 1 10); do
    [ "$(status_of "$scratch/r/a$i") $(status_of "$scratch/r/b$i")" != "201 201" ] ||
        fail "r$i was created twice"
done
served=$(for f in "$scratch"/r/*; do worker_of "$f"; done | sort -u | wc -l)

# ---- page through the feed: every reservation once, newest first
cursor="" all="$scratch/all.json"
: >"$all"
for page in 1 2 3 4; do
    req GET "/feed?owner=ALICE%40example.com&limit=15${cursor:+&cursor=$cursor}" >"$scratch/page"
    [ "$(status_of "$scratch/page")" = 200 ] || fail "feed: $(cat "$scratch/page")"
    body_of "$scratch/page" | jq -c '.entries[]' >>"$all"
    cursor=$(body_of "$scratch/page" | jq -r '.nextCursor // empty | @uri')
    [ -n "$cursor" ] || break
done
[ "$(jq -r .reservationId "$all" | sort -u | wc -l)" = 40 ] && [ "$(wc -l <"$all")" = 40 ] ||
    fail "the feed does not hold each of the 40 reservations once: $(jq -r .reservationId "$all" | tr '\n' ' ')"
jq -s -e '[.[].createdMs] as $t | $t == ($t | sort | reverse)' "$all" >/dev/null ||
    fail "the feed is not newest first"
# each entry is the request that won (first write wins): the one with an
# ip and payload, or its duplicate without them
won=$(for f in "$scratch"/r/a*; do [ "$(status_of "$f")" = 201 ] && echo "r${f##*/a}"; done | jq -R . | jq -sc .)
jq -s -e --argjson won "$won" 'all(.[]; .unread == true and
    if (.reservationId | IN($won[])) then .ip == ("203.0.113." + (.payload.n | tostring))
    else .ip == null and .payload == null end)' "$all" >/dev/null ||
    fail "an entry is not what its first finalization wrote: $(cat "$all")"

# ---- unread markers, and an error that names the field
unread() { req GET "/unread?owner=alice%40example.com" | body_of /dev/stdin | jq .unread; }
[ "$(unread)" = 40 ] || fail "unread is $(unread), not 40"
req POST "/mark-read?owner=alice%40example.com&reservation=r05" >/dev/null
[ "$(unread)" = 39 ] || fail "unread after marking r05 is $(unread), not 39"
req POST "/finalize?owner=bob%40example.com&reservation=x" "[1]" >"$scratch/bad"
[ "$(status_of "$scratch/bad")" = 400 ] && body_of "$scratch/bad" | jq -e '.error | test("payload_json")' >/dev/null ||
    fail "a bad payload did not give 400 naming payload_json: $(cat "$scratch/bad")"

# ---- the installed command reads the store while the workers have it open
"$cli" --db "$scratch/store" check >"$scratch/check" || fail "edgefeed check: $(cat "$scratch/check")"
n=$("$cli" --db "$scratch/store" feed --owner alice@example.com --limit 1000 | jq '.entries | length')
[ "$n" = 40 ] || fail "the installed edgefeed sees $n entries, not 40"

# ---- a worker killed is replaced; the others keep serving
victim=$(children | head -1)
kill -9 "$victim"
wait_for 4
req POST "/mark-read?owner=alice%40example.com" >"$scratch/all-read"
[ "$(status_of "$scratch/all-read")" = 200 ] && [ "$(body_of "$scratch/all-read" | jq .unread)" = 0 ] ||
    fail "mark-read after a worker died: $(cat "$scratch/all-read")"

# ---- SIGTERM: every process finishes and exits 0
kill -TERM "$wpid"
for _ in $(seq 100); do kill -0 "$wpid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$wpid" 2>/dev/null && fail "the worker did not stop within 10 s of SIGTERM"
rc=0
wait "$wpid" || rc=$?
[ "$rc" = 0 ] || fail "the worker exited $rc: $(cat "$scratch/worker.err")"
grep -qx stopped "$scratch/worker.out" || fail "the worker did not say it stopped"
for p in $(children); do
    kill -0 "$p" 2>/dev/null && fail "worker $p is still running"
done
echo "ok: installed, built with pkg-config, 50 concurrent finalizations served by $served of 3 processes (12 threads), 40 entries once each"
