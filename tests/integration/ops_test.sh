#!/usr/bin/env bash
# Operations: warm-up to CACHED 100%, stats (text and JSON), unmount waits for the daemon,
# the mount(8) helper with -o options, and READY=1 to a systemd notify socket.
source "$(dirname "$0")/lib.sh"
need_fuse

SRC=$WORK/src MNT=$WORK/mnt
"$TOOLS/gen-dataset" "$SRC" --files 200 --file-size 40000 --per-dir 50 --big 16
mount_tierfs "$SRC" "$MNT" --cache-dir "$WORK/cache" --cache-size 256M --ram-size 32M 2>/dev/null
out=$("$TIERFS" stats "$MNT")
grep -q "CACHED%" <<<"$out" || fail "stats: $out"
echo "$out" | sed -n 2p | grep -q "0.0%" || fail "fresh mount not at 0%: $out"
jfield() { "$TIERFS" stats "$MNT" --json | python3 -c "import json,sys; j=json.load(sys.stdin); print(j$1)"; }
xattrs=$(jfield '["fuse_ops"]["xattr"]')
"$TIERFS" warm "$MNT" --threads 4 > "$WORK/warm.out" 2>/dev/null || fail "warm failed: $(cat "$WORK/warm.out")"
grep -q "warmed 201 files" "$WORK/warm.out" || fail "warm said: $(cat "$WORK/warm.out")"
# The whole tree was one request to the daemon (plus the progress line's stats reads),
# not one per file, and the daemon fetched it on its warm slots.
asked=$(( $(jfield '["fuse_ops"]["xattr"]') - xattrs ))
[ "$asked" -lt 20 ] || fail "warm of the tree took $asked xattr requests (one per file?)"
[ "$(jfield '["warm"]["files"]')" = 201 ] || fail "the daemon's warm counters: $(jfield '["warm"]')"
[ "$(jfield '["fetch"]["warm_jobs"]')" -gt 0 ] || fail "no warm jobs ran: $(jfield '["fetch"]')"
"$TIERFS" stats "$MNT" | sed -n 2p | grep -q "100.0%" || fail "not 100% cached after warm: $("$TIERFS" stats "$MNT")"
remote=$(jfield '["remote_reads"]')
cat "$MNT"/train/*/* > /dev/null
after=$(jfield '["remote_reads"]')
[ "$remote" = "$after" ] || fail "reading warmed files made $((after - remote)) remote reads"
pass "warm: one request for the tree ($asked xattr requests), CACHED% 0 -> 100, then reads make no remote requests"
rc=0; "$TIERFS" warm "$MNT" no/such/path > /dev/null 2>&1 || rc=$?
[ $rc -ne 0 ] || fail "warm of a missing path exited 0"
pid=$("$TIERFS" stats "$MNT" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
"$TIERFS" unmount "$MNT" || fail "unmount failed"
is_mounted "$MNT" && fail "still mounted after tierfs unmount"
process_running "$pid" && fail "daemon $pid still alive after tierfs unmount"
pass "unmount: mount gone and daemon exited"
err=$("$TIERFS" stats "$MNT" 2>&1) && fail "stats of a non-mount succeeded"
pass "stats of a non-mount: $err"

# mount(8) helper: tierfs keys in -o, mount(8)-only keys dropped.
PATH="$(dirname "$TIERFS"):$PATH" "$(dirname "$0")/../../packaging/mount.fuse.tierfs" "$SRC" "$MNT" \
  -o "cache_dir=$WORK/cache,cache_size=256M,ram_size=16M,_netdev,nofail,x-systemd.automount,noatime" 2>/dev/null ||
  fail "mount helper failed"
MOUNTS+=("$MNT")
is_mounted "$MNT" || fail "helper did not mount"
grep " $MNT " /proc/mounts | grep -q "fuse.tierfs" || fail "/proc/mounts does not say fuse.tierfs"
cmp "$SRC/big.bin" "$MNT/big.bin" || fail "helper mount: bytes differ"
"$TIERFS" unmount "$MNT"
pass "mount.fuse.tierfs SRC MNT -o cache_dir=...,ram_size=...,_netdev,nofail: mounted as fuse.tierfs"

# systemd Type=notify: READY=1 on $NOTIFY_SOCKET once the mount serves.
python3 - "$WORK/notify.sock" > "$WORK/notify.out" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1]); s.settimeout(20)
while True:
    msg = s.recv(4096).decode()
    print(msg.replace("\n", " "), flush=True)
    if "READY=1" in msg: break
PY
listener=$!
for _ in $(seq 50); do [ -S "$WORK/notify.sock" ] && break; sleep 0.1; done
NOTIFY_SOCKET=$WORK/notify.sock "$TIERFS" mount "$SRC" "$MNT" --cache-dir "$WORK/cache" --cache-size 256M 2>/dev/null ||
  fail "mount with NOTIFY_SOCKET failed"
wait $listener || fail "no READY=1 on the notify socket"
grep -q "READY=1" "$WORK/notify.out" || fail "notify said: $(cat "$WORK/notify.out")"
is_mounted "$MNT" || fail "READY=1 sent but not mounted"
"$TIERFS" unmount "$MNT"
pass "READY=1 sent to NOTIFY_SOCKET after the mount served"
