#!/usr/bin/env bash
# Bad input: one clear line on stderr, a non-zero exit, nothing left mounted.
source "$(dirname "$0")/lib.sh"
need_fuse

SRC=$WORK/src
"$TOOLS/gen-dataset" "$SRC" --files 20 --file-size 1000
"$TIERFS" index build "$SRC" --index "$WORK/index" >/dev/null
mkdir -p "$WORK/other" "$WORK/mnt"
echo other > "$WORK/other/x"
"$TIERFS" index build "$WORK/other" --index "$WORK/other-index" >/dev/null
echo "not a dir" > "$WORK/file"
mkdir -p "$WORK/junk-index" && echo junk > "$WORK/junk-index/CURRENT"

# expect_error PATTERN ARGS...: tierfs ARGS must fail with one stderr line matching PATTERN.
expect_error() {
  local pattern=$1
  shift
  local err rc=0
  err=$(timeout 20 "$TIERFS" "$@" 2>&1 >/dev/null) || rc=$?
  [ $rc -ne 0 ] || fail "tierfs $* exited 0"
  [ $rc -ne 124 ] || fail "tierfs $* hung"
  [ $rc -lt 128 ] || fail "tierfs $* crashed (exit $rc)"
  local lines
  lines=$(grep -c . <<<"$err" || true)
  [ "$lines" = 1 ] || fail "tierfs $* printed $lines lines: $err"
  grep -qE "$pattern" <<<"$err" || fail "tierfs $*: '$err' does not match /$pattern/"
  if grep -q " $WORK/mnt fuse" /proc/mounts; then fail "tierfs $* left a mount behind"; fi
  pass "$* -> $err"
}

expect_error "mountpoint .*No such file" mount "$SRC" "$WORK/missing" --cache-dir "$WORK/c"
expect_error "mountpoint .* is not a directory" mount "$SRC" "$WORK/file" --cache-dir "$WORK/c"
expect_error "cannot open source directory" mount "$WORK/nope" "$WORK/mnt" --cache-dir "$WORK/c"
expect_error "unknown source scheme 'gopher://'" mount "gopher://x/y" "$WORK/mnt" --cache-dir "$WORK/c"
expect_error "neither an absolute path nor a URL" mount "relative/dir" "$WORK/mnt" --cache-dir "$WORK/c"
expect_error "cannot open index" mount "$SRC" "$WORK/mnt" --index "$WORK/no-index" --cache-dir "$WORK/c"
expect_error "cannot open index|corrupt|not a tierfs index" mount "$SRC" "$WORK/mnt" --index "$WORK/junk-index" --cache-dir "$WORK/c"
expect_error "was built for .*other" mount "$SRC" "$WORK/mnt" --index "$WORK/other-index" --cache-dir "$WORK/c"
# Published indexes: a bad pointer, one for another source, a missing one, bad refresh values.
mkdir -p "$WORK/pub-bad" && echo "garbage {" > "$WORK/pub-bad/latest"
expect_error "not JSON" mount "$SRC" "$WORK/mnt" --index "$WORK/pub-bad/latest" --cache-dir "$WORK/c-pub"
"$TIERFS" index publish --index "$WORK/other-index" "$WORK/pub-other" > /dev/null
expect_error "was published for .*other" mount "$SRC" "$WORK/mnt" --index "$WORK/pub-other" --cache-dir "$WORK/c-pub"
expect_error "Couldn't connect|unreachable" mount "$SRC" "$WORK/mnt" --index "http://127.0.0.1:1/pub/latest" --cache-dir "$WORK/c-pub" --retries 1
expect_error "index-refresh" mount "$SRC" "$WORK/mnt" --index-refresh -5 --cache-dir "$WORK/c"
expect_error "index_refresh: 9999999 not in range" mount "$SRC" "$WORK/mnt" -o index_refresh=9999999 --cache-dir "$WORK/c"
expect_error "index_refresh: 'x' is not a number" mount "$SRC" "$WORK/mnt" -o index_refresh=x --cache-dir "$WORK/c"
expect_error "publish to a local directory .* or s3://" index publish --index "$WORK/index" http://example.org/pub
expect_error "cannot open index" index publish --index "$WORK/no-index" "$WORK/pub-x"
expect_error "list-mode" index build "$SRC" --index "$WORK/idx-lm" --list-mode sideways
expect_error "cannot be listed flat" index build "$SRC" --index "$WORK/idx-lm" --list-mode flat
expect_error "not a tierfs mount" index refresh "$WORK/src"
expect_error "cache dir .* is not a directory" mount "$SRC" "$WORK/mnt" --cache-dir "$WORK/file"
expect_error "cannot create cache dir" mount "$SRC" "$WORK/mnt" --cache-dir "$WORK/file/sub"
expect_error "invalid size 'lots'" mount "$SRC" "$WORK/mnt" --ram-size lots
expect_error "invalid size" mount "$SRC" "$WORK/mnt" -o cache_size=-5
expect_error "block-size" mount "$SRC" "$WORK/mnt" --block-size 1k --cache-dir "$WORK/c"
expect_error "unknown option|invalid mount options" mount "$SRC" "$WORK/mnt" -o no_such_option --cache-dir "$WORK/c" -f
expect_error "threads.*1024" mount "$SRC" "$WORK/mnt" --threads 5000 --cache-dir "$WORK/c"
expect_error "option threads: 99999999999 not in range 0 to 1024" mount "$SRC" "$WORK/mnt" -o threads=99999999999 --cache-dir "$WORK/c"
expect_error "option threads: 'x4' is not a number" mount "$SRC" "$WORK/mnt" -o threads=x4 --cache-dir "$WORK/c"
expect_error "spin.*100000" mount "$SRC" "$WORK/mnt" --spin-us 200000 --cache-dir "$WORK/c"
expect_error "option spin_us: 100001 not in range 0 to 100000" mount "$SRC" "$WORK/mnt" -o spin_us=100001 --cache-dir "$WORK/c"
# The cluster-tier options, in all three spellings (flag, -o, config file): one validation.
printf 'http-proxy = "http://c1:3128|ftp://c2"\n' > "$WORK/bad-proxy.toml"
printf 'on-unreachable = "maybe"\n' > "$WORK/bad-unreachable.toml"
expect_error "http-proxy: 'ftp://c2' is not http://HOST" mount "$SRC" "$WORK/mnt" --http-proxy "http://c1:3128|ftp://c2" --cache-dir "$WORK/c"
expect_error "http-proxy: 'ftp://c2' is not http://HOST" mount "$SRC" "$WORK/mnt" -o "http_proxy=http://c1:3128|ftp://c2" --cache-dir "$WORK/c"
expect_error "http-proxy: 'ftp://c2' is not http://HOST" mount "$SRC" "$WORK/mnt" --config "$WORK/bad-proxy.toml" --cache-dir "$WORK/c"
expect_error "on-unreachable: must be fail or wait, not 'maybe'" mount "$SRC" "$WORK/mnt" --on-unreachable maybe --cache-dir "$WORK/c"
expect_error "on_unreachable: must be fail or wait, not 'maybe'" mount "$SRC" "$WORK/mnt" -o on_unreachable=maybe --cache-dir "$WORK/c"
expect_error "on-unreachable: must be fail or wait, not 'maybe'" mount "$SRC" "$WORK/mnt" --config "$WORK/bad-unreachable.toml" --cache-dir "$WORK/c"
expect_error "a flag takes no value" mount "$SRC" "$WORK/mnt" --fuse-uring=maybe --cache-dir "$WORK/c"
expect_error "http-proxy-refresh.*not in range 1 to 86400" mount "$SRC" "$WORK/mnt" --http-proxy-refresh 0 --cache-dir "$WORK/c"
expect_error "http_proxy_refresh: 0 not in range 1 to 86400" mount "$SRC" "$WORK/mnt" -o http_proxy_refresh=0 --cache-dir "$WORK/c"
expect_error "option retries: 'many' is not a number" mount "$SRC" "$WORK/mnt" -o retries=many --cache-dir "$WORK/c"
expect_error "log-level: must be trace, .*, not 'loud'" mount "$SRC" "$WORK/mnt" --log-level loud --cache-dir "$WORK/c"
expect_error "not a tierfs index" index build "$SRC" --index "$WORK/other"
expect_error "cannot open index" index stat --index "$WORK/nope"
expect_error "required|Expected" mount "$SRC"
expect_error "frobnicate|not expected|extra|subcommand" frobnicate

# Already a tierfs mount; then a cache dir in use by another daemon.
mount_tierfs "$SRC" "$WORK/mnt" --index "$WORK/index" --cache-dir "$WORK/c1"
expect_error_mounted() {
  local pattern=$1
  shift
  local err rc=0
  err=$(timeout 20 "$TIERFS" "$@" 2>&1 >/dev/null) || rc=$?
  [ $rc -ne 0 ] && [ $rc -lt 124 ] || fail "tierfs $* exit $rc"
  grep -qE "$pattern" <<<"$err" || fail "tierfs $*: '$err' does not match /$pattern/"
  pass "$* -> $err"
}
expect_error_mounted "already a tierfs mount" mount "$SRC" "$WORK/mnt" --cache-dir "$WORK/c2"
mkdir -p "$WORK/mnt2"
expect_error_mounted "in use by another tierfs process" mount "$SRC" "$WORK/mnt2" --cache-dir "$WORK/c1"
grep -q " $WORK/mnt2 fuse" /proc/mounts && fail "mnt2 was mounted"
[ "$(cat "$WORK/mnt/train/class0000/img0000000.jpg" | md5sum)" = "$(md5sum < "$SRC/train/class0000/img0000000.jpg")" ] || fail "the first mount stopped serving"
[ "$(stat -c %a "$WORK/c1")" = "700" ] || fail "cache dir is not mode 0700"
pass "first mount still serves; cache dir is 0700"
