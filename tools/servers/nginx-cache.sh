# Source me. start_nginx_cache ADDR PORT STATE_DIR [SLICE] [CA_FILE]: a tierfs cluster cache
# from packaging/cluster/nginx-cache.conf on ADDR:PORT (a loopback address such as
# 127.0.0.2), its upstream requests bound to ADDR so the origin's log tells caches apart.
# Its access log (STATE_DIR/access.log) has the cache status of each request.
start_nginx_cache() {
  local addr=$1 port=$2 state=$3 slice=${4:-1m} ca=${5:-/etc/ssl/certs/ca-certificates.crt}
  local conf_in
  conf_in=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../packaging/cluster" && pwd)/nginx-cache.conf
  mkdir -p "$state/tmp" "$state/cache"
  sed -e "s|@LISTEN@|$addr:$port|" -e "s|@STATE@|$state|g" -e "s|@MAX_SIZE@|4g|" \
      -e "s|@SLICE@|$slice|" -e "s|@RESOLVER@|127.0.0.1|" -e "s|@CA_FILE@|$ca|" \
      -e "s|@BIND@|$addr|" -e "s|@ORIGINS_DEFAULT@|1|" -e "s|@ORIGINS@||" \
      -e "s|worker_processes auto;|worker_processes 1;|" "$conf_in" > "$state/nginx.conf"
  # As root, workers would run as nginx's default user, who cannot enter a test's 0700
  # temp dir: keep them as the caller.
  [ "$(id -u)" = 0 ] && sed -i '1i user root;' "$state/nginx.conf"
  nginx -c "$state/nginx.conf" -p "$state" 2> "$state/start.log" || { cat "$state/start.log" >&2; return 1; }
  for _ in $(seq 50); do
    curl -sf -o /dev/null "http://$addr:$port/.tierfs-cache-health" && return 0
    sleep 0.1
  done
  echo "nginx cache on $addr:$port did not start: $(cat "$state/error.log")" >&2
  return 1
}
# kill_nginx_cache STATE_DIR: stops it at once (SIGKILL to master and workers), as a crash.
kill_nginx_cache() {
  local pid
  pid=$(cat "$1/nginx.pid" 2>/dev/null) || return 0
  kill -STOP "$pid" 2>/dev/null || true  # no respawning of the workers killed below
  kill -KILL $(pgrep -P "$pid") "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  rm -f "$1/nginx.pid"
}
stop_nginx_cache() { [ -f "$1/nginx.pid" ] && kill "$(cat "$1/nginx.pid")" 2>/dev/null; true; }
source "$(dirname "${BASH_SOURCE[0]}")/nginx.sh"  # nginx_conf_head
# start_stock_cache ADDR PORT STATE_DIR: nginx as anyone would set up a cache in front of
# an origin, none of tierfs's settings (no slice module, no cache lock, HEAD converted to
# GET): proxy_cache with a validity for 200s. Fetches bound to ADDR; log in STATE_DIR.
start_stock_cache() {
  local addr=$1 port=$2 state=$3
  mkdir -p "$state/tmp" "$state/cache"
  { nginx_conf_head "$state" 1; cat <<CONF
  proxy_cache_path $state/cache keys_zone=stock:10m max_size=4g;
  server {
    listen $addr:$port;
    location / {
      proxy_pass http://\$http_host;
      proxy_bind $addr;
      proxy_cache stock;
      proxy_cache_valid 200 1h;
    }
  }
}
CONF
  } > "$state/nginx.conf"
  [ "$(id -u)" = 0 ] && sed -i '1i user root;' "$state/nginx.conf"
  nginx -c "$state/nginx.conf" -p "$state" 2> "$state/start.log" || { cat "$state/start.log" >&2; return 1; }
  for _ in $(seq 50); do  # listening (a request to itself would proxy to itself)
    (exec 3<> "/dev/tcp/$addr/$port") 2> /dev/null && return 0
    sleep 0.1
  done
  echo "stock nginx cache on $addr:$port did not start: $(cat "$state/error.log")" >&2
  return 1
}
