#!/usr/bin/env bash
# Deployment artifacts: the Kubernetes and Fluid manifests pass the offline schema check
# (and the check catches broken copies), the DaemonSet's config file parses with the real
# binary, and `tierfs fluid-mount` mounts what a Fluid config.json says at its targetPath
# and unmounts on SIGTERM.
source "$(dirname "$0")/lib.sh"
need_fuse
K8S=$(cd "$(dirname "$0")/../../packaging/k8s" && pwd)

out=$("$K8S/validate" --tierfs "$TIERFS") || fail "manifests: $out"
grep -q "^16 objects in 7 files: 0 problems$" <<<"$out" || fail "validate said: $out"
if command -v yamllint > /dev/null; then
  yamllint -d "{extends: relaxed, rules: {line-length: {max: 120}}}" "$K8S" || fail "yamllint"
fi
pass "k8s + Fluid manifests: $out"

# The cluster cache's start-up command, run as the container would (paths moved under
# $WORK), makes a config that nginx itself accepts.
mkdir -p "$WORK/kc/etc" "$WORK/kc/cache"
python3 - "$K8S/cluster-cache.yaml" "$WORK/kc" > "$WORK/kc/run.sh" <<'PY'
import sys, yaml
docs = list(yaml.safe_load_all(open(sys.argv[1])))
kc = sys.argv[2]
for k, v in docs[0]["data"].items():
    open(f"{kc}/etc/{k}", "w").write(v)
args = docs[1]["spec"]["template"]["spec"]["containers"][0]["args"][0]
args = args.replace("/etc/tierfs-cache", f"{kc}/etc").replace("/cache", f"{kc}/cache")
args = args.replace("chown -R nginx", "chown -R root")
print(args.replace('exec nginx -c', 'nginx -t -c').replace(' -g "daemon off;"', ""))
PY
sh "$WORK/kc/run.sh" > "$WORK/kc/out" 2>&1 || fail "cluster cache config: $(cat "$WORK/kc/out")"
grep -q "test is successful" "$WORK/kc/out" || fail "nginx -t said: $(cat "$WORK/kc/out")"
grep -q "^data.example.org 1;" "$WORK/kc/cache/nginx.conf" || fail "the origins list was not filled in"
pass "cluster-cache.yaml: its start-up command makes a config that nginx -t accepts"

# The checker is not a rubber stamp: each broken copy is caught with the reason.
mkdir -p "$WORK/k8s"
broken() {  # broken NAME SED-EXPR FILE EXPECTED
  sed "$2" "$K8S/$3" > "$WORK/k8s/$1.yaml"
  cmp -s "$K8S/$3" "$WORK/k8s/$1.yaml" && fail "mutation $1 changed nothing"
  got=$("$K8S/validate" --tierfs "$TIERFS" "$WORK/k8s/$1.yaml") && fail "$1 passed: $got"
  grep -q "$4" <<<"$got" || fail "$1: expected '$4', got: $got"
}
broken typo 's/imagePullPolicy: IfNotPresent/imagePulPolicy: IfNotPresent/' sidecar-pod.yaml "unknown field 'imagePulPolicy'"
broken option 's/--cache-size 40G/--cache-sise 40G/' sidecar-pod.yaml "has no option --cache-sise"
broken unprivileged 's/privileged: true.*/privileged: false/' sidecar-pod.yaml "needs privileged"
broken propagation 's/mountPropagation: HostToContainer/mountPropagation: Both/' sidecar-pod.yaml "not one of"
broken quantity 's/memory: 6Gi/memory: 6 GB/' sidecar-pod.yaml "not a resource quantity"
broken selector 's/^      app: tierfs-imagenet$/      app: other/' daemonset.yaml "does not match"
broken volume 's/^    - name: cache$/    - name: kache/' fluid/dataset.yaml "names no volume"
broken jobrestart 's/restartPolicy: Never/restartPolicy: Always/' fluid/dataload-job.yaml "Never or OnFailure"
broken subcommand 's/tierfs warm/tierfs warmup/' fluid/dataload-job.yaml "not a tierfs command"
broken fstype 's/fileSystemType: fuse.tierfs/fileSytemType: fuse.tierfs/' fluid/thinruntimeprofile.yaml "unknown field"
pass "validate catches typos, unknown options, missing privileges, bad quantities, selectors, volumes"

# The DaemonSet's ConfigMap is a tierfs --config file: it must parse (the mount then stops
# at the mountpoint, which does not exist here).
python3 -c '
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"] == "ConfigMap": open(sys.argv[2], "w").write(d["data"]["imagenet.toml"])
' "$K8S/daemonset.yaml" "$WORK/imagenet.toml"
err=$("$TIERFS" mount --config "$WORK/imagenet.toml" 2>&1) && fail "mount from the ConfigMap succeeded?"
grep -q "mountpoint '/mnt/tierfs/imagenet'" <<<"$err" || fail "ConfigMap config did not parse: $err"
pass "DaemonSet ConfigMap parses as a tierfs --config file"

# Fluid: config.json as the ThinRuntime controller writes it (one line), an encrypted
# option as the path of a mounted secret file.
DATA=$WORK/data
"$TOOLS/gen-dataset" "$DATA" --files 50 --file-size 30000 --per-dir 25 --big 4
mkdir -p "$WORK/secrets/s3"
printf 'AKIDSECRETVALUE\n' > "$WORK/secrets/s3/access-key"
TARGET=$WORK/runtime-mnt/thin/default/demo/thin-fuse
cat > "$WORK/config.json" <<EOF
{"mounts":[{"mountPoint":"local://$DATA","name":"demo","options":{"cache-size":"256M","aws-access-key-id":"$WORK/secrets/s3/access-key"},"path":"/"}],"targetPath":"$TARGET","runtimeOptions":{"cache-dir":"$WORK/fluid-cache","ram-size":"32M","cache-size":"1G"},"accessModes":["ReadOnlyMany"]}
EOF
dry=$("$TIERFS" fluid-mount "$WORK/config.json" --dry-run) || fail "dry run failed: $dry"
grep -q "^tierfs mount $DATA $TARGET -f -o allow_other,cache_dir=$WORK/fluid-cache,cache_size=256M,ram_size=32M$" <<<"$dry" ||
  fail "dry run said: $dry"
grep -q "AKIDSECRETVALUE" <<<"$dry" && fail "dry run printed the secret"
MOUNTS+=("$TARGET")
"$TIERFS" fluid-mount "$WORK/config.json" 2> "$WORK/fluid.log" &
fluid=$!
for _ in $(seq 100); do is_mounted "$TARGET" && break; sleep 0.1; done
is_mounted "$TARGET" || fail "fluid-mount did not mount at targetPath: $(cat "$WORK/fluid.log")"
diff -r "$DATA" "$TARGET" > /dev/null || fail "fluid mount: trees differ"
[ "$(stat_field "$TARGET" '["tiers"]["ram"]["capacity_bytes"]')" -eq $((32 << 20)) ] || fail "ram-size not applied"
grep -q "AKIDSECRETVALUE" "$WORK/fluid.log" && fail "the secret reached the log"
kill -TERM $fluid
rc=0; wait $fluid || rc=$?
[ $rc -eq 0 ] || fail "fluid-mount exited $rc on SIGTERM: $(cat "$WORK/fluid.log")"
is_mounted "$TARGET" && fail "still mounted after SIGTERM"
pass "fluid-mount: mounted config.json's source at targetPath, identical tree; SIGTERM unmounted, exit 0"

echo '{"mounts":[],"targetPath":"/x"}' > "$WORK/bad.json"
err=$("$TIERFS" fluid-mount "$WORK/bad.json" 2>&1) && fail "empty mounts accepted"
[ "$(echo "$err" | wc -l)" -eq 1 ] || fail "more than one line: $err"
err=$("$TIERFS" fluid-mount "$WORK/none.json" 2>&1) && fail "missing config accepted"
pass "fluid-mount refuses a bad or missing config.json in one line: $err"

# The Debian package: contents, dependencies, and the real mount(8) and fstab paths
# through its helper once installed.
ROOTDIR=$(cd "$(dirname "$0")/../.." && pwd)
DEB=$("$ROOTDIR/packaging/debian/build-deb" --build-dir "$(dirname "$TIERFS")" --out "$WORK") ||
  fail "build-deb failed"
contents=$(dpkg-deb -c "$DEB" | awk '{print $6}')
for f in ./usr/bin/tierfs ./usr/sbin/mount.fuse.tierfs ./usr/sbin/mount.tierfs \
  ./lib/systemd/system/tierfs@.service ./usr/share/man/man1/tierfs.1.gz \
  ./usr/share/doc/tierfs/examples/example.conf ./usr/share/doc/tierfs/copyright; do
  grep -qx "$f" <<<"$contents" || fail "package lacks $f"
done
depends=$(dpkg-deb -f "$DEB" Depends)
for d in libfuse3-3 librocksdb libcurl4 liburing2 libnfs fuse3; do
  grep -q "$d" <<<"$depends" || fail "Depends lacks $d: $depends"
done
dpkg-deb -x "$DEB" "$WORK/deb-root"
grep -q "^ExecStart=/usr/bin/tierfs mount -f" "$WORK/deb-root/lib/systemd/system/tierfs@.service" ||
  fail "unit does not run /usr/bin/tierfs"
zcat "$WORK/deb-root/usr/share/man/man1/tierfs.1.gz" | groff -man -Tutf8 -ww -z 2> "$WORK/groff.err"
[ ! -s "$WORK/groff.err" ] || fail "man page warnings: $(cat "$WORK/groff.err")"
pass "package: binary, helpers, unit, man page; Depends: $depends"

# Every option the binary knows is documented in the man page.
man_text=$(zcat "$WORK/deb-root/usr/share/man/man1/tierfs.1.gz" | sed 's/\\-/-/g')
for cmd in mount "index build" "index stat" "index publish" "index refresh" stats warm unmount fluid-mount; do
  for opt in $("$TIERFS" $cmd --help | grep -o -- '--[a-z][a-z0-9-]*' | sort -u); do
    [ "$opt" = --help ] && continue
    grep -q -- "$opt" <<<"$man_text" || fail "man page does not document '$cmd $opt'"
  done
done
pass "man page documents every option of every command"

if [ -e /usr/bin/tierfs ] && ! dpkg -s tierfs > /dev/null 2>&1; then
  echo "SKIP: /usr/bin/tierfs exists and is not from the package; not installing over it"
  exit 0
fi
dpkg -i "$DEB" > /dev/null || fail "dpkg -i failed"
trap 'dpkg -r tierfs > /dev/null 2>&1 || true; cleanup' EXIT
/usr/bin/tierfs --version | grep -q "^tierfs " || fail "installed tierfs does not run"
man -w tierfs > /dev/null || fail "man tierfs not found"
FMNT=$WORK/fstab-mnt
mkdir -p "$FMNT"
MOUNTS+=("$FMNT")
mount -t fuse.tierfs "$DATA" "$FMNT" -o "cache_dir=$WORK/deb-cache,cache_size=64M,ram_size=16M,_netdev,nofail" ||
  fail "mount -t fuse.tierfs failed"
is_mounted "$FMNT" || fail "mount -t fuse.tierfs did not mount"
cmp "$DATA/big.bin" "$FMNT/big.bin" || fail "mount -t: wrong bytes"
umount "$FMNT" || fail "umount failed"
for _ in $(seq 50); do is_mounted "$FMNT" || break; sleep 0.1; done
echo "$DATA $FMNT fuse.tierfs cache_dir=$WORK/deb-cache,cache_size=64M,_netdev,nofail,x-systemd.automount,noatime 0 0" > "$WORK/fstab"
mount -T "$WORK/fstab" "$FMNT" || fail "mount from an fstab line failed"
is_mounted "$FMNT" || fail "fstab mount did not mount"
diff -r "$DATA" "$FMNT" > /dev/null || fail "fstab mount: trees differ"
"$TIERFS" unmount "$FMNT"
# A namespace from fstab: config=FILE names a TOML file of [[source]] tables.
printf 'cache-dir = "%s"\n[[source]]\npath = "/a"\nurl = "%s"\n[[source]]\npath = "/b/c"\nurl = "%s"\n' \
  "$WORK/ns-cache" "$DATA" "$DATA" > "$WORK/ns.toml"
echo "none $FMNT fuse.tierfs config=$WORK/ns.toml,_netdev,nofail 0 0" > "$WORK/fstab"
mount -T "$WORK/fstab" "$FMNT" || fail "mount of a namespace from an fstab line failed"
diff -r "$DATA" "$FMNT/a" > /dev/null && diff -r "$DATA" "$FMNT/b/c" > /dev/null ||
  fail "fstab namespace mount: trees differ"
"$TIERFS" unmount "$FMNT"
pass "installed package: mount -t fuse.tierfs and fstab lines (_netdev,nofail,x-systemd.automount; config= of two sources) mount"

# The installed systemd unit: systemd-analyze verify, then run as systemd would (Type=notify,
# EnvironmentFile, ExecStartPre/ExecStart/ExecStop) with a config like the example's.
UNIT=/lib/systemd/system/tierfs@.service
if command -v systemd-analyze > /dev/null; then
  cp "$UNIT" "$WORK/tierfs@demo.service"
  out=$(systemd-analyze verify "$WORK/tierfs@demo.service" 2>&1 | grep -v "EnvironmentFile\|/etc/tierfs" || true)
  [ -z "$out" ] || fail "systemd-analyze verify: $out"
fi
SMNT=$WORK/systemd-mnt
MOUNTS+=("$SMNT")
cat > "$WORK/demo.conf" <<CONF
SOURCE=$DATA
MOUNTPOINT=$SMNT
OPTIONS=--cache-dir $WORK/unit-cache --cache-size 64M --ram-size 16M -o allow_other
CONF
coproc UNITRUN { python3 "$(dirname "$0")/run_unit.py" "$UNIT" demo "$WORK/demo.conf" 2> "$WORK/unit.err"; }
read -r -t 60 line <&"${UNITRUN[0]}" || fail "unit run: no output"
[ "$line" = ready ] || fail "unit run: $line $(cat "$WORK/unit.err")"
is_mounted "$SMNT" || fail "READY=1 but not mounted"
cmp "$DATA/big.bin" "$SMNT/big.bin" || fail "unit mount: wrong bytes"
echo go >&"${UNITRUN[1]}"
read -r -t 60 line <&"${UNITRUN[0]}" || fail "unit run: no answer after ExecStop: $(cat "$WORK/unit.err")"
[ "$line" = stopped ] || fail "unit stop: $line $(cat "$WORK/unit.err")"
is_mounted "$SMNT" && fail "mounted after ExecStop"
pass "tierfs@.service: verify clean; ExecStartPre+ExecStart -> READY=1 once serving; ExecStop -> STOPPING=1, exit 0"

dpkg -r tierfs > /dev/null || fail "dpkg -r failed"
[ ! -e /usr/sbin/mount.fuse.tierfs ] || fail "helper left after dpkg -r"
pass "dpkg -r removes the package cleanly"
