#!/usr/bin/env bash
# Hostile remotes: a listing full of names that try to leave the tree ("../", "/", NUL,
# ".", "..", 4,096 bytes), 100,000 entries in one directory, and redirects to another
# host. Nothing escapes the mount's tree or the source URL; each skip is a warning.
source "$(dirname "$0")/lib.sh"
need_fuse

PORT=$(free_port) TRAP=$(free_port)
URL=http://127.0.0.1:$PORT
"$SERVERS/hostile-server" "$PORT" "$TRAP" &
SERVER_PIDS+=($!)
wait_http "$URL/"
MNT=$WORK/mnt

"$TIERFS" index build "$URL/names/" --index "$WORK/names.idx" > "$WORK/names.out" 2> "$WORK/names.err" ||
  fail "index build of hostile names failed: $(cat "$WORK/names.err")"
grep -q "3 files, 2 dirs.*(8 unsafe entries skipped)" "$WORK/names.out" || fail "build said: $(cat "$WORK/names.out")"
[ "$(grep -c "skipping unsafe name" "$WORK/names.err")" -eq 8 ] || fail "expected 8 warnings: $(cat "$WORK/names.err")"
grep -q "nnnnnnnnnnnnnnnnnnnn" "$WORK/names.err" && fail "a hostile name was echoed into the log"
mount_tierfs "$URL/names/" "$MNT" --index "$WORK/names.idx" --cache-dir "$WORK/cache"
listing=$(cd "$MNT" && find . | sort | tr '\n' ' ')
[ "$listing" = ". ./good.txt ./ok-$(printf 'm%.0s' $(seq 251)) ./sub ./sub/inner.txt " ] || fail "tree: $listing"
[ "$(cat "$MNT/good.txt")" = good ] && [ "$(cat "$MNT/sub/inner.txt")" = in ] || fail "good files unreadable"
for bad in "../escape.txt" "escape.txt" "etc/passwd" "a" ".." ; do
  [ -e "$MNT/$bad" ] && [ "$bad" != ".." ] && fail "$bad is in the tree"
done
[ "$(stat -c %i "$MNT/..")" = "$(stat -c %i "$WORK")" ] || fail "'..' of the root is not the mountpoint's parent"
unmount_tierfs "$MNT"
pass "hostile names: 8 skipped with a warning each; the tree is exactly good.txt, a 254-byte name, sub/inner.txt"

start=$(date +%s)
"$TIERFS" index build "$URL/big/" --index "$WORK/big.idx" > "$WORK/big.out" 2>&1 || fail "100k build: $(tail -2 "$WORK/big.out")"
mount_tierfs "$URL/big/" "$MNT" --index "$WORK/big.idx" --cache-dir "$WORK/cache"
[ "$(ls -f "$MNT" | grep -c '^f')" -eq 100000 ] || fail "ls does not show 100,000 entries"
[ "$(cat "$MNT/f099999")" = x ] && [ "$(stat -c %s "$MNT/f050000")" = 1 ] || fail "entries unreadable"
unmount_tierfs "$MNT"
pass "100,000 entries in one directory: indexed, listed and read in $(( $(date +%s) - start ))s"

"$TIERFS" index build "$URL/redir/" --index "$WORK/redir.idx" > /dev/null 2>&1 || fail "redir build"
mount_tierfs "$URL/redir/" "$MNT" --index "$WORK/redir.idx" --cache-dir "$WORK/cache"
out=$(cat "$MNT/file.txt" 2>&1) && fail "a redirected file was read: $out"
grep -q "Input/output error" <<<"$out" || fail "redirected file said: $out"
[ "$(cat "$MNT/ok.txt")" = ok ] || fail "the mount stopped serving after a redirect"
err=$("$TIERFS" index build "$URL/redirdir/" --index "$WORK/rd.idx" 2>&1) && fail "redirected listing accepted"
grep -q "redirect not followed" <<<"$err" || fail "redirected listing said: $err"
[ "$(curl -sf "$URL/__trap")" = 0 ] || fail "a request reached the redirect target"
unmount_tierfs "$MNT"
pass "redirects to another host: file read is EIO, listing is one clear error, 0 requests left the source"
