// `tierfs mount`: validates everything it can before touching the mountpoint, builds or
// opens the index, wires store → tiers → filesystem → FUSE, and serves until unmounted.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "ufs/store.h"

namespace tierfs {

// Ranges of --threads, --spin-us and --index-refresh (rows of the option table,
// mount_options.cc, which checks them in every spelling).
inline constexpr unsigned kMaxThreads = 1024;
inline constexpr unsigned kMaxSpinUs = 100000;
inline constexpr long kMaxIndexRefresh = 7 * 86400;
inline constexpr unsigned kMaxFetchBudget = 1024;

// One source of a mount that serves several, each under its own path (--source PATH=URL,
// a [[source]] table of the config file, a mount of a Fluid Dataset).
struct SourceSpec {
  std::string path = "/";  // where it appears in the mount: "/spark", "/apache/hbase"
  std::string url;
  // This source's remote-access options (rows of the option table with `store`, keys in
  // any spelling), applied over the mount's own ones.
  std::vector<std::pair<std::string, std::string>> options;
  // S3 keys of this source only (a Fluid mount's encrypted options); never printed.
  std::string s3_access_key_id, s3_secret_access_key, s3_session_token;
  StoreOptions store;  // the mount's remote-access options with the above applied
};

struct MountConfig {
  std::string source;
  // Several sources, or one under a path: set by --source (any spelling) and [[source]];
  // ResolveSources folds a lone source at "/" into `source`.
  std::vector<SourceSpec> sources;
  std::string mountpoint;
  // An index directory, or a pointer to a published index (URL or file); empty:
  // <cache_dir>/index, built on first mount.
  std::string index_path;
  long index_refresh = -1;  // seconds between checks for a new revision; -1: 60 for a
                            // published index, 0 (never) otherwise
  std::string cache_dir;    // empty: a per-source directory under the user's cache
  uint64_t cache_size = 10ULL << 30;
  uint64_t ram_size = 1ULL << 30;
  uint64_t block_size = 1 << 20;
  bool foreground = false;
  bool debug = false;
  bool rebuild_index = false;
  // FUSE passthrough for fully cached large files, where allowed: "auto" when most of the
  // data set's bytes are in large files (opens then cost a round trip), "on", "off".
  std::string passthrough = "auto";
  bool fuse_uring = false;     // serve FUSE requests over io_uring where the kernel allows
  unsigned threads = 0;        // 0: 4 per core; at most kMaxThreads
  unsigned spin_us = 200;      // FUSE workers poll this long for the next request before
                               // sleeping; at most kMaxSpinUs
  unsigned fetch_budget = 64;  // origin requests in flight: demand, warm and read-ahead
  // "dataset": once readers are spread over the tree, fetch the rest of the data set into
  // the cache's free room in the background; "off".
  std::string prefetch = "off";
  std::string log_level = "info";
  std::string fuse_options;     // passed to libfuse (allow_other, ...)
  std::string metrics_address;  // "HOST:PORT" for Prometheus /metrics; empty: none
  StoreOptions store;           // remote access: TLS, timeouts, S3 endpoint and credentials
};

// Opens the mount's source: its one store, or a NamespaceStore of `config.sources`
// (resolved by ResolveSources). With `unreachable`, a store that cannot be reached now
// opens offline (its calls fail until it is back) and the first such error is kept there;
// without, it is an error.
Result<std::unique_ptr<Store>> OpenSources(const MountConfig& config, Status* unreachable);

// Runs the mount. Returns the process exit code; errors are printed as one line.
int RunMount(MountConfig config);

// The default cache directory for `source_url`.
std::string DefaultCacheDir(const std::string& source_url);

// True if `path` is currently the mountpoint of a tierfs filesystem.
bool IsTierfsMount(const std::string& path);

// Runs `fusermount3 FLAG MOUNTPOINT` (-u, -uz); true if it exited 0.
bool RunFusermount3(const char* flag, const std::string& mountpoint);

}  // namespace tierfs
