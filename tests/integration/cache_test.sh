#!/usr/bin/env bash
# The tiered cache through a real mount: epoch 2 reads nothing remote, the cache survives
# remounts and serves with the source gone, corruption is caught, kill -9 is recoverable,
# and the cache dir stays within --cache-size.
source "$(dirname "$0")/lib.sh"
need_fuse

SRC=$WORK/src MNT=$WORK/mnt CACHE=$WORK/cache
"$TOOLS/gen-dataset" "$SRC" --files 600 --file-size 40000 --per-dir 100 --big 64
echo "not read in epoch 1" > "$SRC/uncached.txt"
"$TIERFS" index build "$SRC" --index "$WORK/index" >/dev/null
find "$SRC" -type f ! -name uncached.txt | sed "s|^$SRC/||" | sort > "$WORK/files"
( cd "$SRC" && xargs -d '\n' sha256sum < "$WORK/files" ) > "$WORK/sums"

OPTS=(--index "$WORK/index" --cache-dir "$CACHE" --cache-size 256M)
check_sums() { ( cd "$MNT" && sha256sum --quiet -c "$WORK/sums" ) || fail "$1: bytes differ from the source"; }

# Epoch 1 and 2 in one mount, RAM tier on.
mount_tierfs "$SRC" "$MNT" "${OPTS[@]}" --ram-size 64M
check_sums "epoch 1"
r1=$(stat_field "$MNT" "['remote_reads']")
[ "$r1" -gt 0 ] || fail "epoch 1 made no remote reads"
sync; echo 3 > /proc/sys/vm/drop_caches
check_sums "epoch 2"
r2=$(stat_field "$MNT" "['remote_reads']")
[ "$r2" = "$r1" ] || fail "epoch 2 made $((r2 - r1)) remote reads"
pass "epoch 1: $r1 remote reads; epoch 2 (page cache dropped): 0"
unmount_tierfs "$MNT"

# Remount with the source gone: everything read before comes from the NVMe tier.
mv "$SRC" "$WORK/src.away"
mount_tierfs "$SRC" "$MNT" "${OPTS[@]}" --ram-size 0 2>"$WORK/offline.err"
grep -q "serving from the cache" "$WORK/offline.err" || fail "no offline notice: $(cat "$WORK/offline.err")"
check_sums "remount with the source gone"
[ "$(stat_field "$MNT" "['remote_reads']")" = 0 ] || fail "remount read the (missing) source"
hits=$(stat_field "$MNT" "['tiers']['nvme']['hits']")
[ "$hits" -gt 0 ] || fail "no nvme hits"
pass "remount with the source gone: identical bytes, $hits nvme hits, 0 remote reads"
out=$(cat "$MNT/uncached.txt" 2>&1) && fail "uncached read succeeded with the source gone"
grep -q "Input/output error" <<<"$out" || fail "uncached read said: $out"
check_sums "after an EIO"
pass "uncached file: EIO; the mount keeps serving"
mv "$WORK/src.away" "$SRC"
[ "$(cat "$MNT/uncached.txt")" = "not read in epoch 1" ] || fail "source came back but the read still fails"
pass "source back: the uncached file reads again"
unmount_tierfs "$MNT"

# The bound: everything under the cache dir.
used=$(du -sb "$CACHE" | cut -f1)
[ "$used" -le $((256 << 20)) ] || fail "cache dir holds $used bytes > 256 MiB"
pass "cache dir uses $used bytes <= 256 MiB"

# Corruption: flip bytes in every segment; reads must still be right, failures counted.
python3 - "$CACHE/blocks" <<'PY'
import os, sys
for name in sorted(os.listdir(sys.argv[1])):
    if not name.startswith("seg-"): continue
    path = os.path.join(sys.argv[1], name)
    with open(path, "r+b") as f:
        for off in range(10000, 8 << 20, 300007):
            f.seek(off); b = f.read(1)
            if not b: break
            f.seek(off); f.write(bytes([b[0] ^ 0x5A]))
PY
mount_tierfs "$SRC" "$MNT" "${OPTS[@]}" --ram-size 0
check_sums "after corrupting the cache"
bad=$(stat_field "$MNT" "['tiers']['nvme']['checksum_failures']")
[ "$bad" -gt 0 ] || fail "corruption was not detected"
pass "corrupted blocks detected ($bad), refetched, bytes correct"

# kill -9 mid-read: the mountpoint is recovered with fusermount3 -uz and a remount.
( cd "$MNT" && xargs -d '\n' cat < "$WORK/files" > /dev/null 2>&1 ) &
reader=$!
sleep 0.3
pkill -9 -f "tierfs mount $SRC $MNT" || fail "no daemon to kill"
wait $reader 2>/dev/null || true
# Wait for the kernel to finish tearing the daemon down: a request made during the abort
# fails with ECONNABORTED, one made after it with ENOTCONN; both mean a dead mount.
for _ in $(seq 50); do pgrep -f "tierfs mount $SRC $MNT" > /dev/null || break; sleep 0.1; done
out=$(ls "$MNT" 2>&1) && fail "a dead daemon's mount still answered"
grep -Eq "Transport endpoint is not connected|Software caused connection abort" <<<"$out" ||
  fail "dead mount said: $out"
# A plain remount (what a supervisor or Restart=on-failure does) detaches the dead mount.
"$TIERFS" mount "$SRC" "$MNT" "${OPTS[@]}" --ram-size 0 2> "$WORK/remount.err" ||
  fail "remount over a dead mount failed: $(cat "$WORK/remount.err")"
grep -q "daemon that died; detaching it" "$WORK/remount.err" || fail "remount said: $(cat "$WORK/remount.err")"
[ "$(grep -c " $MNT fuse.tierfs " /proc/mounts)" -eq 1 ] || fail "stacked mounts at $MNT"
check_sums "after kill -9 and remount"
pass "kill -9: a plain remount detaches the dead mount and serves correct bytes"
unmount_tierfs "$MNT"
