#include "cli/mount_command.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <utility>

#include "cli/daemon.h"
#include "cli/fail.h"
#include "cli/metrics_server.h"
#include "cli/mount_options.h"
#include "cli/source_stats.h"
#include "common/checksum.h"
#include "common/fd.h"
#include "common/log.h"
#include "common/memory.h"
#include "common/metrics.h"
#include "common/mountinfo.h"
#include "common/size.h"
#include "common/xattrs.h"
#include "fuse/device_channel.h"
#include "fuse/filesystem.h"
#include "fuse/lowlevel.h"
#include "fuse/packed_files.h"
#include "metadata/index.h"
#include "metadata/revisions.h"
#include "tiers/block.h"
#include "tiers/block_cache.h"
#include "tiers/nvme_tier.h"
#include "tiers/object_file_tier.h"
#include "tiers/ram_tier.h"
#include "ufs/http_client.h"
#include "ufs/metered_store.h"
#include "ufs/namespace_store.h"
#include "ufs/proxy_router.h"
#include "ufs/store.h"

namespace tierfs {
namespace fs = std::filesystem;

namespace {

// Holds an exclusive lock on <cache_dir>/lock for the life of the process.
Result<int> LockCacheDir(const std::string& dir) {
  std::string path = dir + "/lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno(errno, "cannot create lock file in cache dir '" + dir + "'");
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = {};
    (void)!::pread(fd, pid, sizeof pid - 1, 0);
    ::close(fd);
    std::string p(pid);
    while (!p.empty() && (p.back() == '\n' || p.back() == ' ')) p.pop_back();
    return Status(EBUSY, "cache dir '" + dir + "' is in use by another tierfs process" +
                             (p.empty() ? "" : " (pid " + p + ")"));
  }
  return fd;
}

void WritePid(int fd) {
  std::string pid = std::to_string(::getpid()) + "\n";
  (void)!::ftruncate(fd, 0);
  (void)!::pwrite(fd, pid.data(), pid.size(), 0);
}

Status PrepareCacheDir(const std::string& dir) {
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    if (!fs::is_directory(dir, ec))
      return Status(ENOTDIR, "cache dir '" + dir + "' is not a directory");
  } else {
    fs::create_directories(dir, ec);
    if (ec) return Status(ec.value(), "cannot create cache dir '" + dir + "': " + ec.message());
    ::chmod(dir.c_str(), 0700);
  }
  if (::access(dir.c_str(), R_OK | W_OK | X_OK) != 0) {
    return Status::FromErrno(errno, "cache dir '" + dir + "' is not writable");
  }
  return Status::Ok();
}

// A tierfs daemon that died (kill -9, OOM) leaves its mount behind: every access fails
// with ENOTCONN until it is detached. A new mount at the same place (a supervisor's
// restart, systemd's Restart=on-failure) clears it first, but only if /proc says it is a
// tierfs mount: anything else is left for its owner.
// True if /proc/self/mountinfo lists a tierfs mount at `path` (absolute, normalized).
bool ListedAsTierfsMount(const std::string& path) {
  for (const MountInfo& m : ReadMountInfo()) {
    if (m.fstype == "fuse.tierfs" && m.mountpoint == path) return true;
  }
  return false;
}

// A request to a FUSE mount whose daemon died fails with ENOTCONN, or with ECONNABORTED
// while the kernel is still tearing the connection down.
bool DeadConnection(int err) { return err == ENOTCONN || err == ECONNABORTED; }

bool ClearDeadTierfsMount(const std::string& mountpoint) {
  // Not canonicalized: resolving a dead mount's path fails with ENOTCONN.
  const std::string abs = fs::absolute(mountpoint).lexically_normal().string();
  if (!ListedAsTierfsMount(abs)) return false;
  std::fprintf(stderr, "tierfs: %s is the mount of a tierfs daemon that died; detaching it\n",
               abs.c_str());
  // Not root: the setuid helper may detach it.
  return ::umount2(abs.c_str(), MNT_DETACH) == 0 || RunFusermount3("-uz", abs);
}

Status CheckMountpoint(const std::string& mountpoint) {
  struct stat st;
  int rc = ::stat(mountpoint.c_str(), &st);
  if (rc != 0 && DeadConnection(errno) && ClearDeadTierfsMount(mountpoint)) {
    rc = ::stat(mountpoint.c_str(), &st);
  }
  if (rc != 0) {
    return Status::FromErrno(errno, "mountpoint '" + mountpoint + "'");
  }
  if (!S_ISDIR(st.st_mode))
    return Status(ENOTDIR, "mountpoint '" + mountpoint + "' is not a directory");
  if (IsTierfsMount(mountpoint)) {
    // The kernel may still answer stat from its cache; a dead daemon shows on a request
    // that must reach it.
    const bool dead =
        ::getxattr(mountpoint.c_str(), kStatsXattr, nullptr, 0) < 0 && DeadConnection(errno);
    if (!dead || !ClearDeadTierfsMount(mountpoint)) {
      return Status(EBUSY, "mountpoint '" + mountpoint + "' is already a tierfs mount");
    }
  }
  return Status::Ok();
}

// The on-disk tiers under the cache dir, sized so that everything there (blocks, object
// files, an index kept there, the lock) stays within --cache-size: the NVMe tier under
// <cache_dir>/blocks and, with passthrough, the object file tier under <cache_dir>/objects
// for objects of at least kLargeFileBytes (metadata/index.h; what the index counts as
// large), both drawing
// on one budget. Either may be null: the tier is disabled (size 0) or the disk refuses it
// (then the mount runs on what remains).
struct DiskTiers {
  std::unique_ptr<DiskBudget> budget;
  std::unique_ptr<NvmeTier> nvme;
  std::unique_ptr<ObjectFileTier> objects;
};

// `index_room`: what the cache dir keeps for index revisions (IndexRevisions::RoomFor).
Result<DiskTiers> OpenDiskTiers(const MountConfig& config, uint64_t index_room, bool objects) {
  DiskTiers t;
  if (config.cache_size == 0) return t;
  const uint64_t used = (64 << 10) + index_room;  // lock, LAYOUT, directory entries, indexes
  if (used >= config.cache_size) {
    return Status::Invalid("--cache-size " + FormatSize(config.cache_size) +
                           " leaves no room for blocks (the index and room for its next "
                           "revision take " +
                           FormatSize(used) + ")");
  }
  t.budget = std::make_unique<DiskBudget>(config.cache_size - used);
  // Blocks waiting to be written are memory beyond the RAM tier: a quarter of it at most.
  const uint64_t queue =
      std::clamp<uint64_t>(config.ram_size / 4, 4 * config.block_size, 64ULL << 20);
  const uint64_t min_object = std::max<uint64_t>(kLargeFileBytes, 2 * config.block_size);
  NvmeTierOptions o;
  o.dir = config.cache_dir + "/blocks";
  o.capacity = t.budget->capacity();
  o.block_size = config.block_size;
  o.max_queue_bytes = queue;
  o.budget = t.budget.get();
  o.skip_objects_from = objects ? min_object : 0;
  auto tier = NvmeTier::Open(o);
  if (tier.ok()) {
    t.nvme = std::move(*tier);
  } else if (tier.status().error() == EINVAL) {
    return tier.status();
  } else {
    TLOG_WARN("nvme cache disabled: {}", tier.status().message());
  }
  if (!objects) return t;
  ObjectFileTierOptions oo;
  oo.dir = config.cache_dir + "/objects";
  oo.budget = t.budget.get();
  oo.block_size = config.block_size;
  oo.min_object_size = min_object;
  oo.max_queue_bytes = queue;
  auto files = ObjectFileTier::Open(oo);
  if (files.ok()) {
    t.objects = std::move(*files);
  } else {
    TLOG_WARN("object file cache disabled (no passthrough): {}", files.status().message());
  }
  if (t.objects == nullptr && t.nvme != nullptr) {
    // The NVMe tier was told to leave large objects to the object tier: reopen it whole.
    t.nvme.reset();
    t.budget = std::make_unique<DiskBudget>(config.cache_size - used);
    o.budget = t.budget.get();
    o.skip_objects_from = 0;
    auto again = NvmeTier::Open(o);
    if (again.ok()) t.nvme = std::move(*again);
  }
  return t;
}

std::string Percent(int64_t part, uint64_t whole) {
  return std::to_string(whole == 0 ? 0
                                   : static_cast<int>(100.0 * static_cast<double>(part) /
                                                      static_cast<double>(whole))) +
         "%";
}

// Whether to ask the kernel for passthrough; says why not once (a notice, not an error).
// With passthrough every open() costs a round trip to the daemon (it must decide), so
// "auto" asks for it only when most of the data set's bytes are in files large enough to
// gain from it; a data set of small files keeps opens free.
bool WantPassthrough(const MountConfig& config, const IndexMeta& meta) {
  std::string why;
  if (config.passthrough == "off") return false;
  if (config.cache_size == 0) {
    why = "no disk cache (--cache-size 0)";
  } else if (!HasSysAdmin()) {
    why = "registering backing files needs CAP_SYS_ADMIN (root, or a privileged container)";
  } else if (config.passthrough == "auto" && meta.large_bytes >= 0 &&
             2 * static_cast<uint64_t>(meta.large_bytes) < meta.bytes) {
    why = Percent(meta.large_bytes, meta.bytes) + " of the data set's bytes are in files of " +
          FormatSize(kLargeFileBytes) + " or more, so opens stay free of round trips " +
          "(--passthrough on to change that)";
  }
  if (why.empty()) return true;
  TLOG_INFO("passthrough off: {}; cached files are read through the daemon", why);
  return false;
}

// Passthrough's state and counters for stats (JSON) and /metrics.
nlohmann::json PassthroughJson(const DeviceChannel* channel, const ObjectFileTier& objects) {
  const ObjectFileStats o = objects.ObjectStats();
  nlohmann::json j;
  j["state"] = channel == nullptr ? "off" : channel->usable() ? "on" : "off";
  if (channel != nullptr && !channel->why_not().empty()) j["why_off"] = channel->why_not();
  j["min_object_bytes"] = objects.min_object_size();
  j["objects"] = o.objects;
  j["objects_complete"] = o.complete;
  j["objects_eligible"] = o.verified;
  j["objects_pinned"] = o.pinned;
  j["evicted_pinned_bytes"] = o.evicted_pinned_bytes;
  j["verifications"] = o.verifications;
  j["admission_refused"] = o.admission_refused;
  if (channel != nullptr) {
    const PassthroughCounters& c = channel->counters();
    j["opens"] = c.opens.load();
    j["cached_opens"] = c.cached_opens.load();
    j["backing_registrations"] = c.backing_opens.load();
    j["backing_failures"] = c.failures.load();
    j["backing_files"] = channel->live_backing_files();
  }
  return j;
}

void WritePassthroughMetrics(MetricsWriter& w, const DeviceChannel* channel,
                             const ObjectFileTier& objects) {
  const ObjectFileStats o = objects.ObjectStats();
  auto d = [](uint64_t v) { return static_cast<double>(v); };
  w.Gauge("tierfs_passthrough_enabled", "1 when the kernel accepted FUSE passthrough", {},
          channel != nullptr && channel->usable() ? 1 : 0);
  w.Gauge("tierfs_passthrough_objects_eligible",
          "objects complete and verified in the object file tier (passthrough on open)", {},
          d(o.verified));
  w.Gauge("tierfs_passthrough_backing_files", "backing files registered with the kernel now", {},
          d(channel != nullptr ? channel->live_backing_files() : 0));
  w.Gauge("tierfs_passthrough_evicted_pinned_bytes",
          "bytes of evicted objects the kernel still reads (freed at the last close)", {},
          d(o.evicted_pinned_bytes));
  const uint64_t opens = channel != nullptr ? channel->counters().opens.load() : 0;
  const uint64_t cached = channel != nullptr ? channel->counters().cached_opens.load() : 0;
  w.Counter("tierfs_passthrough_opens_total", "opens of large files by how they were served",
            {{"mode", "passthrough"}}, d(opens));
  w.Counter("tierfs_passthrough_opens_total", "opens of large files by how they were served",
            {{"mode", "daemon"}}, d(cached));
  w.Counter("tierfs_passthrough_verifications_total",
            "whole objects read back and checked before their first passthrough open", {},
            d(o.verifications));
}

std::string SafeFsName(const std::string& url) {
  // No credentials or query string; commas and blanks would split mount options.
  std::string s = RedactUrl(url);
  for (char& c : s) {
    if (c == ',' || c == ' ' || c == '\t' || c == '\n') c = '_';
  }
  return s;
}

// Opens `url`; if it cannot be reached now and `unreachable` is set, opens it offline
// (calls fail until it is back) and keeps the first such error in `*unreachable`.
Result<std::unique_ptr<Store>> OpenReachable(const std::string& url, const StoreOptions& options,
                                             const std::string& label, Status* unreachable) {
  auto store = OpenStore(url, options);
  if (store.ok()) return store;
  const Status why(store.status().error(), label + store.status().message());
  if (unreachable == nullptr) return why;
  StoreOptions lazy = options;
  lazy.allow_offline = true;
  auto offline = OpenStore(url, lazy);
  if (!offline.ok()) return why;
  if (unreachable->ok()) *unreachable = why;
  return offline;
}

}  // namespace

Result<std::unique_ptr<Store>> OpenSources(const MountConfig& config, Status* unreachable) {
  if (config.sources.empty()) return OpenReachable(config.source, config.store, "", unreachable);
  std::vector<NamespaceSource> parts;
  for (const SourceSpec& spec : config.sources) {
    auto s = OpenReachable(spec.url, spec.store, "source " + spec.path + ": ", unreachable);
    if (!s.ok()) return s.status();
    parts.push_back(NamespaceSource{spec.path.substr(1), std::move(*s)});
  }
  auto ns = NamespaceStore::Make(std::move(parts));
  if (!ns.ok()) return ns.status();
  return std::unique_ptr<Store>(std::move(*ns));
}

bool IsTierfsMount(const std::string& path) {
  std::error_code ec;
  fs::path canonical = fs::weakly_canonical(path, ec);
  return !ec && ListedAsTierfsMount(canonical.string());
}

bool RunFusermount3(const char* flag, const std::string& mountpoint) {
  pid_t child = ::fork();
  if (child == 0) {
    ::execlp("fusermount3", "fusermount3", flag, mountpoint.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  return child > 0 && ::waitpid(child, &status, 0) == child && WIFEXITED(status) &&
         WEXITSTATUS(status) == 0;
}

std::string DefaultCacheDir(const std::string& source_url) {
  char hash[17];
  std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(Xxh3(source_url)));
  if (::geteuid() == 0) return std::string("/var/cache/tierfs/") + hash;
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  std::string base = xdg && *xdg ? xdg : std::string(home && *home ? home : "/tmp") + "/.cache";
  return base + "/tierfs/" + hash;
}

namespace {

// Runs `f` when it goes out of scope (a member of MountRuntime: a step of the shutdown).
class AtExit {
 public:
  AtExit() = default;
  explicit AtExit(std::function<void()> f) : f_(std::move(f)) {}
  AtExit& operator=(AtExit&& other) noexcept {
    Run();
    f_ = std::exchange(other.f_, nullptr);
    return *this;
  }
  AtExit(const AtExit&) = delete;
  ~AtExit() { Run(); }

 private:
  void Run() {
    if (f_) std::exchange(f_, nullptr)();
  }
  std::function<void()> f_;
};

// A mount's parts, declared in the order they depend on each other. Members are destroyed
// in reverse, and that is the shutdown order: /metrics forgets the mount, the refresh
// thread stops, the kernel mount goes, then the filesystem, the cache (its fetch threads),
// the inflater its fetches use, the tiers (their writers write what is queued), the index
// revisions, the heap trimmer, the metrics endpoint, the source and, last, the cache
// dir's lock. Nothing here is stopped by hand.
struct MountRuntime {
  UniqueFd lock;                  // the cache dir's (one daemon per cache dir), with our pid in it
  std::unique_ptr<Store> source;  // metered: every call counts for /metrics
  NamespaceStore* names = nullptr;  // `source`'s namespace of several sources, or null
  MetricsServer metrics;
  std::unique_ptr<HeapTrimmer> heap_trimmer;
  std::unique_ptr<IndexRevisions> revisions;
  std::unique_ptr<RamTier> ram;
  DiskTiers disk;
  std::unique_ptr<MemberInflater> inflater;  // deflated zip members (--archives zip)
  std::unique_ptr<BlockCache> cache;
  std::unique_ptr<Filesystem> filesystem;
  std::unique_ptr<FuseServer> server;
  AtExit stop_refresh;   // the refresh thread switches `filesystem` to new revisions
  AtExit leave_metrics;  // the collector reads `filesystem`, `cache`, `revisions`
};

// Checks what can be checked before anything is opened, and makes paths absolute.
// `*published`: the index is a published pointer (a URL, or a pointer file or directory).
Status CheckConfig(MountConfig& config, bool* published) {
  TIERFS_RETURN_IF_ERROR(SetLogLevel(config.log_level));
  TIERFS_RETURN_IF_ERROR(ResolveSources(&config));
  if (config.block_size < kMinBlockSize || config.block_size > kMaxBlockSize ||
      config.block_size % kBlockAlign != 0) {
    return Status::Invalid("--block-size must be a multiple of 4 KiB between 64K and 16M");
  }
  if (!config.metrics_address.empty()) {
    if (auto a = ParseListenAddress(config.metrics_address); !a.ok()) return a.status();
  }
  if (auto proxies = ParseProxyList(config.store.http.proxy_list); !proxies.ok()) {
    return proxies.status();
  }
  TIERFS_RETURN_IF_ERROR(CheckMountpoint(config.mountpoint));
  TIERFS_RETURN_IF_ERROR(FuseServer::ValidateOptions(config.fuse_options));
  std::error_code ec;
  config.mountpoint = fs::canonical(config.mountpoint, ec).string();
  if (!config.index_path.empty() && config.index_path.find("://") == std::string::npos) {
    config.index_path = fs::absolute(config.index_path, ec).lexically_normal().string();
  }
  *published = !config.index_path.empty() && IsIndexPointer(config.index_path);
  if (config.index_refresh < 0) config.index_refresh = *published ? 60 : 0;
  return Status::Ok();
}

// Opens the sources (offline if unreachable and an index for them exists, `*offline`),
// checks access when the index will be built from them, and wraps them for /metrics.
Result<std::unique_ptr<Store>> OpenMountSource(MountConfig& config, bool* offline) {
  Status unreachable = Status::Ok();
  auto store = OpenSources(config, &unreachable);
  if (!store.ok()) return store.status();
  auto* names = dynamic_cast<NamespaceStore*>(store->get());
  *offline = !unreachable.ok();
  if (*offline) {
    // A source that cannot be reached is fine if an index for it exists: the mount then
    // serves what the cache holds and fails other reads with EIO until the source is back.
    std::string dir =
        config.cache_dir.empty() ? DefaultCacheDir((*store)->Url()) : config.cache_dir;
    bool have_index = !config.index_path.empty() || fs::exists(dir + "/index/CURRENT") ||
                      fs::exists(dir + "/indexes/current");
    if (!have_index) return unreachable;
    std::fprintf(stderr, "tierfs: %s; serving from the cache until it is back\n",
                 unreachable.message().c_str());
  }
  if (!*offline && config.index_path.empty()) {
    // Check access (credentials, bucket, listing) before any work is done.
    for (size_t i = 0; i < (names != nullptr ? names->size() : 1); ++i) {
      const std::string root = names != nullptr ? names->prefix(i) : std::string();
      if (auto r = (*store)->Stat(root); !r.ok()) return r.status();
    }
  }
  // Every call to the source is counted for /metrics from here on (index build included).
  return std::unique_ptr<Store>(std::make_unique<MeteredStore>(std::move(*store)));
}

// The index revisions, the tiers, the block cache and the filesystem over them.
Status OpenDataPath(const MountConfig& config, bool published, bool offline, MountRuntime& rt) {
  RevisionOptions revision_options;
  revision_options.cache_dir = config.cache_dir;
  (published ? revision_options.index_url : revision_options.index_dir) = config.index_path;
  revision_options.rebuild = config.rebuild_index;
  revision_options.refresh_seconds = config.index_refresh;
  revision_options.block_size = config.block_size;
  revision_options.store = config.store;
  revision_options.build = IndexBuildOptions(config);
  auto revisions = IndexRevisions::Open(revision_options, *rt.source, offline);
  if (!revisions.ok()) return revisions.status();
  rt.revisions = std::move(*revisions);
  rt.revisions->Current()->StartWarmup();
  const uint64_t index_room = IndexRevisions::RoomFor(rt.revisions->DiskBytes());
  if (config.cache_size > 0) rt.revisions->SetRoom(index_room);

  std::vector<Tier*> tiers;
  if (config.ram_size > 0) {
    rt.ram = std::make_unique<RamTier>(config.ram_size, config.block_size);
    tiers.push_back(rt.ram.get());
  }
  const bool passthrough = WantPassthrough(config, rt.revisions->Current()->Meta());
  auto disk = OpenDiskTiers(config, index_room, passthrough);
  if (!disk.ok()) return disk.status();
  rt.disk = std::move(*disk);
  if (ObjectFileTier* objects = rt.disk.objects.get()) {
    objects->Start();
    tiers.push_back(objects);
  }
  if (rt.disk.nvme != nullptr) {
    rt.disk.nvme->Start();
    tiers.push_back(rt.disk.nvme.get());
  }
  PrefetchOptions prefetch;
  // Read-ahead lands in the RAM tier: it may fill a quarter of it, so a small RAM tier
  // gets a short window rather than blocks evicted before they are read.
  prefetch.budget = std::clamp<uint64_t>(config.ram_size / 4, 2 * config.block_size, 256ULL << 20);
  prefetch.max_window = static_cast<unsigned>(
      std::clamp<uint64_t>(prefetch.budget / config.block_size, 1, prefetch.max_window));
  prefetch.fetch_slots = config.fetch_budget;
  // Read-ahead lands in the RAM tier; without one it would only read blocks twice.
  if (config.ram_size == 0) prefetch.max_window = 0;
  rt.inflater = std::make_unique<MemberInflater>(*rt.source);
  rt.cache = std::make_unique<BlockCache>(*rt.source, tiers, config.block_size, prefetch);
  rt.cache->SetMaker([inflater = rt.inflater.get()](const ObjectRef& ref, uint64_t offset,
                                                    size_t length, char* buf, ReadVia* via) {
    return inflater->Read(ref, offset, length, buf, via);
  });
  if (NamespaceStore* names = rt.names) {
    rt.cache->SetTagger([names](std::string_view key) {
      return static_cast<uint8_t>(names->SourceOf(key) + 1);  // 0: above the sources
    });
  }
  rt.cache->Start();

  // Stats sections read the runtime as it is when asked (the server once mounted).
  FilesystemOptions o;
  o.block_pool = &BlockPool::Global();
  o.prefetch_dataset = config.prefetch == "dataset";
  o.uid = ::getuid();
  o.gid = ::getgid();
  o.routes_json = [&rt] { return rt.source->RoutesJson(); };
  o.index_json = [&rt] { return rt.revisions->StatusJson(); };
  o.refresh = [&rt] { return rt.revisions->RefreshNow(); };
  if (rt.names != nullptr) {
    o.sources_json = [&rt] {
      return SourcesJson(*rt.names, *rt.cache, rt.revisions->Current()->Meta());
    };
  }
  if (ObjectFileTier* objects = rt.disk.objects.get()) {
    o.backing = [objects](const ObjectRef& ref, uint64_t size) {
      auto b = objects->GetBacking(ref, size);
      return BackingFile{b.fd, std::move(b.pin)};
    };
    o.backing_min_size = objects->min_object_size();
    o.passthrough_json = [&rt, objects] {
      return PassthroughJson(rt.server != nullptr ? rt.server->passthrough() : nullptr, *objects);
    };
  }
  o.transport_json = [&rt] {
    return rt.server != nullptr ? rt.server->TransportJson() : nlohmann::json();
  };
  rt.filesystem = std::make_unique<Filesystem>(rt.revisions->Current(), *rt.cache, o);
  return Status::Ok();
}

FuseServerOptions FuseOptionsFor(const MountConfig& config, const Store& source, bool passthrough) {
  FuseServerOptions o;
  o.fsname = SafeFsName(source.Url());
  o.extra_options = config.fuse_options;
  o.max_threads = config.threads;
  o.spin_us = config.spin_us;
  if (config.ram_size > 0) {
    o.read_ahead_kb = static_cast<unsigned>(
        std::clamp<uint64_t>(config.ram_size / 4 / 1024, 1024, o.read_ahead_kb));
  }
  o.debug = config.debug;
  o.passthrough = passthrough;
  o.fuse_uring = config.fuse_uring;
  o.stack_depth = StackDepthFor(config.cache_dir);
  return o;
}

// Mounts and serves until unmounted. `*served`: the mount came up (the result is then the
// serving loop's); otherwise the result says why not, and nothing stays mounted.
Status MountAndServe(MountConfig& config, bool* served) {
  bool published = false, offline = false;
  TIERFS_RETURN_IF_ERROR(CheckConfig(config, &published));
  MountRuntime rt;
  auto source = OpenMountSource(config, &offline);
  if (!source.ok()) return source.status();
  rt.source = std::move(*source);
  rt.names = dynamic_cast<NamespaceStore*>(&static_cast<MeteredStore&>(*rt.source).inner());
  if (config.cache_dir.empty()) config.cache_dir = DefaultCacheDir(rt.source->Url());
  TIERFS_RETURN_IF_ERROR(PrepareCacheDir(config.cache_dir));
  auto lock_fd = LockCacheDir(config.cache_dir);
  if (!lock_fd.ok()) return lock_fd.status();
  rt.lock = UniqueFd(*lock_fd);
  if (!config.metrics_address.empty())
    TIERFS_RETURN_IF_ERROR(rt.metrics.Bind(config.metrics_address));

  // Detach before anything starts threads (RocksDB, tiers, FUSE workers, metrics).
  if (!config.foreground) TIERFS_RETURN_IF_ERROR(Detach());
  WritePid(rt.lock.get());
  // Free heap and idle pooled block memory share one slack above what the tiers hold.
  const uint64_t heap_slack = std::max<uint64_t>(16 << 20, config.ram_size / 32);
  BlockPool::Global().Configure(config.block_size, heap_slack);
  rt.heap_trimmer =
      std::make_unique<HeapTrimmer>(heap_slack, [] { return BlockPool::Global().idle_bytes(); });
  rt.heap_trimmer->Start();

  TIERFS_RETURN_IF_ERROR(OpenDataPath(config, published, offline, rt));
  rt.server = std::make_unique<FuseServer>(
      *rt.filesystem, FuseOptionsFor(config, *rt.source, rt.disk.objects != nullptr));
  TIERFS_RETURN_IF_ERROR(rt.server->Mount(config.mountpoint));

  rt.revisions->Start([fs = rt.filesystem.get()](const std::shared_ptr<Index>& next) {
    return fs->SwitchIndex(next);
  });
  rt.stop_refresh = AtExit([&rt] { rt.revisions->Stop(); });
  const int collector = MetricsRegistry::Global().AddCollector([&rt](MetricsWriter& w) {
    rt.filesystem->WriteMetrics(w);
    rt.revisions->WriteMetrics(w);
    const IndexMeta& meta = rt.revisions->Current()->Meta();
    if (rt.names != nullptr) WriteSourceMetrics(w, *rt.names, *rt.cache, meta);
    if (rt.disk.objects != nullptr) {
      WritePassthroughMetrics(w, rt.server->passthrough(), *rt.disk.objects);
    }
  });
  rt.leave_metrics = AtExit([collector] { MetricsRegistry::Global().RemoveCollector(collector); });
  rt.metrics.Start();
  NotifyReady("serving");
  if (!config.foreground) LogToSyslog();
  TLOG_INFO("serving {} at {}", rt.source->Url(), config.mountpoint);
  *served = true;
  Status run = rt.server->Run();
  NotifyStopping();
  return run;  // rt shuts down here, in its members' order
}

}  // namespace

int RunMount(MountConfig config) {
  LimitMallocArenas(4);
  bool served = false;
  const Status s = MountAndServe(config, &served);
  if (!served) return Fail(s);
  TLOG_INFO("unmounted {}", config.mountpoint);
  if (!s.ok()) {
    TLOG_ERROR("{}", s.message());
    return 1;
  }
  return 0;
}

}  // namespace tierfs
