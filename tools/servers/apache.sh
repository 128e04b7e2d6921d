# Source me. start_apache DATA_DIR STATE_DIR PORT: apache2 with mod_autoindex (FancyIndexing,
# HTMLTable) on 127.0.0.1:PORT serving DATA_DIR at /. Runs as www-data: DATA_DIR must be
# world-readable.
start_apache() {
  local data=$1 state=$2 port=$3 mods=/usr/lib/apache2/modules
  mkdir -p "$state"
  cat > "$state/httpd.conf" <<CONF
ServerRoot $state
ServerName 127.0.0.1
LoadModule mpm_event_module $mods/mod_mpm_event.so
LoadModule authz_core_module $mods/mod_authz_core.so
LoadModule dir_module $mods/mod_dir.so
LoadModule mime_module $mods/mod_mime.so
LoadModule autoindex_module $mods/mod_autoindex.so
Listen 127.0.0.1:$port
PidFile $state/httpd.pid
ErrorLog $state/error.log
LogFormat "%r %>s" short
CustomLog $state/access.log short
User www-data
Group www-data
TypesConfig /etc/mime.types
DocumentRoot "$data"
<Directory "$data">
  Options +Indexes +FollowSymLinks
  IndexOptions FancyIndexing HTMLTable NameWidth=*
  Require all granted
</Directory>
CONF
  apache2 -f "$state/httpd.conf" -k start || return 1
  for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$port/" && return 0; sleep 0.1; done
  echo "apache did not start: $(cat "$state/error.log")" >&2
  return 1
}
stop_apache() { [ -f "$1/httpd.pid" ] && kill "$(cat "$1/httpd.pid")" 2>/dev/null; true; }
