#!/usr/bin/env bash
# A real mount of a local tree: bytes, names, symlinks, parallel readers, read-only errors,
# zero source access for metadata, clean SIGTERM.
source "$(dirname "$0")/lib.sh"
need_fuse

SRC=$WORK/src
BIG_MIB=${BIG_MIB:-1024}
"$TOOLS/gen-dataset" "$SRC" --files 10000 --file-size 2048 --per-dir 250 --big "$BIG_MIB" --tricky
pass "generated 10000 small files, a ${BIG_MIB} MiB file and tricky names"

"$TIERFS" index build "$SRC" --index "$WORK/index" >/dev/null
MNT=$WORK/mnt
mount_tierfs "$SRC" "$MNT" --index "$WORK/index" --cache-dir "$WORK/cache" --ram-size 256M

# Metadata comes from the index: make the source unreadable to prove it (root bypasses
# modes, so move it away instead and bring it back for the data reads).
mv "$SRC" "$WORK/src.away"
n_src=$(cd "$WORK/src.away" && find . | wc -l)
n_mnt=$(cd "$MNT" && find . | wc -l)
[ "$n_src" = "$n_mnt" ] || fail "find counts differ: source $n_src, mount $n_mnt"
pass "find | wc -l equal ($n_mnt) with the source moved away"
ls -laR "$MNT" >/dev/null || fail "ls -laR failed"
stat "$MNT/tricky/ünïcödé-名前.txt" >/dev/null || fail "unicode name not found"
[ "$(readlink "$MNT/tricky/link-to-file")" = "with space.txt" ] || fail "readlink"
[ "$(stat_field "$MNT" "['remote_reads']")" = "0" ] || fail "metadata operations read the source"
pass "metadata served with zero source reads"
mv "$WORK/src.away" "$SRC"

diff -r --no-dereference "$SRC" "$MNT" || fail "diff -r found differences"
pass "diff -r clean"
[ "$(cat "$MNT/tricky/link-to-dir/nested file" | md5sum)" = "$(md5sum < "$SRC/tricky/sub dir/deeper/nested file")" ] || fail "symlinked dir read"

if [ "$BIG_MIB" -gt 0 ]; then
  a=$(sha256sum < "$SRC/big.bin"); b=$(sha256sum < "$MNT/big.bin")
  [ "$a" = "$b" ] || fail "big file checksum differs"
  pass "big file checksum equal"
fi

# 8 parallel readers over different orders of the small files.
find "$SRC/train" -type f | sed "s|^$SRC/||" | sort > "$WORK/list"
for r in $(seq 8); do
  ( shuf -n 2000 --random-source=<(yes $r) "$WORK/list" | while IFS= read -r f; do
      cmp -s "$SRC/$f" "$MNT/$f" || { echo "mismatch $f"; exit 1; }
    done ) > "$WORK/reader$r.log" 2>&1 &
done
failed=0
for job in $(jobs -p); do wait "$job" || failed=1; done
[ $failed = 0 ] || { cat "$WORK"/reader*.log; fail "a parallel reader saw wrong bytes"; }
pass "8 parallel readers got correct bytes"

# Read-only.
for cmd in "touch $MNT/new" "rm $MNT/tricky/empty" "mkdir $MNT/d" "sh -c 'echo x > $MNT/tricky/empty'" \
           "mv $MNT/tricky/empty $MNT/tricky/moved" "ln -s x $MNT/l" "chmod 777 $MNT/tricky/empty"; do
  out=$(eval "$cmd" 2>&1) && fail "'$cmd' succeeded on a read-only mount"
  grep -q "Read-only file system" <<<"$out" || fail "'$cmd' said: $out"
done
pass "writes fail with Read-only file system"

# SIGTERM unmounts cleanly.
pid=$(pgrep -f "tierfs mount $SRC $MNT" | head -1)
[ -n "$pid" ] || fail "daemon not found"
kill -TERM "$pid"
for _ in $(seq 50); do is_mounted "$MNT" || break; sleep 0.1; done
is_mounted "$MNT" && fail "still mounted after SIGTERM"
for _ in $(seq 50); do process_running "$pid" || break; sleep 0.1; done
process_running "$pid" && fail "daemon still alive after SIGTERM"
pass "SIGTERM unmounted and exited"
