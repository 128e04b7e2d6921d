#!/usr/bin/env bash
# Load: 64 concurrent readers over a 20,000-file tree for a bounded time, with a cache
# smaller than the data set (RAM 32 MiB + NVMe 64 MiB for ~330 MB), every file checked
# against the source by XXH3. The daemon's RSS, open fds and threads are sampled every
# second: RSS must stay under ram-size + 128 MiB (prefetch budget, FUSE buffers, index,
# allocator slack), fds and threads must not grow after warm-up.
#   LOAD_SECONDS (default 60), LOAD_READERS (default 64), LOAD_FILES (default 20000)
source "$(dirname "$0")/../integration/lib.sh"
need_fuse
command -v xxhsum > /dev/null || { echo "SKIP: xxhsum (package xxhash) missing"; exit 77; }
SECS=${LOAD_SECONDS:-60}
READERS=${LOAD_READERS:-64}
FILES=${LOAD_FILES:-20000}

SRC=$WORK/src MNT=$WORK/mnt
"$TOOLS/gen-dataset" "$SRC" --files "$FILES" --file-size 16000 --per-dir 500 --big 8
( cd "$SRC" && find . -type f | sort | xargs -d '\n' xxhsum -H3 ) > "$WORK/sums"
[ "$(wc -l < "$WORK/sums")" -eq $((FILES + 1)) ] || fail "reference sums incomplete"
data_bytes=$(du -sb "$SRC" | cut -f1)
mount_tierfs "$SRC" "$MNT" --cache-dir "$WORK/cache" --cache-size 64M --ram-size 32M
pid=$(stat_field "$MNT" "['pid']")
sample() { awk '/^VmRSS/ {r=$2} /^RssAnon/ {a=$2} /^RssFile/ {f=$2} /^Threads/ {t=$2}
  END {print r, t, a "+" f}' "/proc/$pid/status" | {
  read -r rss threads split; echo "$rss $threads $(ls "/proc/$pid/fd" | wc -l) $(rings) $split"; }; }
# io_uring instances: one per thread that has read the NVMe tier (thread-local rings).
rings() { find "/proc/$pid/fd" -lname 'anon_inode:\[io_uring\]' 2>/dev/null | wc -l; }

# Warm-up pass (one reader) so the steady state is measured, then the load.
( cd "$MNT" && head -2000 "$WORK/sums" | xxhsum -c --quiet - ) > /dev/null || fail "warm-up pass: mismatches"
read -r rss0 threads0 fds0 _ < <(sample)
# The tree in shuffled chunks of 400 files; reader r takes chunks r, r+READERS, ... so the
# readers sweep the whole data set (larger than the cache) again and again.
mkdir -p "$WORK/chunks"
shuf "$WORK/sums" | split -l 400 -d -a 4 - "$WORK/chunks/c"
chunks=$(ls "$WORK/chunks" | wc -l)
deadline=$(( $(date +%s) + SECS ))
for r in $(seq "$READERS"); do
  (
    cd "$MNT"
    passes=0
    while [ "$(date +%s)" -lt $deadline ]; do
      chunk=$(printf '%04d' $(( (r + passes * READERS) % chunks )))
      xxhsum -c --quiet "$WORK/chunks/c$chunk" 2>&1 || true
      passes=$((passes + 1))
    done
    echo "PASSES $passes"
  ) > "$WORK/reader$r.log" 2>&1 &
done
max_rss=$rss0 max_split=? max_threads=$threads0 max_fds=$fds0 samples=0 fds_mid=0 threads_mid=0 rings_mid=0
while [ "$(date +%s)" -lt "$deadline" ]; do
  read -r rss threads fds rings_now split < <(sample) || break
  [ "$rss" -gt "$max_rss" ] && max_rss=$rss max_split=$split
  [ "$threads" -gt "$max_threads" ] && max_threads=$threads
  [ "$fds" -gt "$max_fds" ] && max_fds=$fds
  samples=$((samples + 1))
  # Half-way, every thread and the store's fd cache have been used: the steady state.
  if [ "$fds_mid" -eq 0 ] && [ "$(date +%s)" -ge $((deadline - SECS / 2)) ]; then
    fds_mid=$fds threads_mid=$threads rings_mid=$rings_now
  fi
  # Now and then drop the page cache, so reads keep going through tierfs.
  [ $((samples % 5)) -eq 0 ] && echo 1 > /proc/sys/vm/drop_caches
  sleep 1
done
wait
read -r rss1 threads1 fds1 rings1 _ < <(sample)
# xxhsum -c --quiet prints nothing for a good file: any other line is a mismatch or an
# unreadable file.
mismatches=$(cat "$WORK"/reader*.log | grep -vc "^PASSES " || true)
files_checked=$(( $(cat "$WORK"/reader*.log | awk '/^PASSES/ {s+=$2} END {print s+0}') * 400 ))
remote=$(stat_field "$MNT" "['remote_bytes']")
[ "$mismatches" -eq 0 ] || fail "$mismatches mismatches or errors: $(grep -hv "^PASSES " "$WORK"/reader*.log | head -3)"
[ "$files_checked" -ge $((READERS * 400)) ] || fail "only $files_checked files checked"
bound=$(( (32 + 128) * 1024 ))
# Under ASan the allocator keeps a quarantine (256 MiB) and shadow memory: allow for it.
[ -n "${TIERFS_SANITIZED:-}" ] && bound=$(( (32 + 128 + 768) * 1024 ))
[ "$max_rss" -le "$bound" ] || fail "RSS peaked at ${max_rss} KiB (anon+file ${max_split} KiB) > ${bound} KiB (ram-size + 128 MiB)"
[ "$fds_mid" -gt 0 ] || fail "no half-way sample ($samples samples, readers ran until $(date +%s) vs deadline $deadline)"
# Rings are per thread (a worker's first NVMe read opens one): bounded by the threads.
# Every other fd (store fd cache, segments, index) must not grow once warm.
[ "$rings1" -le "$threads1" ] || fail "$rings1 io_uring instances for $threads1 threads"
[ $((fds1 - rings1)) -le $((fds_mid - rings_mid + 4)) ] ||
  fail "open fds (rings aside) grew in the second half: $((fds_mid - rings_mid)) -> $((fds1 - rings1))"
[ "$threads1" -le "$threads_mid" ] || fail "threads grew in the second half: $threads_mid -> $threads1"
is_mounted "$MNT" || fail "mount died under load"
pass "$READERS readers x ${SECS}s: $files_checked files checked by XXH3, 0 mismatches; data $((data_bytes >> 20)) MiB vs cache 96 MiB, $((remote >> 20)) MiB fetched; RSS peak $((max_rss >> 10)) MiB (bound $((bound >> 10))), fds $fds0/$fds_mid/$fds1 and threads $threads0/$threads_mid/$threads1 (start/half-way/end, $samples samples)"
unmount_tierfs "$MNT"
