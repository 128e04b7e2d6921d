#!/usr/bin/env bash
# Several sources in one mount (--source PATH=URL, [[source]] tables): apache autoindex
# serving two trees and a local tree, each under its path; bytes equal the sources; reading
# one source asks nothing of the others (per-source counters); bad paths are one line.
source "$(dirname "$0")/lib.sh"
source "$SERVERS/apache.sh"
need_fuse

DATA=$WORK/data
"$TOOLS/gen-dataset" "$DATA/spark" --files 30 --file-size 20000 >/dev/null
"$TOOLS/gen-dataset" "$DATA/hbase" --files 20 --file-size 5000 >/dev/null
mkdir -p "$WORK/local/sub" && echo local > "$WORK/local/sub/f"
chmod -R a+rX "$WORK"
APACHE=$WORK/apache; PORT=$(free_port)
start_apache "$DATA" "$APACHE" "$PORT" || fail "apache did not start"
URL=http://127.0.0.1:$PORT

MNT=$WORK/mnt
mkdir -p "$MNT"
MOUNTS+=("$MNT")
"$TIERFS" mount --source "/spark=$URL/spark/" --source "/apache/hbase=$URL/hbase/" \
  --source "/local=$WORK/local" "$MNT" --cache-dir "$WORK/cache" --cache-size 256M ||
  fail "mount of three sources failed"
[ "$(ls "$MNT")" = "$(printf 'apache\nlocal\nspark')" ] || fail "root lists $(ls "$MNT" | xargs)"
src_field() {  # src_field PATH FIELD: a per-source figure of the mount's stats
  stats_json "$MNT" | python3 -c "import json,sys; d=json.load(sys.stdin)
print([s for s in d['sources'] if s['path']==sys.argv[1]][0][sys.argv[2]])" "$1" "$2"
}
hbase_before=$(src_field /apache/hbase remote_requests)
diff -r "$DATA/spark" "$MNT/spark" || fail "/spark differs from its source"
[ "$(src_field /apache/hbase remote_requests)" = "$hbase_before" ] ||
  fail "reading /spark sent requests to /apache/hbase"
pass "reading /spark asked /apache/hbase nothing"
diff -r "$DATA/hbase" "$MNT/apache/hbase" || fail "/apache/hbase differs from its source"
diff -r "$WORK/local" "$MNT/local" || fail "/local differs from its source"
pass "three sources under their paths, bytes equal"
[ "$(src_field /spark files)" = 30 ] || fail "/spark counts $(src_field /spark files) files"
[ "$(src_field /spark cached_bytes)" -ge 600000 ] || fail "/spark cached $(src_field /spark cached_bytes) bytes"
before=$(src_field /spark remote_requests)
sync; echo 3 > /proc/sys/vm/drop_caches
diff -r "$DATA/spark" "$MNT/spark" >/dev/null || fail "/spark differs on the second read"
[ "$(src_field /spark remote_requests)" = "$before" ] || fail "the second read of /spark went remote"
pass "per-source stats: 30 files, cached, second read sent 0 requests"
unmount_tierfs "$MNT"

# The same namespace from a config file of [[source]] tables (as fstab reaches it).
cat > "$WORK/ns.toml" <<TOML
cache-dir = "$WORK/cache"
cache-size = "256M"
[[source]]
path = "/spark"
url = "$URL/spark/"
timeout = 20000
[[source]]
path = "/apache/hbase"
url = "$URL/hbase/"
TOML
"$TIERFS" mount --config "$WORK/ns.toml" "$MNT" || fail "mount --config with [[source]] failed"
diff -r "$DATA/hbase" "$MNT/apache/hbase" || fail "[[source]] mount differs"
pass "[[source]] tables mount the same namespace"
unmount_tierfs "$MNT"

expect_error() {  # expect_error PATTERN ARGS...: one line, non-zero, nothing mounted
  local pattern=$1 err rc=0
  shift
  err=$(timeout 20 "$TIERFS" mount "$@" "$MNT" 2>&1 >/dev/null) || rc=$?
  [ $rc -ne 0 ] && [ $rc -lt 124 ] || fail "mount $* exited $rc"
  [ "$(grep -c . <<<"$err")" = 1 ] || fail "mount $* printed: $err"
  grep -qE "$pattern" <<<"$err" || fail "mount $*: '$err' does not match /$pattern/"
  if is_mounted "$MNT"; then fail "mount $* left a mount behind"; fi
  pass "$* -> $err"
}
expect_error "two sources have the path /a" --source "/a=$WORK/local" --source "/a/=$DATA/spark"
expect_error "inside source /a" --source "/a=$WORK/local" --source "/a/b=$DATA/spark"
expect_error "may not contain '..'" --source "/a/../b=$WORK/local" --source "/c=$DATA/spark"
expect_error "only valid for a single source" --source "/=$WORK/local" --source "/c=$DATA/spark"
expect_error "whole mount, not to one source" --config <(printf '[[source]]\npath = "/a"\nurl = "%s"\ncache-size = "1G"\n' "$WORK/local")
stop_apache "$APACHE"
