#!/usr/bin/env bash
# Several sources in one mount (--source PATH=URL, [[source]] tables, a Fluid Dataset's
# mounts): apache autoindex serving two trees, a strict S3 and a local tree, each under its
# path; bytes equal the sources; reading or warming one source asks nothing of the others
# (per-source counters); a published namespace index follows a new revision of one source
# leaving the other's inodes and cached blocks alone; bad paths are one line.
source "$(dirname "$0")/lib.sh"
source "$SERVERS/apache.sh"
need_fuse

DATA=$WORK/data
"$TOOLS/gen-dataset" "$DATA/spark" --files 30 --file-size 20000 >/dev/null
"$TOOLS/gen-dataset" "$DATA/hbase" --files 20 --file-size 5000 >/dev/null
mkdir -p "$WORK/local/sub" && echo local > "$WORK/local/sub/f"
chmod -R a+rX "$WORK"
APACHE=$WORK/apache; PORT=$(free_port)
trap 'stop_apache "$APACHE"; cleanup' EXIT  # a failing check must not leave apache running
start_apache "$DATA" "$APACHE" "$PORT" || fail "apache did not start"
URL=http://127.0.0.1:$PORT

MNT=$WORK/mnt
mkdir -p "$MNT"
MOUNTS+=("$MNT")
"$TIERFS" mount --source "/spark=$URL/spark/" --source "/apache/hbase=$URL/hbase/" \
  --source "/local=$WORK/local" "$MNT" --cache-dir "$WORK/cache" --cache-size 256M ||
  fail "mount of three sources failed"
[ "$(ls "$MNT")" = "$(printf 'apache\nlocal\nspark')" ] || fail "root lists $(ls "$MNT" | xargs)"
src_field() {  # src_field PATH FIELD [MOUNTPOINT]: a per-source figure of the mount's stats
  stats_json "${3:-$MNT}" | python3 -c "import json,sys; d=json.load(sys.stdin)
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

# --- Fluid: config.json as Fluid's ThinRuntime writes it, run by `tierfs fluid-mount`. ---
# A strict S3 (it refuses every key but AKSTATIC) next to apache; the environment holds a
# key it refuses, so the S3 source reads only with its own mount's secret.
S3PORT=$(free_port)
python3 "$SERVERS/fake-aws" --port "$S3PORT" --data "$DATA/hbase" &
SERVER_PIDS+=($!)
wait_http "http://127.0.0.1:$S3PORT/__stats"
mkdir -p "$WORK/secrets/s3"
echo AKSTATIC > "$WORK/secrets/s3/id"; echo static > "$WORK/secrets/s3/key"
TARGET=$WORK/fluid/thin-fuse
FLUID_PID=
fluid_mount() {  # fluid_mount MOUNTS_JSON: writes config.json, mounts it at $TARGET
  cat > "$WORK/config.json" <<JSON
{"mounts":$1,"targetPath":"$TARGET","runtimeOptions":{"cache-dir":"$WORK/fluid-cache","cache-size":"256M","ram-size":"32M"},"accessModes":["ReadOnlyMany"]}
JSON
  MOUNTS+=("$TARGET")
  AWS_ACCESS_KEY_ID=AKREFUSED AWS_SECRET_ACCESS_KEY=refused \
    "$TIERFS" fluid-mount "$WORK/config.json" > "$WORK/fluid.log" 2>&1 &
  FLUID_PID=$!
  for _ in $(seq 100); do is_mounted "$TARGET" && return 0; sleep 0.1; done
  cat "$WORK/fluid.log"; fail "fluid-mount did not mount $1"
}
fluid_unmount() {
  kill -TERM "$FLUID_PID"
  local rc=0; wait "$FLUID_PID" || rc=$?
  [ $rc = 0 ] || { cat "$WORK/fluid.log"; fail "fluid-mount exited $rc on SIGTERM"; }
  ! is_mounted "$TARGET" || fail "SIGTERM left $TARGET mounted"
}

# The lab's Dataset: one mount, no path: the tree is at /spark, as under every runtime.
fluid_mount '[{"mountPoint":"'"$URL"'/spark/","name":"spark"}]'
[ "$(ls "$TARGET")" = spark ] || fail "the Dataset's root lists $(ls "$TARGET" | xargs)"
diff -r "$DATA/spark" "$TARGET/spark" || fail "fluid /spark differs from its source"
fluid_unmount
pass "fluid: a mount without path is served at /spark, bytes equal"

fluid_mount '[{"mountPoint":"'"$URL"'/spark/","name":"spark","path":"/"}]'
diff -r "$DATA/spark" "$TARGET" || fail "fluid path / differs from its source"
fluid_unmount
pass "fluid: path \"/\" serves the source at the root"

fluid_mount '[{"mountPoint":"'"$URL"'/spark/","name":"spark"},
  {"mountPoint":"s3://data/","name":"hbase","path":"/apache/hbase",
   "options":{"s3-endpoint":"http://127.0.0.1:'"$S3PORT"'","s3-path-style":"true","s3-region":"us-east-1",
              "aws-access-key-id":"'"$WORK"'/secrets/s3/id","aws-secret-access-key":"'"$WORK"'/secrets/s3/key"}},
  {"mountPoint":"local://'"$WORK"'/local","name":"local"}]'
grep -q AKSTATIC "$WORK/fluid.log" && fail "the secret reached the log"
[ "$(ls "$TARGET")" = "$(printf 'apache\nlocal\nspark')" ] || fail "the Dataset's root lists $(ls "$TARGET" | xargs)"
s3_before=$(src_field /apache/hbase remote_requests "$TARGET")
local_before=$(src_field /local remote_requests "$TARGET")
"$TIERFS" warm "$TARGET" /spark > /dev/null || fail "warm of /spark failed"
[ "$(src_field /apache/hbase remote_requests "$TARGET")" = "$s3_before" ] || fail "warming /spark asked the S3 source"
[ "$(src_field /local remote_requests "$TARGET")" = "$local_before" ] || fail "warming /spark asked the local source"
[ "$(src_field /spark cached_bytes "$TARGET")" -ge 600000 ] || fail "warm left /spark uncached"
pass "fluid: warm of /spark (a Dataset path) fetched nothing of the other sources"
diff -r "$DATA/spark" "$TARGET/spark" || fail "fluid /spark differs"
diff -r "$DATA/hbase" "$TARGET/apache/hbase" || fail "fluid S3 /apache/hbase differs"
diff -r "$WORK/local" "$TARGET/local" || fail "fluid /local differs"
keys=$(curl -s "http://127.0.0.1:$S3PORT/__stats" | python3 -c "import json,sys; print(' '.join(json.load(sys.stdin)['keys_used']))")
[ "$keys" = AKSTATIC ] || fail "the S3 source signed with '$keys', not its mount's secret"
fluid_unmount
pass "fluid: http, S3 (its own secret, the environment's key refused) and local mounts, bytes equal"

fluid_refuses() {  # fluid_refuses PATTERN MOUNTS_JSON: one line, non-zero, nothing mounted
  local err rc=0
  printf '{"mounts":%s,"targetPath":"%s"}' "$2" "$TARGET" > "$WORK/bad.json"
  err=$(timeout 20 "$TIERFS" fluid-mount "$WORK/bad.json" 2>&1) || rc=$?
  [ $rc -ne 0 ] && [ $rc -lt 124 ] || fail "fluid-mount of $2 exited $rc"
  [ "$(grep -c . <<<"$err")" = 1 ] || fail "fluid-mount of $2 printed: $err"
  grep -q "$1" <<<"$err" || fail "fluid-mount of $2: '$err' does not match '$1'"
  if is_mounted "$TARGET"; then fail "fluid-mount of $2 left a mount behind"; fi
  pass "fluid refuses: $err"
}
fluid_refuses "two mounts are named 'a'" '[{"mountPoint":"'"$URL"'/spark/","name":"a"},{"mountPoint":"'"$URL"'/hbase/","name":"a","path":"/b"}]'
fluid_refuses "two sources have the path /a" '[{"mountPoint":"'"$URL"'/spark/","name":"a"},{"mountPoint":"'"$URL"'/hbase/","name":"b","path":"/a"}]'
fluid_refuses "may not contain '..'" '[{"mountPoint":"'"$URL"'/spark/","name":"a","path":"/x/../y"}]'
fluid_refuses "only valid for a single source" '[{"mountPoint":"'"$URL"'/spark/","name":"a"},{"mountPoint":"'"$URL"'/hbase/","name":"b","path":"/"}]'
fluid_refuses "inside source /a" '[{"mountPoint":"'"$URL"'/spark/","name":"a"},{"mountPoint":"'"$URL"'/hbase/","name":"b","path":"/a/b"}]'

# --- A published namespace index: a new revision of one source, followed live. ---
PUB=$WORK/pub
mkdir -p "$WORK/ns/a" "$WORK/ns/b"
"$TOOLS/gen-dataset" "$WORK/ns/a" --files 10 --file-size 30000 >/dev/null
"$TOOLS/gen-dataset" "$WORK/ns/b" --files 10 --file-size 30000 >/dev/null
NS=(--source "/a=$WORK/ns/a" --source "/b=$WORK/ns/b")
publish() {
  "$TIERFS" index build "${NS[@]}" --index "$WORK/nsidx$1" > /dev/null || fail "index build $1 failed"
  "$TIERFS" index publish --index "$WORK/nsidx$1" "$PUB" > /dev/null || fail "publish $1 failed"
}
publish 1
"$TIERFS" mount "${NS[@]}" "$MNT" --index "$PUB/latest" --index-refresh 1 --cache-dir "$WORK/nscache" \
  --cache-size 256M || fail "mount of the published namespace failed"
diff -r "$WORK/ns" "$MNT" || fail "the published namespace differs from its sources"
inodes_b=$(find "$MNT/b" -printf '%i %p\n' | sort)
cached_b=$(src_field /b cached_bytes)
requests_b=$(src_field /b remote_requests)
echo changed > "$WORK/ns/a/new-file"
publish 2
for _ in $(seq 100); do [ -f "$MNT/a/new-file" ] && break; sleep 0.1; done
[ "$(cat "$MNT/a/new-file" 2>/dev/null)" = changed ] || fail "the new revision of /a was not followed"
[ "$(find "$MNT/b" -printf '%i %p\n' | sort)" = "$inodes_b" ] || fail "/b's inodes changed with /a's revision"
[ "$(src_field /b cached_bytes)" = "$cached_b" ] || fail "/b's cached bytes changed: $cached_b -> $(src_field /b cached_bytes)"
sync; echo 3 > /proc/sys/vm/drop_caches
diff -r "$WORK/ns/b" "$MNT/b" > /dev/null || fail "/b differs after /a's revision"
[ "$(src_field /b remote_requests)" = "$requests_b" ] || fail "/b went remote after /a's revision"
pass "published namespace: /a's new revision followed live; /b's $(wc -l <<<"$inodes_b") inodes, $cached_b cached bytes kept, re-read with 0 requests"
unmount_tierfs "$MNT"
