#!/usr/bin/env bash
# Packed data sets (--archives): tar shards (ustar, GNU, PAX) and zip archives (stored and
# deflated members) on nginx are served as directories of their members; the bytes equal
# `tar -x` / `unzip` of the same archives; a cold read of every member fetches each archive
# block once (requests counted at nginx) and a second read asks nothing; an ImageFolder-style
# loader sees the same samples as over the extracted tree; the -o spelling and
# --archive-names strip (archive readable next to its directory) on a local source; hostile
# archives never put a name outside their directory; an index built with other options is
# rebuilt.
source "$(dirname "$0")/lib.sh"
source "$SERVERS/nginx.sh"
need_fuse

DATA=$WORK/data EX=$WORK/extracted
mkdir -p "$DATA" "$EX/tar" "$EX/zip"
python3 - "$WORK/tree" <<'PY'
import os, random, sys
random.seed(7)
root = sys.argv[1]
for c in range(4):
    for i in range(60):
        d = os.path.join(root, f"class{c}", "sub" if i % 7 == 0 else "")
        os.makedirs(d, exist_ok=True)
        data = os.urandom(random.randint(0, 60000)) if i % 3 else b"caption %d\n" % i * 900
        open(os.path.join(d, f"img{i:03}.jpg"), "wb").write(data)
PY
(cd "$WORK/tree" && tar -cf "$DATA/shard-0.tar" class0 class1 && tar --format=pax -cf "$DATA/shard-1.tar" class2 &&
  zip -qr "$DATA/mixed.zip" class3) || fail "cannot make the archives"
(cd "$EX/tar" && tar -xf "$DATA/shard-0.tar" && tar -xf "$DATA/shard-1.tar") || fail "tar -x failed"
(cd "$EX/zip" && unzip -q "$DATA/mixed.zip") || fail "unzip failed"
deflated=$(unzip -v "$DATA/mixed.zip" | grep -c "Defl:" || true)
[ "$deflated" -gt 0 ] || fail "the zip has no deflated member"
chmod -R a+rX "$WORK"
NGINX=$WORK/nginx PORT=$(free_port)
trap 'stop_nginx "$NGINX"; cleanup' EXIT
start_nginx "$DATA" "$NGINX" "$PORT" || fail "nginx did not start"
URL=http://127.0.0.1:$PORT/json/

out=$("$TIERFS" index build "$URL" --index "$WORK/idx" --archives tar,zip --write-manifest "$WORK/manifest") ||
  fail "index build failed"
echo "$out" | grep -q "3 archives opened, 248 members" || fail "index build says: $out"
# The manifest names the objects: each archive once, with its own size.
[ "$(cut -d' ' -f1,2 "$WORK/manifest" | sort)" = "$(cd "$DATA" && for f in *; do echo "$f $(stat -c %s "$f")"; done)" ] ||
  fail "the manifest is not the three archives: $(cat "$WORK/manifest")"
MNT=$WORK/mnt
: > "$NGINX/access.log"
mount_tierfs "$URL" "$MNT" --index "$WORK/idx" --cache-dir "$WORK/cache" --cache-size 256M
[ "$(ls "$MNT")" = "$(printf 'mixed.zip\nshard-0.tar\nshard-1.tar')" ] || fail "root lists $(ls "$MNT" | xargs)"
diff -r "$EX/tar/class0" "$MNT/shard-0.tar/class0" && diff -r "$EX/tar/class1" "$MNT/shard-0.tar/class1" &&
  diff -r "$EX/tar/class2" "$MNT/shard-1.tar/class2" || fail "tar members differ from tar -x"
diff -r "$EX/zip/class3" "$MNT/mixed.zip/class3" || fail "zip members differ from unzip"
n=$(grep -c '"GET ' "$NGINX/access.log" || true)
blocks=0
for f in "$DATA"/*; do blocks=$((blocks + ($(stat -c %s "$f") + 1048575) / 1048576)); done
# Every block of each archive once, plus one request for each deflated zip member.
[ "$n" -le $((blocks + deflated)) ] ||
  fail "a cold read of 240 members made $n requests (archive blocks $blocks, deflated $deflated)"
pass "240 members equal tar -x / unzip; cold read made $n requests ($blocks archive blocks, $deflated deflated)"
before=$(stat_field "$MNT" "['remote_reads']")
sync; echo 3 > /proc/sys/vm/drop_caches
"$TOOLS/bench/imagefolder.py" "$MNT/shard-0.tar" > "$WORK/packed.txt" 2>/dev/null || fail "loader failed on the mount"
"$TOOLS/bench/imagefolder.py" "$EX/tar" --seed 3 > "$WORK/loose.txt" 2>/dev/null || fail "loader failed on the tree"
grep -v " class2/" "$WORK/loose.txt" | cmp -s - "$WORK/packed.txt" || fail "the loader's samples differ"
[ "$(stat_field "$MNT" "['remote_reads']")" = "$before" ] || fail "the second read went remote"
"$TIERFS" stats "$MNT" | grep -q "^archives         3, served as directories of 248 members" ||
  fail "tierfs stats does not count the archives"
pass "ImageFolder-style loader: $(wc -l < "$WORK/packed.txt") samples equal the extracted tree's; second read 0 requests"
unmount_tierfs "$MNT"

# A local source, options in the -o spelling; strip keeps each archive readable next to
# its directory (a WebDataset reader streams shard-0.tar, a file reader opens shard-0/...).
LMNT=$WORK/lmnt
mount_tierfs "$DATA" "$LMNT" -o "cache_dir=$WORK/lcache,cache_size=64M,archives=tar+zip,archive_names=strip"
cmp -s "$DATA/shard-0.tar" "$LMNT/shard-0.tar" || fail "the archive is not readable as a file"
diff -r "$EX/tar/class1" "$LMNT/shard-0/class1" || fail "strip: members differ"
diff -r "$EX/zip/class3" "$LMNT/mixed/class3" || fail "strip: zip members differ"
unmount_tierfs "$LMNT"
mount_tierfs "$DATA" "$LMNT" --cache-dir "$WORK/lcache" --cache-size 64M
[ -f "$LMNT/shard-0.tar" ] && [ ! -e "$LMNT/shard-0" ] || fail "without --archives the index was not rebuilt"
unmount_tierfs "$LMNT"
pass "-o archives=tar+zip,archive_names=strip: archives readable next to their directories; rebuilt without"

# Hostile archives: names and links that leave the archive, a duplicate, a truncated tar,
# a zip whose directory lies about its size.
HOSTILE=$WORK/hostile
mkdir -p "$HOSTILE"
python3 - "$HOSTILE" <<'PY'
import io, sys, tarfile, zipfile
d = sys.argv[1]
def add(t, name, data=b"x", **kw):
    info = tarfile.TarInfo(name); info.size = len(data)
    for k, v in kw.items(): setattr(info, k, v)
    t.addfile(info, io.BytesIO(data))
with tarfile.open(f"{d}/evil.tar", "w", format=tarfile.GNU_FORMAT) as t:
    add(t, "../escape"); add(t, "/etc/abs"); add(t, "a/../../up")
    add(t, "out", b"", type=tarfile.SYMTYPE, linkname="../../../etc/passwd")
    add(t, "hard", b"", type=tarfile.LNKTYPE, linkname="/etc/shadow")
    add(t, "dup", b"first"); add(t, "dup", b"second"); add(t, "ok", b"fine")
raw = open(f"{d}/evil.tar", "rb").read()
open(f"{d}/cut.tar", "wb").write(raw[:2048 + 700])
with zipfile.ZipFile(f"{d}/evil.zip", "w") as z:
    z.writestr("../zip-escape", b"x"); z.writestr("fine.txt", b"fine")
z = bytearray(open(f"{d}/evil.zip", "rb").read())
end = z.rfind(b"PK\x05\x06"); z[end + 8:end + 12] = (60000).to_bytes(2, "little") * 2
open(f"{d}/liar.zip", "wb").write(bytes(z))
PY
"$TIERFS" index build "$HOSTILE" --index "$WORK/hidx" --archives tar,zip > /dev/null 2> "$WORK/hostile.log" ||
  fail "index build of hostile archives failed: $(cat "$WORK/hostile.log")"
HMNT=$WORK/hmnt
mount_tierfs "$HOSTILE" "$HMNT" --index "$WORK/hidx" --cache-dir "$WORK/hcache" --cache-size 64M
[ "$(cat "$HMNT/evil.tar/dup")" = second ] && [ "$(cat "$HMNT/evil.tar/ok")" = fine ] ||
  fail "the good members of evil.tar are not served"
[ "$(cat "$HMNT/evil.zip/fine.txt")" = fine ] || fail "the good member of evil.zip is not served"
[ "$(find "$HMNT" | grep -c -e escape -e abs -e passwd -e shadow -e '/up$' -e '/out$')" = 0 ] ||
  fail "a hostile name is served: $(find "$HMNT" | xargs)"
[ -f "$HMNT/liar.zip" ] || fail "the lying zip is not served as a file"
for a in evil.tar cut.tar evil.zip liar.zip; do
  [ "$(grep -c "archive '$a'" "$WORK/hostile.log")" = 1 ] || fail "not one log line for $a: $(grep "$a" "$WORK/hostile.log")"
done
pass "hostile archives: no name outside its directory, good members served, one line per archive"
