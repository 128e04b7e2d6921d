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

mount_tierfs s3://data "$WORK/mnt" --index "$WORK/idx" --cache-dir "$WORK/cache" --cache-size 512M "${S3OPTS[@]}"
diff -r "$DATA" "$WORK/mnt" || fail "diff -r found differences"
pass "mount + diff -r clean"
# A ranged read in the middle of the big file.
cmp <(dd if="$DATA/big.bin" bs=4096 skip=1234 count=300 2>/dev/null) \
    <(dd if="$WORK/mnt/big.bin" bs=4096 skip=1234 count=300 2>/dev/null) || fail "ranged read differs"
pass "ranged read equal"
unmount_tierfs "$WORK/mnt"

# A prefix as the root.
"$TIERFS" index build s3://data/odd%20names --index "$WORK/idx2" "${S3OPTS[@]}" >/dev/null 2>&1 ||
  "$TIERFS" index build "s3://data/odd names" --index "$WORK/idx2" "${S3OPTS[@]}" >/dev/null || fail "prefix index"
pass "a prefix can be the root"

# Wrong credentials: one clear line, nothing mounted; the secret never appears.
mkdir -p "$WORK/mnt2"
err=$(AWS_ACCESS_KEY_ID=NOT-A-KEY AWS_SECRET_ACCESS_KEY=PLANTED-SECRET-123 "$TIERFS" mount s3://data "$WORK/mnt2" \
      --cache-dir "$WORK/cache2" "${S3OPTS[@]}" 2>&1) && fail "mount with wrong credentials succeeded"
echo "$err" | grep -q "access denied" || fail "wrong credentials said: $err"
[ "$(echo "$err" | wc -l)" = 1 ] || fail "wrong credentials printed more than one line: $err"
echo "$err" | grep -q "PLANTED-SECRET" && fail "the secret appeared in the error"
is_mounted "$WORK/mnt2" && fail "wrong credentials left a mount"
pass "wrong credentials: $err"
