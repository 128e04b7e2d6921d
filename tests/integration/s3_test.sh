#!/usr/bin/env bash
# S3 sources against a real S3-compatible server (s3rver) on loopback: 2,500 keys across
# prefixes (listing pagination), ranged reads, diff -r clean, wrong credentials refused.
source "$(dirname "$0")/lib.sh"
need_fuse
source "$SERVERS/s3rver.sh"
install_s3rver || { echo "SKIP: s3rver could not be installed from npm"; exit 77; }

DATA=$WORK/data
"$TOOLS/gen-dataset" "$DATA" --files 2500 --file-size 3000 --per-dir 1250 --big 24
mkdir -p "$DATA/odd names"
printf 'a' > "$DATA/odd names/with space & amp.txt"
printf 'b' > "$DATA/odd names/ünï#cödé?.txt"
printf '' > "$DATA/odd names/empty"
PORT=$(free_port)
start_s3rver "$WORK/s3" "$PORT" data || fail "s3rver did not start"
trap 'stop_s3rver "$WORK/s3"; cleanup' EXIT
s3_upload "http://127.0.0.1:$PORT" data "$DATA" 2> "$WORK/upload.err"
[ -s "$WORK/upload.err" ] && { head "$WORK/upload.err"; fail "uploads failed"; }
pass "uploaded $(find "$DATA" -type f | wc -l) objects"

export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
S3OPTS=(--s3-endpoint "http://127.0.0.1:$PORT" --s3-path-style)
"$TIERFS" index build s3://data --index "$WORK/idx" "${S3OPTS[@]}" > "$WORK/build.log" || fail "index build"
grep -q "2504 files" "$WORK/build.log" || fail "expected 2504 files: $(cat "$WORK/build.log")"
pass "index build listed every key across $(ls "$DATA/train" | wc -l) prefixes (pagination past 1,000)"
# The flat listing (the default for S3) and the per-directory walk give the same tree.
"$TIERFS" index build s3://data --index "$WORK/idx-flat" --list-mode flat --write-manifest "$WORK/flat.txt" "${S3OPTS[@]}" > /dev/null || fail "flat build"
"$TIERFS" index build s3://data --index "$WORK/idx-tree" --list-mode tree --write-manifest "$WORK/tree.txt" "${S3OPTS[@]}" > /dev/null || fail "tree build"
cmp <(sort "$WORK/flat.txt") <(sort "$WORK/tree.txt") || fail "flat and per-directory listings differ"
[ "$(wc -l < "$WORK/flat.txt")" = 2504 ] || fail "flat listing: $(wc -l < "$WORK/flat.txt") files"
pass "flat listing (key ranges in parallel) = per-directory walk: 2504 files, same sizes and ETags"

mount_tierfs s3://data "$WORK/mnt" --index "$WORK/idx" --cache-dir "$WORK/cache" --cache-size 512M "${S3OPTS[@]}"
diff -r "$DATA" "$WORK/mnt" || fail "diff -r found differences"
pass "mount + diff -r clean"
# A ranged read in the middle of the big file.
cmp <(dd if="$DATA/big.bin" bs=4096 skip=1234 count=300 2>/dev/null) \
    <(dd if="$WORK/mnt/big.bin" bs=4096 skip=1234 count=300 2>/dev/null) || fail "ranged read differs"
pass "ranged read equal"
unmount_tierfs "$WORK/mnt"

# A published index in the bucket: publish to s3://, mount from s3://.../latest, no listing.
"$TIERFS" index publish --index "$WORK/idx" s3://data/_tierfs/ix "${S3OPTS[@]}" > "$WORK/pub.log" ||
  { cat "$WORK/pub.log"; fail "publish to s3:// failed"; }
"$TIERFS" index publish --index "$WORK/idx" s3://data/_tierfs/ix "${S3OPTS[@]}" | grep -q "already published" ||
  fail "publishing the same index to s3:// twice was not a no-op"
mount_tierfs s3://data "$WORK/mnt" --index s3://data/_tierfs/ix/latest --cache-dir "$WORK/cache-pub" \
  --cache-size 512M "${S3OPTS[@]}"
cmp "$DATA/big.bin" "$WORK/mnt/big.bin" || fail "big.bin differs through the published index"
[ "$(find "$WORK/mnt/train" -type f | wc -l)" = "$(find "$DATA/train" -type f | wc -l)" ] ||
  fail "the published index does not hold every file"
stat_field "$WORK/mnt" "['index']['url']" | grep -q '^s3://data/_tierfs/ix/latest$' || fail "stats do not name the index URL"
unmount_tierfs "$WORK/mnt"
pass "published index: publish to s3:// (twice: a no-op), mount from s3://data/_tierfs/ix/latest"

# A prefix as the root.
"$TIERFS" index build s3://data/odd%20names --index "$WORK/idx2" "${S3OPTS[@]}" >/dev/null 2>&1 ||
  "$TIERFS" index build "s3://data/odd names" --index "$WORK/idx2" "${S3OPTS[@]}" >/dev/null || fail "prefix index"
pass "a prefix can be the root"

# Wrong credentials: one clear line, nothing mounted; the secret never appears.
mkdir -p "$WORK/mnt2"
err=$(AWS_ACCESS_KEY_ID=NOT-A-KEY AWS_SECRET_ACCESS_KEY=PLANTED-SECRET-123 "$TIERFS" mount s3://data "$WORK/mnt2" \
      --cache-dir "$WORK/cache2" "${S3OPTS[@]}" 2>&1) && fail "mount with wrong credentials succeeded"
grep -q "access denied" <<<"$err" || fail "wrong credentials said: $err"
[ "$(echo "$err" | wc -l)" = 1 ] || fail "wrong credentials printed more than one line: $err"
grep -q "PLANTED-SECRET" <<<"$err" && fail "the secret appeared in the error"
is_mounted "$WORK/mnt2" && fail "wrong credentials left a mount"
pass "wrong credentials: $err"

# A planted secret (credentials file, session token) never appears in anything tierfs
# shows: its log at debug level, /proc/mounts, ps, stats, metrics, the index, the cache dir.
SECRET=PLANTED-SECRET-9f3a1c
TOKEN=PLANTED-TOKEN-77e2b0
printf '[default]\naws_access_key_id = S3RVER\naws_secret_access_key = %s\naws_session_token = %s\n' \
  "$SECRET" "$TOKEN" > "$WORK/creds"
MPORT=$(free_port)
mkdir -p "$WORK/mnt3"
MOUNTS+=("$WORK/mnt3")
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY "$TIERFS" mount s3://data "$WORK/mnt3" -f \
  --log-level debug --cache-dir "$WORK/cache3" --cache-size 256M --metrics "127.0.0.1:$MPORT" \
  --s3-credentials-file "$WORK/creds" "${S3OPTS[@]}" > "$WORK/fg.out" 2> "$WORK/fg.log" &
for _ in $(seq 150); do is_mounted "$WORK/mnt3" && break; sleep 0.1; done
is_mounted "$WORK/mnt3" || fail "mount with a credentials file failed: $(tail -3 "$WORK/fg.log")"
cmp "$DATA/big.bin" "$WORK/mnt3/big.bin" || fail "credentials-file mount: wrong bytes"
cat "$WORK/mnt3/nope" 2> /dev/null || true
{
  cat "$WORK/fg.out" "$WORK/fg.log" /proc/mounts
  ps -eo args
  stats_json "$WORK/mnt3"
  "$TIERFS" stats "$WORK/mnt3"
  curl -sf "http://127.0.0.1:$MPORT/metrics"
  "$TIERFS" index stat --index "$WORK/cache3/index" --json
  cat /proc/$(pgrep -f "tierfs mount s3://data $WORK/mnt3")/cmdline | tr '\0' ' '
} > "$WORK/everything.txt" 2>&1
[ "$(wc -c < "$WORK/everything.txt")" -gt 2000 ] || fail "collected too little output to judge"
grep -q "debug\|DEBUG" "$WORK/fg.log" || fail "the log has no debug lines: $(head -3 "$WORK/fg.log")"
grep -c "" "$WORK/everything.txt" > /dev/null
if grep -q -e "$SECRET" -e "$TOKEN" "$WORK/everything.txt"; then fail "a planted secret leaked: $(grep -e "$SECRET" -e "$TOKEN" "$WORK/everything.txt" | head -2)"; fi
if grep -rq -e "$SECRET" -e "$TOKEN" "$WORK/cache3"; then fail "a planted secret is in the cache dir"; fi
"$TIERFS" unmount "$WORK/mnt3"
pass "planted secret and token: absent from debug log, /proc/mounts, ps, stats, metrics, index and cache dir"

# Through a cluster cache (--s3-through-proxy): signed reads are cached by host, path and
# slice only, so a second node's read is a hit; no credential reaches the cache's disk
# or log.
source "$SERVERS/nginx-cache.sh"
CPORT=$(free_port)
start_nginx_cache 127.0.0.7 "$CPORT" "$WORK/s3cache" || fail "cache did not start"
for n in 1 2; do
  mkdir -p "$WORK/mnt-c$n"; MOUNTS+=("$WORK/mnt-c$n")
  env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY "$TIERFS" mount s3://data "$WORK/mnt-c$n" \
    --index "$WORK/idx" --cache-dir "$WORK/cache-c$n" --ram-size 0 --cache-size 0 \
    --s3-credentials-file "$WORK/creds" "${S3OPTS[@]}" \
    --http-proxy "http://127.0.0.7:$CPORT" --s3-through-proxy || fail "mount through a cache failed"
  cmp "$DATA/big.bin" "$WORK/mnt-c$n/big.bin" || { tail -n 5 "$WORK/s3cache/access.log"; tail -n 5 "$WORK/s3cache/error.log"; fail "S3 through a cache: wrong bytes (node $n)"; }
done
hits=$(grep -c ' HIT ' "$WORK/s3cache/access.log" || true)
[ "$hits" -ge 24 ] || fail "the second node's 24 blocks were not cache hits ($hits hits)"
[ -n "$(ls -A "$WORK/s3cache/cache")" ] || fail "the cache kept nothing"
if grep -rqa -e "$SECRET" -e "$TOKEN" -e "AWS4-HMAC" "$WORK/s3cache/cache" "$WORK/s3cache"/*.log; then
  fail "a credential or signature is in the cache's files or logs"
fi
for n in 1 2; do "$TIERFS" unmount "$WORK/mnt-c$n"; done
stop_nginx_cache "$WORK/s3cache"
pass "S3 through a cache (--s3-through-proxy): second node all hits ($hits), no credential in the cache's files or logs"

# Packed data sets on S3 (--archives): a tar and a zip under a prefix, indexed with ranged
# GETs, published in the bucket; a node mounting the published index serves the members
# without opening an archive to list it.
PACKED=$WORK/packed EXTRACTED=$WORK/packed-x
mkdir -p "$PACKED/shards" "$EXTRACTED"
(cd "$DATA" && tar -cf "$PACKED/shards/train.tar" train/class0000 && zip -qr -n .bin "$PACKED/shards/odd.zip" "odd names") ||
  fail "cannot pack"
(cd "$EXTRACTED" && tar -xf "$PACKED/shards/train.tar" && unzip -q "$PACKED/shards/odd.zip") || fail "cannot unpack"
s3_upload "http://127.0.0.1:$PORT" data "$PACKED" 2> "$WORK/upload2.err"
[ -s "$WORK/upload2.err" ] && { head "$WORK/upload2.err"; fail "uploads failed"; }
"$TIERFS" index build s3://data/shards --index "$WORK/idx-packed" --archives tar,zip "${S3OPTS[@]}" |
  grep -q "2 archives opened" || fail "index build of s3://data/shards did not open both archives"
"$TIERFS" index publish --index "$WORK/idx-packed" s3://data/_tierfs/packed "${S3OPTS[@]}" > /dev/null ||
  fail "publish of the packed index failed"
mount_tierfs s3://data/shards "$WORK/mnt" --index s3://data/_tierfs/packed/latest --cache-dir "$WORK/cache-packed" \
  --cache-size 256M "${S3OPTS[@]}"
diff -r "$EXTRACTED/train" "$WORK/mnt/train.tar/train" && diff -r "$EXTRACTED/odd names" "$WORK/mnt/odd.zip/odd names" ||
  fail "members on S3 differ from tar -x / unzip"
unmount_tierfs "$WORK/mnt"
pass "S3: a tar and a zip indexed with --archives, published, members equal tar -x / unzip"
