#!/usr/bin/env bash
# FUSE passthrough for fully cached large files: bytes identical through read() and mmap
# with no READ reaching the daemon; a partly cached file goes through the daemon until it
# is complete and its cached-mode opens are closed; bytes flipped in a backing file before
# a remount are caught and refetched; an object evicted while open keeps serving its
# reader; without CAP_SYS_ADMIN the mount works as before.
source "$(dirname "$0")/lib.sh"
need_fuse

SRC=$WORK/src MNT=$WORK/mnt CACHE=$WORK/cache
mkdir -p "$SRC"
head -c 40M /dev/urandom > "$SRC/big.bin"
head -c 24M /dev/urandom > "$SRC/part.bin"
head -c 100K /dev/urandom > "$SRC/small.bin"
"$TIERFS" index build "$SRC" --index "$WORK/index" > /dev/null
OPTS=(--index "$WORK/index" --cache-dir "$CACHE" --cache-size 256M --ram-size 64M)

reads() { stat_field "$MNT" "['fuse_ops']['read']"; }
pt() { stat_field "$MNT" "['passthrough']['$1']"; }
wait_eligible() {  # wait_eligible N: until N objects are complete and verified (10 s)
  for _ in $(seq 100); do [ "$(pt objects_eligible)" -ge "$1" ] && return 0; sleep 0.1; done
  fail "$1 objects never became eligible for passthrough: $(stats_json "$MNT")"
}
mmap_sum() {
  python3 -c 'import hashlib, mmap, sys
with open(sys.argv[1], "rb") as f:
    print(hashlib.sha256(mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)).hexdigest())' "$1"
}
want=$(sha256sum < "$SRC/big.bin" | cut -d' ' -f1)

# 1. Cold read through the daemon, then passthrough: read() and mmap, no READ requests.
mount_tierfs "$SRC" "$MNT" "${OPTS[@]}"
[ "$(pt state)" = on ] || fail "passthrough not on as root: $(stats_json "$MNT")"
cmp "$SRC/big.bin" "$MNT/big.bin" || fail "cold read differs"
cmp "$SRC/small.bin" "$MNT/small.bin" || fail "small file differs"
wait_eligible 1
r0=$(reads) o0=$(pt opens)
cmp "$SRC/big.bin" "$MNT/big.bin" || fail "passthrough read() differs"
[ "$(mmap_sum "$MNT/big.bin")" = "$want" ] || fail "passthrough mmap differs"
r1=$(reads) o1=$(pt opens)
[ "$r1" = "$r0" ] || fail "a warm pass sent $((r1 - r0)) READ requests to the daemon"
[ $((o1 - o0)) -eq 2 ] || fail "expected 2 passthrough opens, got $((o1 - o0))"
[ "$(pt backing_files)" = 0 ] || fail "backing files left registered after close"
pass "warm pass by passthrough: read() and mmap identical, 0 READ requests ($r0 before)"

# 2. A partly cached file: a cached-mode open held across completion keeps later opens
# cached (the kernel refuses to mix modes); once it closes, the next open is passthrough.
# fd 3 is opened before any of the file is cached, so it is a cached-mode open for sure
# (opened after the first read, read-ahead could already have completed the object).
c0=$(pt cached_opens)
exec 3< "$MNT/part.bin"
[ "$(pt cached_opens)" -gt "$c0" ] || fail "the first open of an uncached file was not cached-mode"
dd if="$MNT/part.bin" of=/dev/null bs=1M count=8 status=none
for i in 1 2 3 4; do cmp "$SRC/part.bin" "$MNT/part.bin" & done
wait || fail "a concurrent reader during completion saw wrong bytes"
wait_eligible 2
o2=$(pt opens)
cmp "$SRC/part.bin" "$MNT/part.bin" || fail "open during a held cached open differs"
[ "$(pt opens)" = "$o2" ] || fail "passthrough granted while a cached-mode open was held"
cmp "$SRC/part.bin" /dev/fd/3 || fail "the held cached-mode open reads wrong bytes"
exec 3<&-
sleep 0.2  # RELEASE is asynchronous
r2=$(reads)
cmp "$SRC/part.bin" "$MNT/part.bin" || fail "passthrough after completion differs"
[ "$(pt opens)" -gt "$o2" ] || fail "no passthrough once the cached open was closed"
[ "$(reads)" = "$r2" ] || fail "the passthrough open sent READ requests"
pass "partly cached: 4 concurrent readers correct, passthrough only after the cached open closed"
unmount_tierfs "$MNT"

# 3. Bytes flipped in the backing file on disk: verified before the first passthrough open.
python3 - "$CACHE/objects" <<'PY'
import os, sys
for name in os.listdir(sys.argv[1]):
    if not name.endswith(".data") or os.path.getsize(os.path.join(sys.argv[1], name)) != 40 << 20:
        continue
    with open(os.path.join(sys.argv[1], name), "r+b") as f:
        for off in range(5000, 40 << 20, 7 << 20):
            f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 0x5A]))
PY
sync; echo 3 > /proc/sys/vm/drop_caches
mount_tierfs "$SRC" "$MNT" "${OPTS[@]}"
cmp "$SRC/big.bin" "$MNT/big.bin" || fail "corrupted backing file served wrong bytes"
bad=$(stat_field "$MNT" "['tiers']['objects']['checksum_failures']")
[ "$bad" -gt 0 ] || fail "flipped bytes were not detected"
wait_eligible 1  # big.bin (part.bin is not verified until it is opened)
[ "$(mmap_sum "$MNT/big.bin")" = "$want" ] || fail "passthrough after repair differs"
[ "$(pt opens)" -ge 1 ] || fail "the repaired object was not passed through"
pass "flipped bytes caught ($bad blocks), refetched; passthrough serves the repaired file"
unmount_tierfs "$MNT"

# 4. Evicted while open: a cache that holds two of three 40 MiB objects.
SRC2=$WORK/src2
mkdir -p "$SRC2"
for f in a b c; do head -c 40M /dev/urandom > "$SRC2/$f.bin"; done
mount_tierfs "$SRC2" "$MNT" --cache-dir "$WORK/cache2" --cache-size 92M --ram-size 16M
cat "$MNT/a.bin" > /dev/null
wait_eligible 1
python3 - "$MNT" "$SRC2" <<'PY' || fail "reader of an evicted object"
import hashlib, json, os, subprocess, sys
mnt, src = sys.argv[1], sys.argv[2]
def stats():
    return json.loads(os.getxattr(mnt, "user.tierfs.stats"))
with open(f"{mnt}/a.bin", "rb") as f:
    opens = stats()["passthrough"]["opens"]
    assert opens >= 1, "a.bin was not opened by passthrough"
    h = hashlib.sha256(f.read(1 << 20))
    # c.bin is read twice: a first fetch evicts nothing once the cache is full (epoch-aware
    # admission); fetched again while the resident set earns no hits, it evicts a.bin.
    for other in ("b.bin", "c.bin", "c.bin"):
        subprocess.run(["cmp", f"{src}/{other}", f"{mnt}/{other}"], check=True)
    p = stats()["passthrough"]
    assert p["evicted_pinned_bytes"] > 0, f"a.bin was not evicted while open: {p}"
    while chunk := f.read(1 << 20):
        h.update(chunk)
with open(f"{src}/a.bin", "rb") as f:
    assert h.hexdigest() == hashlib.sha256(f.read()).hexdigest(), "evicted reader got wrong bytes"
import time
for _ in range(50):
    if stats()["passthrough"]["evicted_pinned_bytes"] == 0:
        break
    time.sleep(0.1)
assert stats()["passthrough"]["evicted_pinned_bytes"] == 0, "room of a closed evicted object kept"
PY
used=$(du -s --block-size=1 "$WORK/cache2" | cut -f1)
[ "$used" -le $((92 << 20)) ] || fail "cache dir uses $used bytes > 92 MiB"
pass "evicted while open: the reader kept correct bytes; room returned at close; cache dir $used bytes"
unmount_tierfs "$MNT"

# 5. Turned off, and without CAP_SYS_ADMIN: reads go through the daemon as before.
mount_tierfs "$SRC" "$MNT" "${OPTS[@]}" -o no_passthrough
cmp "$SRC/big.bin" "$MNT/big.bin" || fail "-o no_passthrough read differs"
stats_json "$MNT" | grep -q '"objects"' && fail "-o no_passthrough still keeps object files"
unmount_tierfs "$MNT"
fuse_mode=$(stat -c %a /dev/fuse)
trap 'chmod "$fuse_mode" /dev/fuse; cleanup' EXIT
chmod 666 /dev/fuse  # as on a stock Debian system: users may mount through fusermount3
chmod 755 "$WORK"
mkdir -p "$WORK/user"
cp "$SRC/big.bin" "$WORK/user/big.bin"
mkdir -p "$WORK/usermnt" && chown -R 65534:65534 "$WORK/user" "$WORK/usermnt"
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups -- env HOME="$WORK/user" "$@"; }
as_nobody "$TIERFS" mount "$WORK/user" "$WORK/usermnt" --cache-dir "$WORK/user/.cache" \
  --cache-size 256M 2> "$WORK/user.err" || fail "mount as nobody: $(cat "$WORK/user.err")"
MOUNTS+=("$WORK/usermnt")
grep -q "passthrough off: registering backing files needs CAP_SYS_ADMIN" "$WORK/user.err" ||
  fail "no notice without CAP_SYS_ADMIN: $(cat "$WORK/user.err")"
as_nobody cmp "$SRC/big.bin" "$WORK/usermnt/big.bin" || fail "read as nobody differs"
as_nobody cmp "$SRC/big.bin" "$WORK/usermnt/big.bin" || fail "second read as nobody differs"
as_nobody fusermount3 -u "$WORK/usermnt"
pass "no_passthrough and an unprivileged daemon: bytes correct through the daemon, one notice"

# 6. auto: a data set of small files keeps opens free of round trips (no passthrough) unless
# asked; a bad mode is one clear line.
SMALLSRC=$WORK/smallsrc
mkdir -p "$SMALLSRC"
for i in 1 2 3; do head -c 200K /dev/urandom > "$SMALLSRC/$i.bin"; done
"$TIERFS" mount "$SMALLSRC" "$MNT" --cache-dir "$WORK/cache3" 2> "$WORK/auto.err" || fail "mount (auto)"
grep -q "passthrough off: 0% of the data set's bytes are in files of 8.0 MiB or more" "$WORK/auto.err" ||
  fail "auto with small files: $(cat "$WORK/auto.err")"
stats_json "$MNT" | grep -q '"passthrough"' && fail "auto turned passthrough on for small files"
unmount_tierfs "$MNT"
mount_tierfs "$SMALLSRC" "$MNT" --cache-dir "$WORK/cache3" -o passthrough=on
[ "$(pt state)" = on ] || fail "-o passthrough=on did not turn it on"
unmount_tierfs "$MNT"
for bad in "--passthrough maybe" "-o passthrough=maybe"; do
  # shellcheck disable=SC2086
  out=$("$TIERFS" mount "$SMALLSRC" "$MNT" --cache-dir "$WORK/cache3" $bad 2>&1) && fail "$bad accepted"
  [ "$(wc -l <<<"$out")" = 1 ] && grep -q "must be auto, on or off, not 'maybe'" <<<"$out" || fail "$bad: $out"
done
is_mounted "$MNT" && fail "a bad --passthrough left a mount"
pass "auto: off for a data set of small files (one notice), -o passthrough=on forces it, bad modes refused"

# 7. FUSE over io_uring (--fuse-uring): requests served by per-CPU rings, passthrough
# opens included; without the kernel parameter, one notice and /dev/fuse.
PARAM=/sys/module/fuse/parameters/enable_uring
if [ -w "$PARAM" ]; then
  uring_before=$(cat "$PARAM")
  trap 'echo "$uring_before" > "$PARAM"; chmod "$fuse_mode" /dev/fuse; cleanup' EXIT
  echo Y > "$PARAM"
  mount_tierfs "$SRC" "$MNT" "${OPTS[@]}" -o fuse_uring
  [ "$(stat_field "$MNT" "['fuse_transport']['transport']")" = io_uring ] ||
    fail "-o fuse_uring: $(stats_json "$MNT")"
  cmp "$SRC/small.bin" "$MNT/small.bin" || fail "io_uring: small file differs"
  cmp "$SRC/big.bin" "$MNT/big.bin" || fail "io_uring: big file differs"
  [ "$(mmap_sum "$MNT/big.bin")" = "$want" ] || fail "io_uring: mmap differs"
  ring=$(stat_field "$MNT" "['fuse_transport']['ring_requests']")
  [ "$ring" -gt 0 ] || fail "no request came through the ring"
  [ "$(pt opens)" -ge 1 ] || fail "no passthrough open over io_uring"
  unmount_tierfs "$MNT"
  echo N > "$PARAM"
  "$TIERFS" mount "$SRC" "$MNT" "${OPTS[@]}" --fuse-uring 2> "$WORK/uring.err" || fail "mount"
  MOUNTS+=("$MNT")
  grep -q "fuse over io_uring off: the fuse module's enable_uring parameter is off" "$WORK/uring.err" ||
    fail "no notice with enable_uring off: $(cat "$WORK/uring.err")"
  cmp "$SRC/small.bin" "$MNT/small.bin" || fail "fallback: small file differs"
  [ "$(stat_field "$MNT" "['fuse_transport']['transport']")" = /dev/fuse ] || fail "fallback transport"
  unmount_tierfs "$MNT"
  pass "io_uring: $ring requests through the rings, bytes and passthrough right; off -> /dev/fuse with a notice"
else
  echo "ok - io_uring section skipped: $PARAM not writable (kernel without FUSE over io_uring)"
fi
