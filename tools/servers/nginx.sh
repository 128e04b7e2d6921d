# Source me. start_nginx DATA_DIR STATE_DIR PORT: nginx on 127.0.0.1:PORT serving DATA_DIR
# as / and /html/ (autoindex html) and /json/ (autoindex json); access log in STATE_DIR.

# nginx_conf_head STATE_DIR WORKERS: the start of an nginx.conf whose pid, logs and
# temporary files are all under STATE_DIR, up to inside "http {".
nginx_conf_head() {
  local state=$1 workers=$2
  cat <<CONF
worker_processes $workers;
error_log $state/error.log warn;
pid $state/nginx.pid;
events { worker_connections 1024; }
http {
  access_log $state/access.log;
  client_body_temp_path $state/tmp/body;
  proxy_temp_path $state/tmp/proxy;
  fastcgi_temp_path $state/tmp/fastcgi;
  uwsgi_temp_path $state/tmp/uwsgi;
  scgi_temp_path $state/tmp/scgi;
CONF
}

start_nginx() {
  local data=$1 state=$2 port=$3
  mkdir -p "$state/tmp"
  { nginx_conf_head "$state" 2; cat <<CONF
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  sendfile on;
  keepalive_requests 100000;
  server {
    listen 127.0.0.1:$port;
    location / { root $data; autoindex on; autoindex_exact_size on; }
    location /html/ { alias $data/; autoindex on; autoindex_exact_size on; }
    location /json/ { alias $data/; autoindex on; autoindex_format json; }
  }
}
CONF
  } > "$state/nginx.conf"
  nginx -c "$state/nginx.conf" -p "$state" || return 1
  local _i
  for _i in $(seq 50); do
    if curl -sf -o /dev/null "http://127.0.0.1:$port/html/"; then
      # nginx logs a request after answering it: let the probe's line land before a test
      # empties the log to count requests.
      for _i in $(seq 50); do [ -s "$state/access.log" ] && break; sleep 0.05; done
      return 0
    fi
    sleep 0.1
  done
  echo "nginx did not start: $(cat "$state/error.log")" >&2
  return 1
}
stop_nginx() { [ -f "$1/nginx.pid" ] && kill "$(cat "$1/nginx.pid")" 2>/dev/null; true; }
