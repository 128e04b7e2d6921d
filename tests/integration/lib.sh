# Shared helpers for integration tests. Source it; it sets TIERFS, WORK and a cleanup trap.
set -euo pipefail

TIERFS=${TIERFS:?set TIERFS to the tierfs binary}
TOOLS=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../tools" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tierfs-it.XXXXXX")
MOUNTS=()
SERVER_PIDS=()  # background servers a test started; killed on exit

cleanup() {
  local m
  for m in "${MOUNTS[@]}"; do
    if grep -q " $m fuse" /proc/mounts; then fusermount3 -uz "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; fi
  done
  pkill -f "tierfs mount .* $WORK/" 2>/dev/null || true
  for m in "${SERVER_PIDS[@]}"; do kill "$m" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok - $*"; }

need_fuse() {
  if [ ! -c /dev/fuse ]; then
    echo "SKIP: /dev/fuse is absent; real-mount tests need it"
    exit 77
  fi
}

is_mounted() { grep -q " $1 fuse.tierfs " /proc/mounts; }

# mount_tierfs SOURCE MOUNTPOINT [args...]: mounts in the background and records it.
mount_tierfs() {
  local src=$1 mnt=$2
  shift 2
  mkdir -p "$mnt" 2>/dev/null || true  # (a dead mount there answers ENOTCONN)
  MOUNTS+=("$mnt")
  "$TIERFS" mount "$src" "$mnt" "$@" || fail "mount of $src at $mnt failed"
  is_mounted "$mnt" || fail "mount returned 0 but $mnt is not mounted"
}

unmount_tierfs() {
  local mnt=$1
  fusermount3 -u "$mnt"
  for _ in $(seq 50); do is_mounted "$mnt" || return 0; sleep 0.1; done
  fail "$mnt still mounted after fusermount3 -u"
}

stats_json() { getfattr --absolute-names -n user.tierfs.stats --only-values "$1"; }
stat_field() { stats_json "$1" | python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d'+sys.argv[1]))" "$2"; }

SERVERS=$TOOLS/servers
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() {  # wait_http URL: until it answers (5 s at most)
  for _ in $(seq 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.05; done
  fail "server at $1 did not start"
}

# start_fault_server DIR [PORT]: serves DIR with tools/servers/fault-server on loopback;
# sets PORT, URL and SERVER (its pid). arm QUERY arms a fault (see the server's doc).
start_fault_server() {
  PORT=${2:-$(free_port)}
  URL=http://127.0.0.1:$PORT
  "$SERVERS/fault-server" "$1" "$PORT" &
  SERVER=$!
  SERVER_PIDS+=($SERVER)
  wait_http "$URL/"
}
arm() { curl -sf "$URL/__faults?$1" > /dev/null || fail "cannot arm $1"; }

# process_running PID: true while PID runs; a zombie (exited, not yet reaped by whoever
# adopted it) has finished and does not count.
process_running() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}
