#!/usr/bin/env bash
# Published indexes against real servers on loopback: an origin nginx serving the data
# and the published index (DEST = a directory it serves), mounts that start from
# http://.../pub/latest and follow new revisions live, and two stock nginx slice caches
# (packaging/cluster/nginx-cache.conf) in front of the origin for the one-download check.
source "$(dirname "$0")/lib.sh"
need_fuse
source "$SERVERS/nginx.sh"
source "$SERVERS/nginx-cache.sh"

WWW=$WORK/www
DATA=$WWW/data
"$TOOLS/gen-dataset" "$DATA" --files 1500 --file-size 700 --per-dir 100 --big 3 > /dev/null
chmod -R a+rX "$WORK"
ORIGIN=$WORK/origin; OPORT=$(free_port)
trap 'stop_nginx "$ORIGIN"; stop_nginx_cache "$WORK/cache2"; stop_nginx_cache "$WORK/cache3"; cleanup' EXIT
start_nginx "$WWW" "$ORIGIN" "$OPORT" || fail "origin nginx did not start"
SRC=http://127.0.0.1:$OPORT/json/data/
URL=http://127.0.0.1:$OPORT/pub/latest

publish() {  # publish N: builds an index of the data as it is now and publishes it
  "$TIERFS" index build "$SRC" --index "$WORK/idx$1" > /dev/null || fail "index build $1 failed"
  "$TIERFS" index publish --index "$WORK/idx$1" "$WWW/pub" > "$WORK/publish$1.log" ||
    { cat "$WORK/publish$1.log"; fail "publish $1 failed"; }
  chmod -R a+rX "$WWW/pub"
}
revision_of() { stat_field "$1" "['index']['revision']"; }
published_revision() { python3 -c "import json; print(json.load(open('$WWW/pub/latest'))['sha256'])"; }
# wait_for SECONDS COMMAND...: until the command succeeds.
wait_for() {
  local end=$((SECONDS + $1)); shift
  until "$@"; do [ $SECONDS -lt $end ] || return 1; sleep 0.2; done
}

# --- Revision 1: four mounts from the pointer; no listing reaches the source. ---
publish 1
"$TIERFS" index publish --index "$WORK/idx1" "$WWW/pub" | grep -q "already published" ||
  fail "publishing the same index twice was not a no-op"
[ "$(ls "$WWW/pub" | wc -l)" = 2 ] || fail "pub holds $(ls "$WWW/pub") after two publishes of one index"
ARTIFACT_BYTES=$(stat -c %s "$WWW/pub"/*.tierfs-index)
: > "$ORIGIN/access.log"
# Node 1 in the foreground, its log kept: the failure cases below read it.
mkdir -p "$WORK/mnt1"; MOUNTS+=("$WORK/mnt1")
MPORT=$(free_port)
"$TIERFS" mount "$SRC" "$WORK/mnt1" --index "$URL" --index-refresh 1 --cache-dir "$WORK/node1" \
  --cache-size 256M --metrics "127.0.0.1:$MPORT" -f > "$WORK/node1.log" 2>&1 &
# --index-refresh in its three spellings: the flag (node 1), -o (nodes 2, 3), a config file (4).
for n in 2 3; do
  mount_tierfs "$SRC" "$WORK/mnt$n" --index "$URL" -o index_refresh=1 --cache-dir "$WORK/node$n" --cache-size 256M
done
printf 'index = "%s"\nindex-refresh = 1\ncache-dir = "%s"\ncache-size = "256M"\n' "$URL" "$WORK/node4" > "$WORK/node4.toml"
mount_tierfs "$SRC" "$WORK/mnt4" --config "$WORK/node4.toml"
wait_for 10 is_mounted "$WORK/mnt1" || { cat "$WORK/node1.log"; fail "node 1 did not mount"; }
for n in 1 2 3 4; do diff -r "$DATA" "$WORK/mnt$n" > /dev/null || fail "mount $n differs from the source"; done
listings=$(grep -c -E '"(GET|HEAD) /json/data/([^ ]*/)? HTTP|"HEAD ' "$ORIGIN/access.log" || true)
[ "$listings" = 0 ] || { grep -E '/ HTTP|"HEAD ' "$ORIGIN/access.log" | head -3; fail "$listings listing/HEAD requests reached the source"; }
downloads=$(grep -c 'tierfs-index HTTP' "$ORIGIN/access.log")
REV1=$(published_revision)
[ "$(revision_of "$WORK/mnt2")" = "$REV1" ] || fail "mount 2 serves another revision than the published one"
pass "revision 1 (${REV1:0:12}, $ARTIFACT_BYTES-byte artifact): 4 mounts equal the source, 0 listing requests, $downloads artifact range requests"
PIDS=$(for n in 1 2 3 4; do stat_field "$WORK/mnt$n" "['pid']"; done | tr '\n' ' ')

# --- Revision 2: one file added, one changed (size and bytes), one removed. ---
OLD_BIG=$(sha256sum < "$DATA/big.bin")
python3 - "$WORK/mnt1/big.bin" "$WORK/reader" <<'PY' &
import os, sys, time
f = open(sys.argv[1], "rb")
first = f.read(1 << 20)                       # the file is open and half read
open(sys.argv[2] + ".ready", "w").close()
while not os.path.exists(sys.argv[2] + ".go"):
    time.sleep(0.05)
try:
    rest = f.read()
    import hashlib
    print(hashlib.sha256(first + rest).hexdigest(), file=open(sys.argv[2], "w"))
except OSError as e:
    print("error", e.errno, file=open(sys.argv[2], "w"))
PY
READER=$!
wait_for 10 test -e "$WORK/reader.ready" || fail "the reader did not start"
removed=$(find "$DATA" -type f ! -name big.bin | sort | sed -n 1p)
rm "$removed"
echo "added in revision 2" > "$DATA/added.txt"
head -c 2500000 /dev/urandom > "$DATA/big.bin"
chmod -R a+rX "$DATA"
publish 2
REV2=$(published_revision)
all_switched() {
  for n in 1 2 3 4; do [ "$(revision_of "$WORK/mnt$n")" = "$REV2" ] || return 1; done
}
wait_for 15 all_switched || fail "not every mount switched to revision 2 within 15 s"
for n in 1 2 3 4; do
  diff -r "$DATA" "$WORK/mnt$n" > "$WORK/diff$n" 2>&1 || { head -5 "$WORK/diff$n"; fail "mount $n does not show exactly revision 2"; }
done
[ "$(for n in 1 2 3 4; do stat_field "$WORK/mnt$n" "['pid']"; done | tr '\n' ' ')" = "$PIDS" ] ||
  fail "a daemon was restarted"
cmp -s "$DATA/big.bin" "$WORK/mnt3/big.bin" || fail "the changed file does not read its new bytes"
[ ! -e "$WORK/mnt2/${removed#"$DATA"/}" ] || fail "the removed file is still there"
touch "$WORK/reader.go"; wait "$READER"
got=$(cat "$WORK/reader")
case "$got" in
  "${OLD_BIG%% *}") how="old bytes" ;;
  "error 5") how="EIO" ;;
  *) fail "the reader holding the old file open got '$got': neither the old bytes nor EIO" ;;
esac
pass "revision 2 live on all 4 mounts (same pids): added, changed and removed files exact; an open reader got $how"

# --- Bad revisions: the mounts stay on revision 2, one log line each. ---
echo "added in revision 3" > "$DATA/added3.txt"; chmod a+r "$DATA/added3.txt"
"$TIERFS" index build "$SRC" --index "$WORK/idx3" > /dev/null || fail "index build 3 failed"
"$TIERFS" index publish --index "$WORK/idx3" "$WORK/stage" > /dev/null || fail "staging 3 failed"
REV3=$(python3 -c "import json; print(json.load(open('$WORK/stage/latest'))['sha256'])")
failed_with() {  # failed_with TEXT: node 1's last check failed, saying TEXT
  local r; r=$(stats_json "$WORK/mnt1")
  python3 -c "import json,sys; i=json.loads(sys.argv[1])['index']; sys.exit(not (i['last_check_result']=='failed' and sys.argv[2] in i['last_check_message']))" "$r" "$1"
}
# mark_log: counts node 1's failure lines so far; call it before breaking something.
mark_log() { LOG_BEFORE=$(grep -c 'index refresh failed' "$WORK/node1.log" || true); }
check_failure() {  # check_failure WHAT TEXT [MAX_LINES]: after mark_log and the breakage
  local before=$LOG_BEFORE
  wait_for 15 failed_with "$2" || { stats_json "$WORK/mnt1"; fail "$1: node 1 did not report '$2'"; }
  sleep 2.5  # two more checks fail the same way: no more lines
  local lines=$(($(grep -c 'index refresh failed' "$WORK/node1.log") - before))
  [ "$lines" -ge 1 ] && [ "$lines" -le "${3:-1}" ] || { tail -5 "$WORK/node1.log"; fail "$1: $lines log lines"; }
  [ "$(revision_of "$WORK/mnt1")" = "$REV2" ] || fail "$1: node 1 left revision 2"
  [ ! -e "$WORK/mnt1/added3.txt" ] || fail "$1: revision 3 showed up"
  pass "$1: stays on revision 2, '$(grep 'index refresh failed' "$WORK/node1.log" | tail -1 | sed 's/.*: //' | cut -c1-70)'"
}
# Revision 3's artifact reaches the origin corrupted (same size, one byte flipped), then
# the pointer naming it.
mark_log
python3 - "$WORK/stage/$REV3.tierfs-index" "$WWW/pub/$REV3.tierfs-index" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read()); b[len(b) // 2] ^= 0xff; open(sys.argv[2], "wb").write(b)
PY
chmod a+r "$WWW/pub/$REV3.tierfs-index"
cp "$WORK/stage/latest" "$WWW/pub/latest.tmp" && mv "$WWW/pub/latest.tmp" "$WWW/pub/latest"
check_failure "corrupted artifact" "sha256"
mark_log
python3 - "$WWW/pub/latest" <<'PY'
import json, sys
p = json.load(open(sys.argv[1])); p["sha256"] = "ab" * 32; p["artifact"] = p["sha256"] + ".tierfs-index"
json.dump(p, open(sys.argv[1], "w"))
PY
check_failure "pointer naming a missing artifact" "HTTP 404"
mark_log
echo "garbage {" > "$WWW/pub/latest"
check_failure "garbage pointer" "not JSON"
# Wait for the old master to be gone, not just its port: on exit it deletes the pid file,
# which would otherwise be the new master's, and the new one would outlive the test.
old_pid=$(cat "$ORIGIN/nginx.pid")
mark_log
stop_nginx "$ORIGIN"; wait_for 5 sh -c "! kill -0 $old_pid 2>/dev/null" || fail "origin did not stop"
check_failure "origin down during refresh" "pointer: http://" 2
start_nginx "$WWW" "$ORIGIN" "$OPORT" || fail "origin did not restart"
SERVER_PIDS+=("$(cat "$ORIGIN/nginx.pid")")
"$TIERFS" index publish --index "$WORK/idx3" "$WWW/pub" > /dev/null || fail "republish of 3 failed"
chmod -R a+rX "$WWW/pub"
# Every node, not just node 1: the restart below expects node 2 to hold revision 3 already.
for n in 1 2 3 4; do
  wait_for 15 sh -c "[ \"\$(getfattr --absolute-names -n user.tierfs.stats --only-values $WORK/mnt$n | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"index\"][\"revision\"])')\" = $REV3 ]" ||
    fail "the next good revision was not picked up on node $n"
done
cmp -s "$DATA/added3.txt" "$WORK/mnt1/added3.txt" || fail "revision 3's file is not there"
grep -q "index refresh works again" "$WORK/node1.log" || fail "no line saying refreshes work again"
pass "the next good revision (3) was picked up after the failures"
"$TIERFS" stats "$WORK/mnt1" | grep -q "^index revision   ${REV3:0:12}" || fail "tierfs stats does not show the revision"
curl -sf "http://127.0.0.1:$MPORT/metrics" > "$WORK/metrics.txt" || fail "no metrics"
grep -q "^tierfs_index_revision_info{revision=\"${REV3:0:12}\"} 1" "$WORK/metrics.txt" || fail "metrics do not show revision 3"
failed=$(sed -n 's/^tierfs_index_checks_total{result="failed"} //p' "$WORK/metrics.txt")
[ "${failed%.*}" -ge 4 ] || fail "metrics count $failed failed checks, not at least 4"
grep -q "^tierfs_index_published_timestamp_seconds [1-9]" "$WORK/metrics.txt" || fail "no publish time in the metrics"
pass "tierfs stats and /metrics show the revision in use, its publish time and $failed failed checks"
for n in 1 2 3 4; do unmount_tierfs "$WORK/mnt$n"; done
wait

# --- A restart on a revision the node has: nothing downloaded. ---
: > "$ORIGIN/access.log"
mount_tierfs "$SRC" "$WORK/mnt2" --index "$URL" --cache-dir "$WORK/node2" --cache-size 256M
cmp -s "$DATA/added3.txt" "$WORK/mnt2/added3.txt" || fail "restarted node 2 serves another revision"
n=$(grep -c 'tierfs-index HTTP' "$ORIGIN/access.log" || true)
[ "$n" = 0 ] || fail "restarted node 2 downloaded the artifact again ($n requests)"
unmount_tierfs "$WORK/mnt2"
pass "a node restarting on the revision it has unpacked downloads nothing (pointer only)"

# --- Through two stock nginx slice caches: N mounts, the artifact leaves the origin once. ---
CPORT=$(free_port)
for i in 2 3; do start_nginx_cache 127.0.0.$i "$CPORT" "$WORK/cache$i" 64k || fail "cache $i did not start"; done
PROXIES="http://127.0.0.2:$CPORT|http://127.0.0.3:$CPORT"
: > "$ORIGIN/access.log"
for n in 5 6 7 8; do
  mount_tierfs "$SRC" "$WORK/mnt$n" --index "$URL" --cache-dir "$WORK/node$n" --cache-size 256M \
    --block-size 64K --http-proxy "$PROXIES"
done
for n in 5 6 7 8; do diff -r "$DATA" "$WORK/mnt$n" > /dev/null || fail "mount $n (through caches) differs"; done
ART_BYTES=$(stat -c %s "$WWW/pub/$REV3.tierfs-index")
sent=$(awk '$7 ~ /tierfs-index$/ && ($9 == 206 || $9 == 200) {s += $10} END {print s + 0}' "$ORIGIN/access.log")
around=$(grep 'tierfs-index' "$ORIGIN/access.log" | grep -v -c -e '^127\.0\.0\.2 ' -e '^127\.0\.0\.3 ' || true)
[ "$around" = 0 ] || fail "$around artifact requests went around the caches"
[ "$sent" = "$ART_BYTES" ] || fail "the origin sent $sent artifact bytes for a $ART_BYTES-byte artifact to 4 mounts"
pass "4 mounts through 2 slice caches: the origin sent the $ART_BYTES-byte artifact once"
for n in 5 6 7 8; do unmount_tierfs "$WORK/mnt$n"; done

# --- A locally built index follows the source on demand. ---
LOCAL=$WORK/local; mkdir -p "$LOCAL/d"; echo one > "$LOCAL/d/one"
mount_tierfs "$LOCAL" "$WORK/mntl" --cache-dir "$WORK/nodel" --cache-size 64M
ls "$WORK/mntl/d" > /dev/null
[ ! -e "$WORK/mntl/d/two" ] || fail "a file not yet created is visible"
echo two > "$LOCAL/d/two"; rm "$LOCAL/d/one"
out=$("$TIERFS" index refresh "$WORK/mntl") || fail "tierfs index refresh failed: $out"
echo "$out" | grep -q "switched to revision" || fail "refresh said '$out'"
[ "$(cat "$WORK/mntl/d/two")" = two ] && [ ! -e "$WORK/mntl/d/one" ] || fail "the local mount did not follow the source"
[ "$(ls "$WORK/mntl/d")" = two ] || fail "the listing still shows the old tree: $(ls "$WORK/mntl/d")"
[ "$("$TIERFS" index refresh "$WORK/mntl")" = unchanged ] || fail "a second refresh found changes"
unmount_tierfs "$WORK/mntl"
mount_tierfs "$LOCAL" "$WORK/mntl" --cache-dir "$WORK/nodel" --cache-size 64M
[ "$(ls "$WORK/mntl/d")" = two ] || fail "a remount went back to the old revision"
[ "$(ls "$WORK/nodel/indexes" | grep -c local-)" = 1 ] && [ ! -e "$WORK/nodel/index" ] ||
  fail "old revisions were not removed: $(ls "$WORK/nodel" "$WORK/nodel/indexes")"
unmount_tierfs "$WORK/mntl"
pass "tierfs index refresh: a local mount re-walked its source and switched; a remount keeps it"
