#!/usr/bin/env bash
# Disk faults under a live mount: the cache filesystem fills up (ENOSPC on a small tmpfs),
# cache segment files become unreadable (truncated under the daemon), the cache dir is
# removed while mounted, and a corrupted or truncated index. Reads keep returning the
# source's bytes (from RAM or the remote), the counters show the degradation, and a bad
# index is rebuilt or refused in one line, never a crash.
source "$(dirname "$0")/lib.sh"
need_fuse

SRC=$WORK/src MNT=$WORK/mnt
"$TOOLS/gen-dataset" "$SRC" --files 300 --file-size 60000 --per-dir 100 --big 24
find "$SRC" -type f | sed "s|^$SRC/||" | sort > "$WORK/files"
( cd "$SRC" && xargs -d '\n' sha256sum < "$WORK/files" ) > "$WORK/sums"
check_sums() { ( cd "$MNT" && sha256sum --quiet -c "$WORK/sums" ) || fail "$1: bytes differ from the source"; }
"$TIERFS" index build "$SRC" --index "$WORK/index" > /dev/null

# ENOSPC: a 40 MiB tmpfs under a cache that believes it has 256 MiB (16 MiB segments),
# data set ~42 MiB: two segments fit, the third hits ENOSPC.
SMALL=$WORK/small
mkdir -p "$SMALL"
mount -t tmpfs -o size=40m tmpfs "$SMALL" || fail "cannot mount a tmpfs"
trap 'umount -l "$SMALL" 2>/dev/null || true; cleanup' EXIT
mount_tierfs "$SRC" "$MNT" --index "$WORK/index" --cache-dir "$SMALL/cache" --cache-size 256M --ram-size 8M
check_sums "cache on a full tmpfs"
sync; echo 3 > /proc/sys/vm/drop_caches
check_sums "cache on a full tmpfs, second pass"
used=$(df -B1 --output=used "$SMALL" | tail -1)
nvme=$(stat_field "$MNT" "['tiers']['nvme']['used_bytes']")
cap=$(stat_field "$MNT" "['tiers']['nvme']['capacity_bytes']")
[ "$nvme" -gt 0 ] || fail "nothing cached on the tmpfs"
[ "$nvme" -le $((40 << 20)) ] || fail "nvme tier claims $nvme bytes on a 40 MiB tmpfs"
is_mounted "$MNT" || fail "mount died on ENOSPC"
pass "ENOSPC: all bytes correct twice; tmpfs holds $used bytes; nvme tier $nvme of $cap bytes (counters show what fit)"
# The daemon keeps files on the tmpfs open until it has flushed and exited: tierfs unmount
# waits for that (fusermount3 -u alone returns first, and the tmpfs would still be busy).
"$TIERFS" unmount "$MNT"
umount "$SMALL"

# Segment files truncated under a running daemon (root ignores chmod, so "unreadable"
# is data that is no longer there): every read falls back to the source.
CACHE=$WORK/cache
mount_tierfs "$SRC" "$MNT" --index "$WORK/index" --cache-dir "$CACHE" --cache-size 256M --ram-size 0
check_sums "filling the cache"
"$TIERFS" unmount "$MNT"
mount_tierfs "$SRC" "$MNT" --index "$WORK/index" --cache-dir "$CACHE" --cache-size 256M --ram-size 0
for seg in "$CACHE"/blocks/seg-*; do truncate -s 0 "$seg"; done
sync; echo 3 > /proc/sys/vm/drop_caches
before=$(stat_field "$MNT" "['remote_reads']")
check_sums "segments truncated under the daemon"
after=$(stat_field "$MNT" "['remote_reads']")
errors=$(stat_field "$MNT" "['tiers']['nvme']['errors']")
[ $((after - before)) -gt 0 ] || fail "no remote reads after the cache vanished"
[ "$errors" -gt 0 ] || fail "nvme errors not counted"
pass "truncated segments: bytes correct from the source ($((after - before)) remote reads), $errors nvme errors counted"

# The cache dir removed while mounted: reads go on; new writes fail quietly.
rm -rf "$CACHE"
sync; echo 3 > /proc/sys/vm/drop_caches
check_sums "cache dir removed"
is_mounted "$MNT" || fail "mount died when its cache dir was removed"
pass "cache dir removed while mounted: reads correct, mount up"
"$TIERFS" unmount "$MNT"

# A damaged index kept under the cache dir is rebuilt; a damaged --index is refused.
mount_tierfs "$SRC" "$MNT" --cache-dir "$CACHE" --cache-size 256M
"$TIERFS" unmount "$MNT"
for f in "$CACHE"/index/*.sst; do head -c 100 /dev/urandom | dd of="$f" bs=1 seek=200 conv=notrunc 2> /dev/null; done
for f in "$CACHE"/index/MANIFEST-*; do truncate -s 10 "$f"; done
mount_tierfs "$SRC" "$MNT" --cache-dir "$CACHE" --cache-size 256M 2> "$WORK/rebuild.err"
check_sums "after rebuilding a corrupted index"
"$TIERFS" unmount "$MNT"
pass "corrupted index under the cache dir: rebuilt, bytes correct"
cp -r "$WORK/index" "$WORK/bad-index"
for f in "$WORK"/bad-index/*.sst; do truncate -s 50 "$f"; done
err=$("$TIERFS" mount "$SRC" "$MNT" --index "$WORK/bad-index" --cache-dir "$CACHE" 2>&1) &&
  fail "mount with a truncated --index succeeded"
[ "$(echo "$err" | wc -l)" -eq 1 ] || fail "more than one line: $err"
is_mounted "$MNT" && fail "a bad --index left a mount"
err2=$("$TIERFS" index stat --index "$WORK/bad-index" 2>&1) && fail "index stat of a truncated index succeeded"
pass "truncated --index: one line, nothing mounted: $err"
