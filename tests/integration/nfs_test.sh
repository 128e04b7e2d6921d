#!/usr/bin/env bash
# nfs:// through libnfs against nfs-ganesha (NFSv4, loopback): index build + mount +
# diff -r over nested dirs, unicode names and a 1 GiB file; server stopped mid-read →
# EIO, restarted → reads resume; clear errors for a missing export and a down server.
source "$(dirname "$0")/lib.sh"
need_fuse
source "$SERVERS/ganesha.sh"
command -v ganesha.nfsd >/dev/null || { echo "SKIP: nfs-ganesha is not installed"; exit 77; }
pgrep -x ganesha.nfsd >/dev/null && { echo "SKIP: another ganesha.nfsd is running"; exit 77; }

DATA=$WORK/data
"$TOOLS/gen-dataset" "$DATA" --files 500 --file-size 20000 --per-dir 50 --big "${NFS_BIG_MIB:-1024}" --tricky
find "$DATA" -type l -delete  # symlinks are covered by the local-mount test
mkdir -p "$DATA/late"  # read only after the server is stopped
for i in 1 2 3; do head -c 300000 /dev/urandom > "$DATA/late/file$i"; done
chmod -R a+rX "$WORK"
GAN=$WORK/ganesha
start_ganesha "$DATA" "$GAN" || fail "ganesha did not start"
trap 'stop_ganesha "$GAN"; cleanup' EXIT
URL="nfs://127.0.0.1/data?version=4"

"$TIERFS" index build "$URL" --index "$WORK/idx" > "$WORK/build.log" || fail "index build: $(cat "$WORK/build.log")"
pass "index build: $(cat "$WORK/build.log")"
MNT=$WORK/mnt
mount_tierfs "$URL" "$MNT" --index "$WORK/idx" --cache-dir "$WORK/cache" --cache-size 256M --ram-size 128M \
  --timeout 3000 --retries 2
diff -r -x late "$DATA" "$MNT" || fail "diff -r found differences"
pass "mount + diff -r clean (nested dirs, unicode names, ${NFS_BIG_MIB:-1024} MiB file)"

# Server stopped mid-read: EIO (not a hang, not wrong bytes); restarted: reads resume.
stop_ganesha "$GAN"
out=$(cat "$MNT/late/file1" 2>&1 >/dev/null) && fail "read with the server down succeeded"
grep -q "Input/output error" <<<"$out" || fail "server down said: $out"
pass "server down: EIO"
start_ganesha "$DATA" "$GAN" || fail "ganesha did not restart"
for i in 1 2 3; do cmp "$DATA/late/file$i" "$MNT/late/file$i" || fail "after restart: late/file$i differs"; done
pass "server back: reads resume with correct bytes"
unmount_tierfs "$MNT"

# Clear errors at index build.
err=$("$TIERFS" index build "nfs://127.0.0.1/no-such-export?version=4" --index "$WORK/idx2" 2>&1) && fail "missing export indexed"
grep -qi "does not exist\|no such\|cannot mount" <<<"$err" || fail "missing export said: $err"
pass "missing export: $err"
stop_ganesha "$GAN"
err=$("$TIERFS" index build "$URL" --index "$WORK/idx3" --timeout 2000 2>&1) && fail "down server indexed"
pass "server down at index build: $err"
