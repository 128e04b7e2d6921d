#!/usr/bin/env bash
# Observability: Prometheus /metrics scraped during and after reads (exact remote request
# and byte counts, cache hits, failures by errno and HTTP status), remote failures logged
# at a bounded rate, --config files (command line wins, unknown keys refused), and bad
# --metrics addresses refused before anything is mounted.
source "$(dirname "$0")/lib.sh"
need_fuse

DATA=$WORK/data
"$TOOLS/gen-dataset" "$DATA" --files 60 --file-size 100000 --per-dir 20 --big 8
start_fault_server "$DATA"
"$TIERFS" index build "$URL/" --index "$WORK/idx" > /dev/null

MPORT=$(free_port)
metric() {  # metric 'NAME{labels}': its value in a fresh scrape (0 if absent)
  curl -sf "http://127.0.0.1:$MPORT/metrics" | awk -v m="$1" '$1 == m { v = $2 } END { print v + 0 }'
}
MNT=$WORK/mnt
# --no-passthrough: the re-read below must reach the daemon to count RAM hits (with
# passthrough it never does; passthrough_test counts that).
mount_tierfs "$URL/" "$MNT" --index "$WORK/idx" --cache-dir "$WORK/cache" --cache-size 64M \
  --ram-size 64M --block-size 64K --retries 2 --timeout 5000 --metrics "127.0.0.1:$MPORT" \
  --no-passthrough

# A scrape while a read is stalled at the server answers at once, in the text format.
arm "mode=stall&count=1&seconds=3&path=big.bin"
cat "$MNT/big.bin" > "$WORK/big.copy" &
reader=$!
sleep 1
kill -0 $reader 2>/dev/null || fail "the stalled read finished before the scrape"
headers=$(curl -s -D - -o "$WORK/scrape1" --max-time 2 "http://127.0.0.1:$MPORT/metrics") ||
  fail "scrape during a read failed"
grep -qi "content-type: text/plain; version=0.0.4" <<<"$headers" || fail "content type: $headers"
grep -q '^tierfs_fuse_ops_total{op="read"} [1-9]' "$WORK/scrape1" || fail "no FUSE reads counted mid-read"
for family in tierfs_cache_hits_total tierfs_cache_misses_total tierfs_cache_bytes \
  tierfs_cache_capacity_bytes tierfs_remote_requests_total tierfs_remote_bytes_total \
  tierfs_remote_request_duration_seconds tierfs_fuse_ops_total tierfs_checksum_failures_total; do
  grep -q "^# TYPE $family " "$WORK/scrape1" || fail "scrape lacks $family"
done
wait $reader || fail "read of big.bin failed"
cmp "$DATA/big.bin" "$WORK/big.copy" || fail "big.bin: wrong bytes"
pass "scrape during a stalled read: answered at once with every metric family"

blocks=$(( (8 * 1048576 + 65535) / 65536 ))
reads=$(metric 'tierfs_remote_requests_total{op="read",code="ok"}')
[ "$reads" -eq "$blocks" ] || fail "remote reads $reads, expected $blocks (one per block)"
bytes=$(metric tierfs_remote_bytes_total)
[ "$bytes" -eq $((8 * 1048576)) ] || fail "remote bytes $bytes"
got206=$(metric 'tierfs_http_requests_total{method="GET",code="206"}')
[ "$got206" -eq "$blocks" ] || fail "HTTP 206 answers $got206, expected $blocks"
ram=$(metric 'tierfs_cache_capacity_bytes{tier="ram"}')
[ "$ram" -eq $((64 << 20)) ] || fail "ram capacity $ram"
hits=$(metric 'tierfs_cache_hits_total{tier="ram"}')
echo 3 > /proc/sys/vm/drop_caches  # else the kernel's page cache answers without asking tierfs
cat "$MNT/big.bin" > /dev/null
[ "$(metric 'tierfs_remote_requests_total{op="read",code="ok"}')" -eq "$blocks" ] ||
  fail "second read went to the source"
hits2=$(metric 'tierfs_cache_hits_total{tier="ram"}')
[ $((hits2 - hits)) -ge "$blocks" ] || fail "ram hits grew by $((hits2 - hits)), expected >= $blocks"
count=$(metric 'tierfs_remote_request_duration_seconds_count{op="read"}')
[ "$count" -eq "$blocks" ] || fail "latency histogram count $count"
pass "after reads: $blocks remote reads = blocks, bytes exact, 206 x $blocks, rereads are RAM hits"

f=$(cd "$DATA" && find train -type f | sort | head -1)
arm "mode=503&count=50&path=$f"
cat "$MNT/$f" > /dev/null 2>&1 && fail "read through 503s succeeded"
arm "mode=none"
[ "$(metric 'tierfs_remote_requests_total{op="read",code="EIO"}')" -ge 1 ] || fail "EIO not counted"
[ "$(metric 'tierfs_http_requests_total{method="GET",code="503"}')" -ge 2 ] || fail "503s not counted"
[ "$(metric 'tierfs_fuse_errors_total')" -ge 1 ] || fail "FUSE errors not counted"
pass "failures: counted by errno (EIO) and HTTP status (503)"
"$TIERFS" unmount "$MNT"

# Block memory is reused: with no RAM tier every block is freed once served, and the next
# one (a fetch or an NVMe read) takes the freed memory instead of new pages. (Both passes
# go through the daemon: no passthrough.)
mount_tierfs "$URL/" "$MNT" --index "$WORK/idx" --cache-dir "$WORK/cache-pool" --cache-size 64M \
  --ram-size 0 --block-size 64K --metrics "127.0.0.1:$MPORT" --no-passthrough
for pass_no in 1 2; do
  echo 3 > /proc/sys/vm/drop_caches
  cmp "$DATA/big.bin" "$MNT/big.bin" || fail "big.bin through reused block memory: wrong bytes (pass $pass_no)"
done
reuses=$(metric tierfs_block_pool_reuses_total)
idle=$(metric tierfs_block_pool_idle_bytes)
[ "$reuses" -ge "$blocks" ] || fail "block memory reused $reuses times in 2 x $blocks blocks"
[ "$idle" -le $((16 << 20)) ] || fail "idle block memory $idle over its 16 MiB bound"
"$TIERFS" unmount "$MNT"
pass "no RAM tier, 2 x $blocks blocks: block memory reused $reuses times, $idle bytes idle, bytes exact"

# Remote failures are logged one line each, at most 10 per 10 s, then a count of the rest.
"$TIERFS" mount "$URL/" "$MNT" --index "$WORK/idx" --cache-dir "$WORK/cache" --cache-size 0 \
  --block-size 64K --retries 1 -f 2> "$WORK/fg.log" &
MOUNTS+=("$MNT")
for _ in $(seq 100); do is_mounted "$MNT" && break; sleep 0.1; done
is_mounted "$MNT" || fail "foreground mount did not come up: $(cat "$WORK/fg.log")"
arm "mode=503&count=100000&path=train"
start=$(date +%s)
for g in $(cd "$DATA" && find train -type f | sort | sed -n 2,31p); do
  cat "$MNT/$g" > /dev/null 2>&1 && fail "read of $g through 503s succeeded"
done
lines=$(grep -c "remote read of" "$WORK/fg.log" || true)
elapsed=$(( $(date +%s) - start ))
[ "$lines" -ge 1 ] || fail "no failure logged: $(cat "$WORK/fg.log")"
limit=$(( 10 * (elapsed / 10 + 1) ))
[ "$lines" -le "$limit" ] || fail "$lines failure lines in ${elapsed}s (limit $limit)"
sleep $(( 11 - elapsed % 10 ))
h=$(cd "$DATA" && find train -type f | sort | sed -n 40p)
cat "$MNT/$h" > /dev/null 2>&1 || true
grep -q "similar lines suppressed" "$WORK/fg.log" || fail "no suppressed count: $(tail -3 "$WORK/fg.log")"
arm "mode=none"
is_mounted "$MNT" || fail "mount died"
"$TIERFS" unmount "$MNT"
pass "30 failing reads: $lines log lines, then 'similar lines suppressed'"

# --config: keys are the long options; the command line wins; -o metrics= works too.
CPORT=$(free_port)
cat > "$WORK/tierfs.toml" <<EOF
# tierfs mount options
source = "$URL/"
mountpoint = "$MNT"
index = "$WORK/idx"
cache-dir = "$WORK/cache"
cache-size = "64M"
ram-size = "32M"
block-size = "64K"
metrics = "127.0.0.1:$CPORT"
EOF
"$TIERFS" mount --config "$WORK/tierfs.toml" --ram-size 16M || fail "mount --config failed"
is_mounted "$MNT" || fail "--config mount not mounted"
[ "$(stat_field "$MNT" '["tiers"]["ram"]["capacity_bytes"]')" -eq $((16 << 20)) ] ||
  fail "command line --ram-size did not win over the config file"
[ "$(stat_field "$MNT" '["block_size"]')" -eq 65536 ] || fail "block-size from the config not used"
scrape=$(curl -sS --max-time 10 "http://127.0.0.1:$CPORT/metrics" 2>&1) || true
grep -q '^tierfs_dataset_files 61$' <<<"$scrape" ||
  fail "metrics address from the config not served: $(grep -v '^#' <<<"$scrape" | head -3)"
cmp "$DATA/big.bin" "$MNT/big.bin" || fail "--config mount: wrong bytes"
"$TIERFS" unmount "$MNT"
echo 'cache-sise = "1G"' >> "$WORK/tierfs.toml"
err=$("$TIERFS" mount --config "$WORK/tierfs.toml" 2>&1) && fail "unknown config key accepted"
[ "$(echo "$err" | wc -l)" -eq 1 ] && grep -q "unknown key 'cache-sise'" <<<"$err" || fail "said: $err"
is_mounted "$MNT" && fail "mounted despite a bad config"
pass "--config: keys as long options, command line wins, unknown key refused: $err"

OPORT=$(free_port)
mount_tierfs "$URL/" "$MNT" --index "$WORK/idx" --cache-dir "$WORK/cache" -o "metrics=127.0.0.1:$OPORT"
# (Scrapes are read whole before grep: `curl | grep -q` fails under pipefail when grep
# stops reading early.)
scrape=$(curl -sS --max-time 10 "http://127.0.0.1:$OPORT/metrics" 2>&1) || true
grep -q "^tierfs_build_info" <<<"$scrape" || fail "-o metrics= not served: $(echo "$scrape" | head -2)"
# A second mount cannot take a port in use: one line, nothing mounted.
mkdir -p "$WORK/mnt2"
err=$("$TIERFS" mount "$URL/" "$WORK/mnt2" --index "$WORK/idx" --cache-dir "$WORK/cache2" \
  --metrics "127.0.0.1:$OPORT" 2>&1) && fail "mount on a busy metrics port succeeded"
is_mounted "$WORK/mnt2" && fail "busy metrics port left a mount"
pass "busy --metrics port: $err"
"$TIERFS" unmount "$MNT"
for bad in "127.0.0.1:notaport" "127.0.0.1:0" "[::1" "70000"; do
  err=$("$TIERFS" mount "$URL/" "$MNT" --index "$WORK/idx" --cache-dir "$WORK/cache" --metrics "$bad" 2>&1) &&
    fail "--metrics $bad accepted"
  [ "$(echo "$err" | wc -l)" -eq 1 ] || fail "--metrics $bad: more than one line: $err"
  is_mounted "$MNT" && fail "--metrics $bad left a mount"
done
pass "bad --metrics addresses: one line each, nothing mounted"
kill $SERVER
