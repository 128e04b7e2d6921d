# Source me. S3 test server: the npm package s3rver (S3 API, loopback only).
S3RVER_HOME=${S3RVER_HOME:-/opt/tierfs-test}
S3RVER_BIN=$S3RVER_HOME/node_modules/.bin/s3rver

install_s3rver() {
  [ -x "$S3RVER_BIN" ] && return 0
  mkdir -p "$S3RVER_HOME"
  (cd "$S3RVER_HOME" && npm install --no-audit --no-fund --silent s3rver@3.7.1 >/dev/null 2>&1) || return 1
  [ -x "$S3RVER_BIN" ]
}

# start_s3rver STATE_DIR PORT BUCKET: runs s3rver in the background; pid in STATE_DIR/pid.
start_s3rver() {
  local state=$1 port=$2 bucket=$3
  mkdir -p "$state/data"
  NODE_OPTIONS=--openssl-legacy-provider "$S3RVER_BIN" -d "$state/data" -a 127.0.0.1 -p "$port" \
    --configure-bucket "$bucket" --silent > "$state/log" 2>&1 &
  echo $! > "$state/pid"
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && return 0; sleep 0.1; done
  echo "s3rver did not start: $(cat "$state/log")" >&2
  return 1
}
stop_s3rver() { [ -f "$1/pid" ] && kill "$(cat "$1/pid")" 2>/dev/null; true; }

# s3_upload ENDPOINT BUCKET DIR: PUTs every file under DIR as a key (its relative path).
s3_upload() { "$(dirname "${BASH_SOURCE[0]}")/s3-put" "$@"; }
