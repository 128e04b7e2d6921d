# Source me. NFS test server: nfs-ganesha (VFS FSAL) exporting a directory read-only over
# NFSv4 on 127.0.0.1, pseudo path /data. Needs rpcbind.
# start_ganesha DATA_DIR STATE_DIR
start_ganesha() {
  local data=$1 state=$2
  mkdir -p "$state"
  cat > "$state/ganesha.conf" <<CONF
NFS_CORE_PARAM {
  Bind_addr = 127.0.0.1;
  Enable_NLM = false;
  Enable_RQUOTA = false;
  Protocols = 4;
}
NFSV4 { Graceless = true; }
NFS_KRB5 { Active_krb5 = false; }
EXPORT {
  Export_Id = 77;
  Path = "$data";
  Pseudo = /data;
  Access_Type = RO;
  Squash = No_Root_Squash;
  Protocols = 4;
  Transports = TCP;
  SecType = sys;
  FSAL { Name = VFS; }
}
CONF
  pgrep -x rpcbind >/dev/null || rpcbind -w 2>/dev/null || rpcbind || return 1
  ganesha.nfsd -f "$state/ganesha.conf" -L "$state/ganesha.log" -p "$state/ganesha.pid" || return 1
  for _ in $(seq 100); do
    nfs-ls "nfs://127.0.0.1/data?version=4" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "ganesha did not start: $(tail -5 "$state/ganesha.log")" >&2
  return 1
}
stop_ganesha() {
  [ -f "$1/ganesha.pid" ] || return 0
  local pid
  pid=$(cat "$1/ganesha.pid")
  kill "$pid" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null; true
}
