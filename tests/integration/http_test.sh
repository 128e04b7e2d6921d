#!/usr/bin/env bash
# HTTP sources against real servers on loopback: nginx (html and json autoindex), apache2
# (mod_autoindex) and python's http.server. Index build + mount + diff -r each; with nginx
# also: the second read sends zero requests.
source "$(dirname "$0")/lib.sh"
need_fuse
source "$SERVERS/nginx.sh"
source "$SERVERS/apache.sh"

DATA=$WORK/data
"$TOOLS/gen-dataset" "$DATA" --files 300 --file-size 30000 --per-dir 60 --big "${BIG_MIB:-300}" --tricky
find "$DATA" -type l -delete  # web servers serve symlinks as files; compared elsewhere
printf 'x' > "$DATA/tricky/100%"
chmod -R a+rX "$WORK"
pass "data: $(find "$DATA" -type f | wc -l) files, names with spaces, unicode, %, #, ?, &"

check_source() {  # check_source LABEL URL [requests-counter-command]
  local label=$1 url=$2 counter=${3:-}
  local idx=$WORK/idx-$label mnt=$WORK/mnt-$label
  "$TIERFS" index build "$url" --index "$idx" > "$WORK/build-$label.log" 2>&1 || { cat "$WORK/build-$label.log"; fail "$label: index build failed"; }
  mount_tierfs "$url" "$mnt" --index "$idx" --cache-dir "$WORK/cache-$label" --cache-size 1G --ram-size 256M
  diff -r "$DATA" "$mnt" > "$WORK/diff-$label" 2>&1 || { head -20 "$WORK/diff-$label"; fail "$label: diff -r found differences"; }
  pass "$label: index build + mount + diff -r clean"
  if [ -n "$counter" ]; then
    sync; echo 3 > /proc/sys/vm/drop_caches
    local before after
    before=$($counter)
    diff -r "$DATA" "$mnt" > /dev/null || fail "$label: second read differs"
    after=$($counter)
    [ "$before" = "$after" ] || fail "$label: the second read sent $((after - before)) requests"
    pass "$label: second read (page cache dropped) sent 0 requests"
  fi
  unmount_tierfs "$mnt"
}

NGINX=$WORK/nginx; PORT=$(free_port)
start_nginx "$DATA" "$NGINX" "$PORT" || fail "nginx did not start"
nginx_requests() { wc -l < "$NGINX/access.log"; }
check_source nginx-html "http://127.0.0.1:$PORT/html/" nginx_requests
: > "$NGINX/access.log"  # count the json build's requests alone
check_source nginx-json "http://127.0.0.1:$PORT/json/" nginx_requests
# The json listing gives sizes and mtimes: the build must not HEAD every file.
heads=$(grep -c '"HEAD ' "$NGINX/access.log" || true)
[ "$heads" -lt 10 ] || fail "json index build sent $heads HEAD requests"
pass "nginx json index build sent $heads HEAD requests"
stop_nginx "$NGINX"

APACHE=$WORK/apache; PORT=$(free_port)
start_apache "$DATA" "$APACHE" "$PORT" || fail "apache did not start"
check_source apache "http://127.0.0.1:$PORT/"
stop_apache "$APACHE"

PORT=$(free_port)
python3 -m http.server "$PORT" --bind 127.0.0.1 --directory "$DATA" > "$WORK/pyhttp.log" 2>&1 &
PYPID=$!
SERVER_PIDS+=($PYPID)
wait_http "http://127.0.0.1:$PORT/"
check_source python "http://127.0.0.1:$PORT/"
kill $PYPID

# HTTPS: certificates are verified by default; --ca-file trusts a private CA; --insecure
# is an explicit opt-out. (python's http.server behind TLS, a self-signed certificate.)
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=127.0.0.1" \
  -addext "subjectAltName=IP:127.0.0.1" -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2> /dev/null ||
  fail "openssl could not make a certificate"
TPORT=$(free_port)
python3 - "$TPORT" "$DATA" "$WORK/cert.pem" "$WORK/key.pem" > "$WORK/tls.log" 2>&1 <<'PY' &
import functools, http.server, ssl, sys
port, root, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=root)
server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
server.serve_forever()
PY
SERVER_PIDS+=($!)
for _ in $(seq 100); do curl -sk -o /dev/null "https://127.0.0.1:$TPORT/" && break; sleep 0.05; done
err=$("$TIERFS" index build "https://127.0.0.1:$TPORT/" --index "$WORK/tls-idx" 2>&1) && fail "an unverifiable certificate was accepted"
[ "$(echo "$err" | wc -l)" -eq 1 ] && grep -qi "certificate" <<<"$err" || fail "untrusted certificate said: $err"
"$TIERFS" index build "https://127.0.0.1:$TPORT/" --index "$WORK/tls-idx" --ca-file "$WORK/cert.pem" > /dev/null 2>&1 ||
  fail "--ca-file did not trust the certificate"
mount_tierfs "https://127.0.0.1:$TPORT/" "$WORK/mnt-tls" --index "$WORK/tls-idx" --cache-dir "$WORK/cache-tls" --ca-file "$WORK/cert.pem"
cmp "$DATA/big.bin" "$WORK/mnt-tls/big.bin" || fail "https: wrong bytes"
unmount_tierfs "$WORK/mnt-tls"
"$TIERFS" index build "https://127.0.0.1:$TPORT/" --index "$WORK/tls-idx2" --insecure > /dev/null 2>&1 || fail "--insecure refused"
pass "https: an unverified certificate is refused ($err); --ca-file and --insecure work"
