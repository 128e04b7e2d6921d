#!/usr/bin/env bash
# Remote faults through a fault-injecting HTTP server: 503 bursts, resets mid-body,
# truncated bodies, stalls, a file changed after indexing, the server going away and
# coming back. Readers get correct bytes or EIO in bounded time; never wrong bytes; the
# mount keeps serving.
source "$(dirname "$0")/lib.sh"
need_fuse

DATA=$WORK/data
"$TOOLS/gen-dataset" "$DATA" --files 40 --file-size 300000 --per-dir 10
start_fault_server "$DATA"

"$TIERFS" index build "$URL/" --index "$WORK/idx" > /dev/null
MNT=$WORK/mnt
# RAM only: every test below reads a different file, so each read goes to the server.
mount_tierfs "$URL/" "$MNT" --index "$WORK/idx" --cache-dir "$WORK/cache" --cache-size 0 \
  --timeout 2000 --retries 4 --block-size 64K
files=($(cd "$DATA" && find . -type f | sort))
n=0
next_file() { f=${files[$n]#./}; n=$((n + 1)); }

next_file; arm "mode=503&count=3&path=$f"
cmp "$DATA/$f" "$MNT/$f" || fail "503 burst: wrong bytes"
pass "3 x 503 then success: correct bytes"

next_file; arm "mode=reset&count=2&path=$f"
cmp "$DATA/$f" "$MNT/$f" || fail "resets: wrong bytes"
pass "2 resets mid-body then success: correct bytes"

next_file; arm "mode=truncate&count=2&path=$f"
cmp "$DATA/$f" "$MNT/$f" || fail "truncated bodies: wrong bytes"
pass "2 truncated bodies then success: correct bytes"

next_file; arm "mode=stall&count=1&seconds=4&path=$f"
cmp "$DATA/$f" "$MNT/$f" || fail "stall: wrong bytes"
pass "a 4 s stall beyond the 2 s timeout: retried, correct bytes"

# A read stalled at the server holds one FUSE worker, not the mount: while it waits, other
# files are listed, looked up and read (the worker hands the device on before fetching).
next_file; stalled=$f
arm "mode=stall&count=1&seconds=4&path=$stalled"
cat "$MNT/$stalled" > "$WORK/stalled.out" &
reader=$!
sleep 0.5
for _ in 1 2 3; do
  next_file
  stat "$MNT/$f" > /dev/null || fail "stat during a stall failed"
  cmp "$DATA/$f" "$MNT/$f" || fail "read during a stall: wrong bytes"
done
kill -0 $reader 2>/dev/null || fail "the stalled read finished before the other reads"
wait $reader || fail "the stalled read failed"
cmp "$DATA/$stalled" "$WORK/stalled.out" || fail "stalled read: wrong bytes"
pass "a read stalled at the server does not hold up other files"

next_file; arm "mode=503&count=1000&path=$f"
start=$(date +%s)
out=$(cat "$MNT/$f" 2>&1 >/dev/null) && fail "persistent 503: read succeeded"
grep -q "Input/output error" <<<"$out" || fail "persistent 503 said: $out"
took=$(( $(date +%s) - start ))
[ $took -lt 30 ] || fail "persistent 503: EIO took $took s"
arm "mode=none&count=0"
next_file; cmp "$DATA/$f" "$MNT/$f" || fail "mount stopped serving after EIO"
pass "persistent 503: EIO after ${took}s, other files still served"

next_file; arm "mode=stall&count=100&seconds=30&path=$f"
start=$(date +%s)
cat "$MNT/$f" > /dev/null 2>&1 && fail "30 s stalls: read succeeded"
took=$(( $(date +%s) - start ))
[ $took -lt 25 ] || fail "30 s stalls: EIO took $took s"
arm "mode=none&count=0"
pass "30 s stalls: EIO after ${took}s (timeouts x retries), no hang"

# Three timeouts in a row mark the origin down: reads fail fast until a probe, due within
# the back-off (1 s, doubling to 10 s), gets an answer again.
eventually_same() {  # eventually_same FILE: cmp passes within 15 s
  for _ in $(seq 75); do cmp -s "$DATA/$1" "$MNT/$1" 2> /dev/null && return 0; sleep 0.2; done
  return 1
}
next_file; eventually_same "$f" || fail "reads did not come back after the stalls ended"
pass "origin answering again after the stalls: reads come back"

# A file changed after indexing: EIO, never the new bytes mixed with the old.
next_file; changed=$f
head -c 300000 /dev/urandom > "$DATA/$changed.new" && mv "$DATA/$changed.new" "$DATA/$changed"
out=$(cat "$MNT/$changed" 2>&1 >/dev/null) && fail "changed file read succeeded"
grep -q "Input/output error" <<<"$out" || fail "changed file said: $out"
next_file; cmp "$DATA/$f" "$MNT/$f" || fail "mount stopped serving after a changed file"
pass "file changed after indexing: EIO; other files fine"

# A file deleted after indexing: it still lists (the index is the truth), reads are EIO.
next_file; deleted=$f
rm "$DATA/$deleted"
[ -e "$MNT/$deleted" ] || fail "deleted file vanished from the listing"
out=$(cat "$MNT/$deleted" 2>&1 >/dev/null) && fail "deleted file read succeeded"
grep -q "Input/output error" <<<"$out" || fail "deleted file said: $out"
next_file; cmp "$DATA/$f" "$MNT/$f" || fail "mount stopped serving after a deleted file"
pass "file deleted after indexing: EIO; other files fine"

# Server down, then back.
kill $SERVER; wait $SERVER 2>/dev/null || true
next_file
cat "$MNT/$f" > /dev/null 2>&1 && fail "server down: read succeeded"
# Once it is known to be down, a scan of the other files fails fast: a few connection
# attempts in all (probes), not retries with back-off for every file.
direct_errors() {
  stats_json "$MNT" | python3 -c 'import json, sys
print(sum(r["requests"]["error"] for r in json.load(sys.stdin)["routes"] if r["via"] == "DIRECT"))'
}
before=$(direct_errors)
for g in "${files[@]:$n}"; do
  cat "$MNT/${g#./}" > /dev/null 2>&1 && fail "server down: a read of $g succeeded"
done
tries=$(( $(direct_errors) - before ))
[ "$tries" -le 6 ] || fail "server down: $tries connection attempts for $(( ${#files[@]} - n + 1 )) files"
pass "server down: a scan of $(( ${#files[@]} - n )) more files fails fast ($tries connection attempts in all)"
start_fault_server "$DATA" "$PORT"
# A stopped server refuses at once, so its route is probed again every 100 ms: the first
# read after it is back works (no back-off to wait out).
sleep 0.2
cmp -s "$DATA/$f" "$MNT/$f" || fail "server back: the first read after 0.2 s failed"
pass "server down: EIO; server back: the first read works"

# Stragglers: one GET in 25 stalls 3 s. Each gets a second request once it has run 3x
# the recent p99 (hedged), and the first answer wins: right bytes, and the stalls did not
# each hold a reader for 3 s (counted, not timed: the hedges and their wins).
hedge_field() { stats_json "$MNT" | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
# A fresh daemon: its p99 is learnt from the first 20 fetches, before the first stall.
fusermount3 -u "$MNT"
mount_tierfs "$URL/" "$MNT" --index "$WORK/idx" --cache-dir "$WORK/cache" --cache-size 0 \
  --timeout 5000 --retries 4 --block-size 64K
h0=$(hedge_field hedged_fetches) w0=$(hedge_field hedge_wins)
arm "mode=stall&seconds=3&count=4&every=25"
for g in "${files[@]:$n}"; do  # the files the outage left uncached
  cmp -s "$DATA/${g#./}" "$MNT/${g#./}" || fail "stragglers: wrong bytes or EIO for $g"
done
hedged=$(( $(hedge_field hedged_fetches) - h0 )) wins=$(( $(hedge_field hedge_wins) - w0 ))
arm "mode=none"
[ "$hedged" -ge 3 ] && [ "$wins" -ge 3 ] || fail "stragglers: $hedged hedged, $wins won (want >= 3)"
pass "stragglers (1 GET in 25 stalls 3 s): $hedged second requests, $wins answered first"
kill $SERVER
