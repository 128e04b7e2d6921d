#!/usr/bin/env bash
# The cluster tier against real servers on loopback: an origin nginx on 127.0.0.1, three
# stock nginx slice caches (packaging/cluster/nginx-cache.conf) on 127.0.0.2-4, and tierfs
# mounts that send each block to the cache that owns it (--http-proxy "c2|c3|c4", no
# DIRECT). The caches fetch from the origin from their own addresses (proxy_bind), so the
# origin's access log tells what each cache, and nobody else, read from it.
source "$(dirname "$0")/lib.sh"
need_fuse
source "$SERVERS/nginx.sh"
source "$SERVERS/nginx-cache.sh"
# Every nginx this test starts is stopped on exit (a failed check included).
trap 'for d in "$WORK"/origin "$WORK"/cache? "$WORK"/stock?? "$WORK"/tls-origin; do stop_nginx "$d"; done; cleanup' EXIT

DATA=$WORK/data
"$TOOLS/gen-dataset" "$DATA" --files 240 --file-size 40000 --per-dir 60 --big 24 > /dev/null
head -c 7340033 /dev/urandom > "$DATA/shard-1.tar"  # 7 MiB + 1 byte: a 1-byte last block
chmod -R a+rX "$WORK"
DATA_BYTES=$(find "$DATA" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
BLOCKS=$(find "$DATA" -type f -printf '%s\n' | awk '{b += int(($1 + 1048575) / 1048576)} END {print b}')
pass "data: $(find "$DATA" -type f | wc -l) files (two shards, small files), $DATA_BYTES bytes, $BLOCKS blocks"

ORIGIN=$WORK/origin; OPORT=$(free_port)
start_nginx "$DATA" "$ORIGIN" "$OPORT" || fail "origin nginx did not start"
SRC=http://127.0.0.1:$OPORT/json/
CPORT=$(free_port)
for i in 2 3 4; do start_nginx_cache 127.0.0.$i "$CPORT" "$WORK/cache$i" || fail "cache $i did not start"; done
PROXIES="http://127.0.0.2:$CPORT|http://127.0.0.3:$CPORT|http://127.0.0.4:$CPORT"
: > "$ORIGIN/access.log"  # (the start-up probe)

# Bytes of file data the origin sent to readers (206 answers; listings are 200s of dirs).
origin_bytes() { awk '$9 == 206 {s += $10} END {print s + 0}' "$ORIGIN/access.log"; }
origin_requests_not_from_caches() {
  grep -v -e '^127\.0\.0\.2 ' -e '^127\.0\.0\.3 ' -e '^127\.0\.0\.4 ' "$ORIGIN/access.log" | wc -l
}
ratio() { python3 -c "print(f'{$1 / $2:.3f}')"; }

# --- The index, built through the caches: listings pass through and are not kept. ---
"$TIERFS" index build "$SRC" --index "$WORK/idx" --http-proxy "$PROXIES" > "$WORK/build.log" 2>&1 ||
  { cat "$WORK/build.log"; fail "index build through the caches failed"; }
[ "$(origin_requests_not_from_caches)" = 0 ] || { head -3 "$ORIGIN/access.log"; fail "the index build went to the origin around the caches"; }
if grep -q ' HIT ' "$WORK"/cache*/access.log; then fail "a listing was served from a cache"; fi
pass "index build went through the caches (listings passed through, none kept)"
: > "$ORIGIN/access.log"

# --- Six mounts read the whole data set at once. ---
mount_node() {  # mount_node NAME [RAM_SIZE CACHE_SIZE]: blocks spread over the slice caches
  mount_tierfs "$SRC" "$WORK/mnt-$1" --index "$WORK/idx" --cache-dir "$WORK/node-$1" \
    --ram-size "${2:-128M}" --cache-size "${3:-256M}" --http-proxy "$PROXIES" --http-proxy-placement block
}
read_all() {  # read_all NAME: diff -r of the mount against the source, in the background
  diff -r "$DATA" "$WORK/mnt-$1" > "$WORK/diff-$1" 2>&1 &
}
pids=()
for n in 1 2 3 4 5 6; do mount_node "n$n"; done
for n in 1 2 3 4 5 6; do read_all "n$n"; pids+=($!); done
for i in "${!pids[@]}"; do wait "${pids[$i]}" || { head "$WORK/diff-n$((i + 1))"; fail "mount n$((i + 1)) differs from the source"; }; done
pass "six mounts read the data set concurrently: every byte identical"
ob=$(origin_bytes)
[ "$ob" = "$DATA_BYTES" ] || fail "origin sent $ob bytes of file data for a $DATA_BYTES-byte set ($(ratio "$ob" "$DATA_BYTES")x)"
[ "$(origin_requests_not_from_caches)" = 0 ] || fail "a mount went to the origin around the caches"
declare -A OWN
for i in 2 3 4; do
  OWN[$i]=$(awk -v a=127.0.0.$i '$1 == a && $9 == 206 {s += $10} END {print s + 0}' "$ORIGIN/access.log")
  [ "${OWN[$i]}" -gt $((DATA_BYTES / 10)) ] || fail "cache $i owns only ${OWN[$i]} bytes"
done
pass "origin served the data set once: $ob bytes = 1.00x; cache shares ${OWN[2]} / ${OWN[3]} / ${OWN[4]} bytes"
for n in 1 2 3 4 5 6; do unmount_tierfs "$WORK/mnt-n$n"; done

# --- A cache dies while fresh nodes read. ---
: > "$ORIGIN/access.log"
pids=()
for n in 7 8 9; do mount_node "n$n"; done
for n in 7 8 9; do read_all "n$n"; pids+=($!); done
sleep 0.1
kill_nginx_cache "$WORK/cache3"
for i in "${!pids[@]}"; do wait "${pids[$i]}" || { head "$WORK/diff-n$((i + 7))"; fail "a read failed or differed while cache 3 died"; }; done
pass "cache 3 killed mid-read: no read failed, no byte differed"
mount_node n10
diff -r "$DATA" "$WORK/mnt-n10" > /dev/null || fail "a fresh mount differs with cache 3 down"
extra=$(origin_bytes)
[ "$(origin_requests_not_from_caches)" = 0 ] || fail "with cache 3 down, a mount went to the origin itself"
python3 -c "import sys; sys.exit(not (0.5 * ${OWN[3]} <= $extra <= 1.02 * ${OWN[3]}))" ||
  fail "with cache 3 down the origin sent $extra bytes; cache 3 owned ${OWN[3]}"
pass "the origin served about cache 3's share again ($extra of ${OWN[3]} bytes) and nothing else"
down=$("$TIERFS" stats "$WORK/mnt-n10" | grep "127.0.0.3:$CPORT")
[[ "$down" == *DOWN* ]] || fail "stats do not show cache 3 down: $down"
for n in 7 8 9 10; do unmount_tierfs "$WORK/mnt-n$n"; done

# --- Every cache down, no DIRECT: EIO, the mount stays up; a cache returns: reads work. ---
kill_nginx_cache "$WORK/cache2"; kill_nginx_cache "$WORK/cache4"
mount_node bare 0 0  # no local tiers: every read goes out
FILE=train/class0003/img0000200.jpg
if cat "$WORK/mnt-bare/$FILE" > /dev/null 2> "$WORK/eio"; then fail "a read succeeded with every cache down"; fi
grep -q "Input/output error" "$WORK/eio" || fail "with every cache down: $(cat "$WORK/eio"), not EIO"
ls "$WORK/mnt-bare/train" > /dev/null || fail "the mount did not stay up"
[ "$(origin_requests_not_from_caches)" = 0 ] || fail "with every cache down, a read went to the origin"
pass "every cache down: EIO, the mount stays up, the origin is not touched"
start_nginx_cache 127.0.0.3 "$CPORT" "$WORK/cache3" || fail "cache 3 did not restart"
ok=0
for _ in $(seq 60); do  # the next probe is due within the backoff (10 s at most)
  if cmp -s "$DATA/$FILE" "$WORK/mnt-bare/$FILE"; then ok=1; break; fi
  sleep 0.5
done
[ $ok = 1 ] || fail "reads did not recover after cache 3 came back"
before=$(wc -l < "$WORK/cache3/access.log")
diff -r "$DATA/train" "$WORK/mnt-bare/train" > /dev/null || fail "reads after recovery differ"
[ "$(wc -l < "$WORK/cache3/access.log")" -gt "$before" ] || fail "cache 3 is not used again"
pass "cache 3 back: reads recover and it is used again"
unmount_tierfs "$WORK/mnt-bare"
start_nginx_cache 127.0.0.2 "$CPORT" "$WORK/cache2" || fail "cache 2 did not restart"
start_nginx_cache 127.0.0.4 "$CPORT" "$WORK/cache4" || fail "cache 4 did not restart"

# --- A cache that answers wrongly: refused and counted, never returned. ---
FPORT=$(free_port)
for mode in stale shift short; do
  "$SERVERS/fault-proxy" 127.0.0.5 "$FPORT" "$mode" &
  SERVER_PIDS+=($!)
  wait_http "http://127.0.0.5:$FPORT/__stats"
  mnt=$WORK/mnt-fault-$mode
  # The broken cache alone: reads fail rather than return its bytes.
  mount_tierfs "$SRC" "$mnt" --index "$WORK/idx" --cache-dir "$WORK/node-fault-$mode" \
    --ram-size 0 --cache-size 0 --http-proxy "http://127.0.0.5:$FPORT"
  if cat "$mnt/big.bin" > /dev/null 2>&1; then fail "$mode: a wrong answer reached a reader"; fi
  refused=$(stats_json "$mnt" | python3 -c 'import json,sys; print(sum(r["requests"]["refused"] for r in json.load(sys.stdin)["routes"]))')
  [ "$refused" -gt 0 ] || fail "$mode: no answer was counted as refused"
  unmount_tierfs "$mnt"
  # In front of a good cache (failover group): readers get the right bytes.
  mount_tierfs "$SRC" "$mnt" --index "$WORK/idx" --cache-dir "$WORK/node-fault2-$mode" \
    --ram-size 0 --cache-size 0 --http-proxy "http://127.0.0.5:$FPORT;http://127.0.0.2:$CPORT"
  cmp "$DATA/big.bin" "$mnt/big.bin" || fail "$mode: wrong bytes with a good cache behind the broken one"
  cmp "$DATA/shard-1.tar" "$mnt/shard-1.tar" || fail "$mode: wrong bytes of the shard"
  unmount_tierfs "$mnt"
  kill "${SERVER_PIDS[-1]}"; wait "${SERVER_PIDS[-1]}" 2>/dev/null || true
  pass "a cache serving $mode blocks: refused ($refused counted), EIO alone, right bytes from the next group"
done

# --- Membership from DNS: one name, several addresses, followed as it changes. ---
# /etc/hosts is replaced inside a private mount namespace only (the machine's is untouched).
cat > "$WORK/hosts" <<HOSTS
127.0.0.1 localhost
127.0.0.2 caches.tierfs.test
127.0.0.3 caches.tierfs.test
HOSTS
export WORK SRC CPORT DATA TIERFS
unshare --mount --propagation private bash -euo pipefail -c '
  mount --bind "$WORK/hosts" /etc/hosts
  mnt=$WORK/mnt-dns; mkdir -p "$mnt"
  "$TIERFS" mount "$SRC" "$mnt" --index "$WORK/idx" --cache-dir "$WORK/node-dns" --ram-size 0 \
    --cache-size 0 --http-proxy "http://caches.tierfs.test:$CPORT" --http-proxy-refresh 1
  trap "fusermount3 -u $mnt" EXIT
  count() { wc -l < "$WORK/cache$1/access.log"; }
  a2=$(count 2) a3=$(count 3) a4=$(count 4)
  diff -r "$DATA/train" "$mnt/train" > /dev/null
  [ "$(count 2)" -gt "$a2" ] && [ "$(count 3)" -gt "$a3" ] || { echo "FAIL: the name did not spread over both addresses"; exit 1; }
  [ "$(count 4)" = "$a4" ] || { echo "FAIL: an address not in the name was used"; exit 1; }
  echo "127.0.0.4 caches.tierfs.test" >> "$WORK/hosts"
  sleep 1.5
  echo 3 > /proc/sys/vm/drop_caches  # (else the kernel answers the reads from its page cache)
  diff -r "$DATA/train" "$mnt/train" > /dev/null
  [ "$(count 4)" -gt "$a4" ] || { echo "FAIL: an address added to the name was not followed"; exit 1; }
' || fail "DNS membership"
pass "a cache name resolving to 2 addresses spreads blocks over both; a third address added is used after a refresh"

# --- An https:// origin through a cache: TLS stays end to end to the origin. ---
# tierfs asks the cache for http://ORIGIN/... with X-Origin-Scheme: https; the cache makes
# the TLS connection and verifies the origin's certificate (a forward proxy cannot cache
# inside CONNECT). A cache that does not trust the origin answers 502: EIO, never bytes.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=127.0.0.1" \
  -addext "subjectAltName=IP:127.0.0.1" -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2> /dev/null ||
  fail "openssl could not make a certificate"
TLS=$WORK/tls-origin; TPORT=$(free_port); mkdir -p "$TLS/tmp"
cat > "$TLS/nginx.conf" <<CONF
error_log $TLS/error.log warn;
pid $TLS/nginx.pid;
events { worker_connections 256; }
http {
  access_log $TLS/access.log;
  client_body_temp_path $TLS/tmp/body; proxy_temp_path $TLS/tmp/proxy;
  fastcgi_temp_path $TLS/tmp/fastcgi; uwsgi_temp_path $TLS/tmp/uwsgi; scgi_temp_path $TLS/tmp/scgi;
  server {
    listen 127.0.0.1:$TPORT ssl;
    ssl_certificate $WORK/cert.pem; ssl_certificate_key $WORK/key.pem;
    location / { root $DATA; autoindex on; autoindex_format json; }
  }
}
CONF
nginx -c "$TLS/nginx.conf" -p "$TLS" || fail "TLS origin did not start"
for _ in $(seq 50); do curl -sf --cacert "$WORK/cert.pem" -o /dev/null "https://127.0.0.1:$TPORT/" && break; sleep 0.1; done
# nginx logs a request after its answer is sent: wait for that line before emptying the
# log (on a loaded machine it came after, and read as a request around the cache).
for _ in $(seq 50); do [ -s "$TLS/access.log" ] && break; sleep 0.1; done
: > "$TLS/access.log"
start_nginx_cache 127.0.0.6 "$CPORT" "$WORK/cache6" 1m "$WORK/cert.pem" || fail "TLS-trusting cache did not start"
TSRC=https://127.0.0.1:$TPORT/
"$TIERFS" index build "$TSRC" --index "$WORK/idx-tls" --http-proxy "http://127.0.0.6:$CPORT" > /dev/null 2>&1 ||
  fail "index build of an https origin through a cache failed"
mount_tierfs "$TSRC" "$WORK/mnt-tls" --index "$WORK/idx-tls" --cache-dir "$WORK/node-tls" \
  --ram-size 0 --cache-size 0 --http-proxy "http://127.0.0.6:$CPORT"
cmp "$DATA/big.bin" "$WORK/mnt-tls/big.bin" || fail "https through a cache: wrong bytes"
cmp "$DATA/shard-1.tar" "$WORK/mnt-tls/shard-1.tar" || fail "https through a cache: wrong bytes"
if grep -v '^127\.0\.0\.6 ' "$TLS/access.log" > "$WORK/around.log"; then
  cat "$WORK/around.log" >&2
  fail "the https origin was reached around the cache"
fi
grep -q '" 206 ' "$TLS/access.log" || fail "the cache did not fetch slices over TLS"
unmount_tierfs "$WORK/mnt-tls"
mount_tierfs "$TSRC" "$WORK/mnt-tls2" --index "$WORK/idx-tls" --cache-dir "$WORK/node-tls2" \
  --ram-size 0 --cache-size 0 --http-proxy "http://127.0.0.2:$CPORT"
if cat "$WORK/mnt-tls2/shard-1.tar" > /dev/null 2>&1; then fail "a cache that cannot verify the origin served bytes"; fi
unmount_tierfs "$WORK/mnt-tls2"
kill "$(cat "$TLS/nginx.pid")"
pass "https origin through a cache: bytes identical, the cache did the TLS; an unverified origin gives EIO"

# --- Configuration errors: one line each. ---
out=$("$TIERFS" mount "$SRC" "$WORK/mnt-x" --http-proxy "https://c1:3128" 2>&1) && fail "an https:// proxy was accepted"
[ "$(wc -l <<< "$out")" = 1 ] && [[ "$out" == *"http-proxy"* ]] || fail "bad proxy error: $out"
out=$("$TIERFS" index build s3://bucket/ --index "$WORK/idx-s3" --s3-endpoint http://127.0.0.1:1 \
      --http-proxy "http://127.0.0.2:$CPORT" 2>&1) && fail "a private bucket went through caches without opt-in"
[[ "$out" == *"--s3-through-proxy"* ]] || fail "private S3 through caches: $out"
pass "bad proxy lists and private S3 through caches without --s3-through-proxy are refused with one line"

# --- Stock nginx caches (no slice module, no cache lock, HEAD turned into GET), nodes that
# build their own index from the origin's html listing: the origin serves each byte once.
# A stock cache fetches the whole object on a miss, once per miss in flight; a node sends
# all of an object's blocks to one cache and its first read alone (until the cache has the
# whole object), so a node never makes a cache fetch an object twice. (Cold misses of one
# object from several nodes at once are the cache's to collapse: proxy_cache_lock.) ---
for i in 21 22 23; do start_stock_cache 127.0.0.$i "$CPORT" "$WORK/stock$i" || fail "stock cache $i did not start"; done
STOCK="http://127.0.0.21:$CPORT|http://127.0.0.22:$CPORT|http://127.0.0.23:$CPORT;DIRECT"
: > "$ORIGIN/access.log"
for n in 1 2 3; do
  mount_tierfs "http://127.0.0.1:$OPORT/html/" "$WORK/mnt-s$n" --cache-dir "$WORK/node-s$n" \
    --ram-size 64M --cache-size 0 --http-proxy "$STOCK"
done
diff -r "$DATA" "$WORK/mnt-s1" > "$WORK/diff-s1" 2>&1 || { head "$WORK/diff-s1"; fail "node s1 differs through stock caches"; }
pids=()
for n in 2 3; do diff -r "$DATA" "$WORK/mnt-s$n" > "$WORK/diff-s$n" 2>&1 & pids+=($!); done
for i in "${!pids[@]}"; do wait "${pids[$i]}" || { head "$WORK/diff-s$((i + 2))"; fail "node s$((i + 2)) differs through stock caches"; }; done
# File bytes the origin sent (GETs of files, whole or ranged; listings end in '/').
sent=$(awk '$6 == "\"GET" && $7 !~ /\/$/ && ($9 == 200 || $9 == 206) {s += $10} END {print s + 0}' "$ORIGIN/access.log")
python3 -c "import sys; sys.exit(not $sent <= 1.02 * $DATA_BYTES)" ||
  fail "through stock caches the origin sent $sent bytes for $DATA_BYTES ($(ratio "$sent" "$DATA_BYTES")x)"
heads=$(grep -c '"HEAD ' "$ORIGIN/access.log" || true)
for n in 1 2 3; do unmount_tierfs "$WORK/mnt-s$n"; done
pass "own index, 3 stock caches: node 1 cold then 2 nodes at once, the origin sent $(ratio "$sent" "$DATA_BYTES")x the data set ($heads HEADs went direct)"
