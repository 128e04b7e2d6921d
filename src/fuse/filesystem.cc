#include "fuse/filesystem.h"

#include <fcntl.h>

#include <future>
#include <nlohmann/json.hpp>

#include "common/blocking.h"
#include "common/log.h"
#include "common/memory.h"
#include "common/xattrs.h"
#include "metadata/archive.h"

namespace tierfs {
namespace {

Status Counted(std::atomic<uint64_t>& errors, Status s) {
  if (!s.ok()) ++errors;
  return s;
}

// Adds what `section` returns under `key`, unless it is unset, null or empty.
void AddJson(nlohmann::json& j, const char* key, const FilesystemOptions::JsonSection& section) {
  if (!section) return;
  nlohmann::json value = section();
  if (!value.is_null() && !value.empty()) j[key] = std::move(value);
}

// The counters `tierfs stats` (StatsJson) and /metrics (WriteMetrics) both show, each
// named once: its stats JSON key, and its metric family (nullptr: stats only) with help.
struct CacheCounter {
  const char* json;
  const char* metric;
  const char* help;
  uint64_t CacheStats::*field;
};
constexpr CacheCounter kCacheCounters[] = {
    {"reads", nullptr, nullptr, &CacheStats::reads},
    {"read_bytes", "tierfs_read_bytes_total", "bytes served to readers", &CacheStats::read_bytes},
    {"remote_reads", nullptr, nullptr, &CacheStats::remote_reads},
    {"remote_bytes", nullptr, nullptr, &CacheStats::remote_bytes},
    {"remote_errors", nullptr, nullptr, &CacheStats::remote_errors},
    {"singleflight_waits", "tierfs_singleflight_waits_total",
     "reads that waited for a fetch already running", &CacheStats::singleflight_waits},
    {"block_hits", nullptr, nullptr, &CacheStats::hits},
    {"block_misses", "tierfs_cache_misses_total",
     "blocks no cache tier held (read from the source)", &CacheStats::misses},
    {"prefetched_blocks", "tierfs_prefetched_blocks_total",
     "blocks fetched ahead of sequential readers", &CacheStats::prefetched_blocks},
    {"prefetch_dropped", "tierfs_prefetch_dropped_total",
     "read-ahead not issued: memory budget full", &CacheStats::prefetch_dropped},
    {"prefetch_inflight_peak", nullptr, nullptr, &CacheStats::prefetch_inflight_peak},
    {"hedged_fetches", "tierfs_hedged_fetches_total",
     "block fetches slower than 3x the recent p99 that got a second request",
     &CacheStats::hedged_fetches},
    {"hedge_wins", "tierfs_hedge_wins_total", "of those, answered first by the second request",
     &CacheStats::hedge_wins},
};

// Per-tier values: the key under "tiers"/NAME in stats, and the metric labelled {tier}.
struct TierField {
  const char* json;
  const char* metric;
  const char* help;
  bool counter;
  uint64_t TierStats::*field;
};
constexpr TierField kTierFields[] = {
    {"capacity_bytes", "tierfs_cache_capacity_bytes", "bound on the bytes of a cache tier", false,
     &TierStats::capacity_bytes},
    {"used_bytes", "tierfs_cache_bytes", "bytes held by a cache tier", false,
     &TierStats::used_bytes},
    {"blocks", "tierfs_cache_blocks", "blocks held by a cache tier", false, &TierStats::blocks},
    {"hits", "tierfs_cache_hits_total", "blocks served by a cache tier", true, &TierStats::hits},
    {"misses", nullptr, nullptr, true, &TierStats::misses},
    {"inserts", nullptr, nullptr, true, &TierStats::inserts},
    {"evictions", "tierfs_cache_evictions_total", "blocks evicted from a cache tier", true,
     &TierStats::evictions},
    {"errors", "tierfs_cache_errors_total", "I/O errors inside a cache tier (served as misses)",
     true, &TierStats::errors},
    {"checksum_failures", nullptr, nullptr, true, &TierStats::checksum_failures},
};

// FUSE requests by operation: the key under "fuse_ops" in stats and the {op} label of
// tierfs_fuse_ops_total (nullptr: not an op; errors has its own family).
struct FuseOp {
  const char* json;
  const char* label;
  std::atomic<uint64_t> FuseOpCounters::*counter;
};
constexpr FuseOp kFuseOps[] = {
    {"lookup", "lookup", &FuseOpCounters::lookup},
    {"getattr", "getattr", &FuseOpCounters::getattr},
    {"readdir", "readdir", &FuseOpCounters::readdir},
    {"read", "read", &FuseOpCounters::read},
    {"readlink", "readlink", &FuseOpCounters::readlink},
    {"statfs", "statfs", &FuseOpCounters::statfs},
    {"xattr", "xattr", &FuseOpCounters::xattr},
    {"open", "open", &FuseOpCounters::open},
    {"rejected_writes", "write", &FuseOpCounters::rejected_writes},
    {"errors", nullptr, &FuseOpCounters::errors},
};

}  // namespace

std::shared_ptr<const Filesystem::FileRef> Filesystem::RecentFiles::Get(uint64_t ino) {
  Shard& shard = shards_[ino % kShards];
  MutexLock lock(shard.mu);
  auto it = shard.map.find(ino);
  return it == shard.map.end() ? nullptr : it->second;
}

std::shared_ptr<const Filesystem::FileRef> Filesystem::RecentFiles::Put(const Entry& e) {
  if (e.type != ObjectType::kFile) return nullptr;
  Shard& shard = shards_[e.ino % kShards];
  {
    // An inode names one version of a file, so what is remembered stays right; keeping it
    // keeps a zip member's resolved data offset across lookups.
    MutexLock lock(shard.mu);
    if (auto it = shard.map.find(e.ino); it != shard.map.end()) return it->second;
  }
  auto ref = std::make_shared<const FileRef>(ExtentOf(e));
  MutexLock lock(shard.mu);
  if (shard.map.size() >= kPerShard) shard.map.clear();
  return shard.map.emplace(e.ino, std::move(ref)).first->second;
}

Filesystem::Filesystem(std::shared_ptr<Index> index, BlockCache& cache, FilesystemOptions options)
    : index_(std::move(index)), cache_(cache), options_(std::move(options)) {
  if (options_.prefetch_dataset) {
    // The prefetch fills the largest tier (where a data set stays) and stops at its
    // first eviction.
    auto home = [this]() -> std::optional<TierStats> {
      std::optional<TierStats> best;
      for (const auto& [name, t] : cache_.Stats().tiers) {
        if (!best || t.capacity_bytes > best->capacity_bytes) best = t;
      }
      return best;
    };
    DatasetPrefetchOptions o;
    o.room = [home] {
      auto t = home();
      return t && t->capacity_bytes > t->used_bytes ? t->capacity_bytes - t->used_bytes : 0;
    };
    o.block_cost = [home] {
      auto t = home();
      return t && t->blocks > 0 ? t->used_bytes / t->blocks : 0;
    };
    o.trigger_files = options_.prefetch_trigger_files;
    o.evictions = [home] {
      auto t = home();
      return t ? t->evictions : 0;
    };
    dataset_prefetch_ = std::make_unique<DatasetPrefetch>(
        cache_, [this] { return this->index(); }, std::move(o));
  }
}

Filesystem::~Filesystem() {
  if (dataset_prefetch_ != nullptr) dataset_prefetch_->Stop();
}

void Filesystem::SetKernelCache(KernelCache kernel) {
  MutexLock lock(kernel_mu_);
  kernel_ = std::move(kernel);
}

Result<DiffCounts> Filesystem::SwitchIndex(const std::shared_ptr<Index>& next) {
  next->StartWarmup();
  std::shared_ptr<Index> old;
  {
    MutexLock lock(index_mu_);
    old = std::exchange(index_, next);
  }
  MutexLock lock(kernel_mu_);
  using Kind = IndexChange::Kind;
  auto counts = DiffIndexes(*old, *next, [&](const IndexChange& c) REQUIRES(kernel_mu_) {
    if (c.kind == Kind::kAttrs || c.kind == Kind::kListing) {
      if (kernel_.forget_inode) kernel_.forget_inode(c.ino);
    } else if (kernel_.forget_entry) {
      kernel_.forget_entry(c.ino, c.name);
    }
  });
  if (!counts.ok()) {
    // The switch itself is done and cannot be undone; only the kernel's view may lag.
    TLOG_ERROR(
        "index switch: could not compare the revisions ({}); names the kernel cached "
        "may show the old revision until it drops them",
        counts.status().message());
    return DiffCounts{};
  }
  return counts;
}

struct stat Filesystem::ToStat(const Entry& e) const {
  struct stat st = {};
  st.st_ino = e.ino;
  switch (e.type) {
    case ObjectType::kDirectory:
      st.st_mode = S_IFDIR;
      break;
    case ObjectType::kSymlink:
      st.st_mode = S_IFLNK;
      break;
    case ObjectType::kFile:
      st.st_mode = S_IFREG;
      break;
  }
  st.st_mode |= e.mode & 07777;
  st.st_nlink = 1;  // like btrfs: tells find(1) not to count subdirectories by link count
  st.st_uid = options_.uid;
  st.st_gid = options_.gid;
  st.st_size = static_cast<off_t>(e.is_dir() ? 4096 : e.size);
  st.st_blksize = static_cast<blksize_t>(cache_.block_size());
  st.st_blocks = static_cast<blkcnt_t>((st.st_size + 511) / 512);
  st.st_mtim.tv_sec = e.mtime_ns / 1000000000;
  st.st_mtim.tv_nsec = e.mtime_ns % 1000000000;
  st.st_atim = st.st_mtim;
  st.st_ctim = st.st_mtim;
  return st;
}

Result<struct stat> Filesystem::Lookup(uint64_t parent, std::string_view name) {
  ++counters_.lookup;
  auto e = index()->Lookup(parent, name);
  if (!e.ok()) {
    if (e.status().error() != ENOENT) ++counters_.errors;
    return e.status();
  }
  recent_files_.Put(*e);  // most files looked up are read next
  return ToStat(*e);
}

Result<struct stat> Filesystem::GetAttr(uint64_t ino) {
  ++counters_.getattr;
  auto e = index()->GetAttr(ino);
  if (!e.ok()) return Counted(counters_.errors, e.status());
  return ToStat(*e);
}

Status Filesystem::ReadDir(uint64_t ino, uint64_t offset, const DirSink& sink) {
  ++counters_.readdir;
  const std::shared_ptr<Index> index = this->index();  // one revision for the whole listing
  auto dir = index->GetAttr(ino);
  if (!dir.ok()) return Counted(counters_.errors, dir.status());
  if (!dir->is_dir()) return Status(ENOTDIR, "not a directory");
  if (offset == 0) {
    if (!sink(".", ToStat(*dir), 1)) return Status::Ok();
    offset = 1;
  }
  if (offset == 1) {
    struct stat parent_st = {};
    parent_st.st_ino = dir->parent;
    parent_st.st_mode = S_IFDIR;
    if (!sink("..", parent_st, 2)) return Status::Ok();
    offset = 2;
  }
  return Counted(
      counters_.errors,
      index->ReadDir(ino, offset - 2, [&](std::string_view name, const Entry& e, uint64_t pos) {
        return sink(name, ToStat(e), pos + 3);
      }));
}

Result<std::shared_ptr<const Filesystem::FileRef>> Filesystem::File(uint64_t ino) {
  std::shared_ptr<const FileRef> file = recent_files_.Get(ino);
  if (file != nullptr) return file;
  auto e = index()->GetAttr(ino);
  // An inode the index no longer has: a file open across a switch to a revision that
  // changed or removed it, whose version is not remembered any more.
  if (!e.ok() && e.status().error() == ENOENT) {
    return Counted(counters_.errors, Status::Io("inode " + std::to_string(ino) +
                                                " is not in the index revision in use"));
  }
  if (!e.ok()) return Counted(counters_.errors, e.status());
  if (e->is_dir()) return Status(EISDIR, "is a directory");
  if (e->type != ObjectType::kFile) return Status::Invalid("not a regular file");
  return recent_files_.Put(*e);
}

Result<ReadResult> Filesystem::Read(uint64_t ino, uint64_t offset, size_t size) {
  ++counters_.read;
  auto file = File(ino);
  if (!file.ok()) return file.status();
  auto r = ReadOutcome(ReadExtentNow(**file, offset, size));
  NoteRead(ino, **file, offset);
  return r;
}

std::optional<Result<ReadResult>> Filesystem::ReadOrDefer(uint64_t ino, uint64_t offset,
                                                          size_t size, ReadDone done) {
  ++counters_.read;
  auto file = File(ino);
  if (!file.ok()) return Result<ReadResult>(file.status());
  // The data set prefetch hears of a read once it is done (its file is then cached).
  auto r = ReadExtent(*file, offset, size,
                      [this, ino, f = *file, offset, done = std::move(done)](Result<ReadResult> r) {
                        NoteRead(ino, *f, offset);
                        done(ReadOutcome(std::move(r)));
                      });
  if (!r) return std::nullopt;
  NoteRead(ino, **file, offset);
  return ReadOutcome(std::move(*r));
}

namespace {
Status Unreadable(const FileExtent& x) {
  static LogLimiter limit(10, std::chrono::seconds(60));
  TLOG_WARN_LIMITED(limit, "a member of archive '{}' cannot be read: {}", x.ref.key, x.unreadable);
  return Status::Io("a member of archive '" + x.ref.key + "' cannot be read: " + x.unreadable);
}
}  // namespace

Status Filesystem::ResolveHeader(const FileRef& file, const Result<ReadResult>& header) {
  if (!header.ok()) return header.status();
  char bytes[kZipLocalHeaderSize];
  if (header->size != sizeof bytes) return Status::Io("a zip local header past the archive's end");
  header->CopyTo(bytes);
  const FileExtent& x = file.extent;
  auto data =
      ResolveZipData(std::string_view(bytes, sizeof bytes), *x.zip_header, x.size, x.object_size);
  if (!data.ok()) return data.status();
  file.data_offset = *data;
  return Status::Ok();
}

Result<ReadResult> Filesystem::ReadExtentNow(const FileRef& file, uint64_t offset, size_t size) {
  const FileExtent& x = file.extent;
  if (!x.unreadable.empty()) return Unreadable(x);
  if (offset >= x.size) return ReadResult{};
  size = static_cast<size_t>(std::min<uint64_t>(size, x.size - offset));
  if (file.data_offset == FileRef::kUnresolved) {
    TIERFS_RETURN_IF_ERROR(
        ResolveHeader(file, cache_.Read(x.ref, x.object_size, *x.zip_header, kZipLocalHeaderSize)));
  }
  const uint64_t start = file.data_offset;
  return cache_.Read(x.ref, x.object_size, start + offset, size, Extent{start, start + x.size});
}

std::optional<Result<ReadResult>> Filesystem::ReadExtent(const std::shared_ptr<const FileRef>& file,
                                                         uint64_t offset, size_t size,
                                                         const ReadDone& done) {
  const FileExtent& x = file->extent;
  if (!x.unreadable.empty()) return Result<ReadResult>(Unreadable(x));
  if (offset >= x.size) return Result<ReadResult>(ReadResult{});
  size = static_cast<size_t>(std::min<uint64_t>(size, x.size - offset));
  if (file->data_offset == FileRef::kUnresolved) {
    auto header = cache_.ReadOrDefer(x.ref, x.object_size, *x.zip_header, kZipLocalHeaderSize,
                                     [this, file, offset, size, done](const Result<ReadResult>& h) {
                                       if (Status s = ResolveHeader(*file, h); !s.ok())
                                         return done(s);
                                       if (auto r = ReadExtent(file, offset, size, done))
                                         done(std::move(*r));
                                     });
    if (!header) return std::nullopt;
    if (Status s = ResolveHeader(*file, *header); !s.ok()) return Result<ReadResult>(s);
  }
  const uint64_t start = file->data_offset;
  return cache_.ReadOrDefer(x.ref, x.object_size, start + offset, size, done,
                            Extent{start, start + x.size});
}

// Whatever went wrong remotely, a reader sees EIO (or a precise errno we trust).
Result<ReadResult> Filesystem::ReadOutcome(Result<ReadResult> r) {
  if (r.ok()) return r;
  ++counters_.errors;
  int err = r.status().error();
  if (err != ENOMEM && err != EACCES) err = EIO;
  return Status(err, r.status().message());
}

Result<std::string> Filesystem::ReadLink(uint64_t ino) {
  ++counters_.readlink;
  auto e = index()->GetAttr(ino);
  if (!e.ok()) return Counted(counters_.errors, e.status());
  if (e->type != ObjectType::kSymlink) return Status::Invalid("not a symlink");
  return e->link_target;
}

Status Filesystem::Open(uint64_t ino, int flags, bool* may_passthrough) {
  ++counters_.open;
  if ((flags & O_ACCMODE) != O_RDONLY || (flags & (O_TRUNC | O_CREAT | O_APPEND))) {
    return RejectWrite();
  }
  auto file = File(ino);
  if (!file.ok()) return file.status();
  if (may_passthrough != nullptr) {
    const FileExtent& x = (*file)->extent;
    *may_passthrough = options_.backing && options_.backing_min_size > 0 && x.whole_object &&
                       x.size >= options_.backing_min_size;
  }
  return Status::Ok();
}

BackingFile Filesystem::Backing(uint64_t ino) {
  if (!options_.backing) return {};
  auto file = File(ino);
  if (!file.ok() || !(*file)->extent.whole_object) return {};
  return options_.backing((*file)->extent.ref, (*file)->extent.size);
}

struct statvfs Filesystem::StatFs() {
  ++counters_.statfs;
  const std::shared_ptr<Index> index = this->index();
  const IndexMeta& m = index->Meta();
  struct statvfs s = {};
  s.f_bsize = cache_.block_size();
  s.f_frsize = 4096;
  s.f_blocks = (m.bytes + 4095) / 4096;
  s.f_files = m.files + m.dirs + m.symlinks;
  s.f_namemax = 255;
  s.f_flag = ST_RDONLY | ST_NOSUID | ST_NODEV;
  return s;
}

Result<std::string> Filesystem::GetXattr(uint64_t ino, std::string_view name, uid_t caller) {
  if (name == kWarmXattr) {  // counted by Warm
    std::promise<Result<std::string>> answer;
    Warm(ino, [&answer](Result<std::string> v) { answer.set_value(std::move(v)); });
    AboutToBlock();
    return answer.get_future().get();
  }
  ++counters_.xattr;
  if (ino == kRootIno && name == kStatsXattr) return StatsJson();
  if (ino == kRootIno && name == kRefreshXattr) {
    if (caller != 0 && caller != options_.uid) {
      return Status(EPERM, "only root or the mounting user may refresh the index");
    }
    if (!options_.refresh) return Status(ENOTSUP, "this mount cannot refresh its index");
    auto outcome = options_.refresh();
    if (!outcome.ok()) return std::string("failed: ") + outcome.status().message();
    return *outcome;
  }
  auto e = index()->GetAttr(ino);
  if (!e.ok()) return e.status();
  return Status(ENODATA, "no such attribute");
}

// Pulls a file, or a directory's whole tree, into the cache inside the daemon (no bytes
// cross to the caller), at the fetch pool's warm priority.
void Filesystem::Warm(uint64_t ino, XattrDone done) {
  ++counters_.xattr;
  auto e = index()->GetAttr(ino);
  if (!e.ok()) return done(e.status());
  if (e->is_dir()) return done(WarmTreeOf(*e));
  if (e->type != ObjectType::kFile) return done(Status(ENODATA, "no such attribute"));
  const FileExtent x = ExtentOf(*e);
  const WarmRange range = WarmRangeOf(x);
  cache_.Warm(x.ref, x.object_size, range.offset, range.length, FetchPool::Class::kWarm,
              [this, size = e->size, done = std::move(done)](const Status& s) {
                if (!s.ok()) {
                  ++counters_.errors;
                  return done(Status(EIO, s.message()));
                }
                done(std::to_string(size));
              });
}

// A directory's tree, on this thread (a FUSE worker: it hands the device on first), its
// files fetched by the pool with the whole budget.
Result<std::string> Filesystem::WarmTreeOf(const Entry& e) {
  AboutToBlock();
  TreeWalk walk;
  walk.outstanding = 2 * cache_.pool().slots();
  walk.counters = &warm_counters_;
  walk.stop = [] { return ShutdownRequested(); };
  const std::shared_ptr<Index> index = this->index();
  TreeWarmResult r = WarmTree(*index, cache_, e.ino, walk);
  if (r.failed > 0) counters_.errors += r.failed;
  nlohmann::json j;
  j["files"] = r.files;
  j["bytes"] = r.bytes;
  j["failed"] = r.failed;
  j["failures"] = r.failures;
  return j.dump();
}

Result<std::vector<std::string>> Filesystem::ListXattr(uint64_t ino) {
  ++counters_.xattr;
  if (ino == kRootIno) return std::vector<std::string>{kStatsXattr};
  auto e = index()->GetAttr(ino);
  if (!e.ok()) return e.status();
  return std::vector<std::string>{};
}

Status Filesystem::RejectWrite() {
  ++counters_.rejected_writes;
  return Status::ReadOnly("read-only file system");
}

std::string Filesystem::StatsJson() const {
  CacheStats cs = cache_.Stats();
  const std::shared_ptr<Index> index = this->index();
  const IndexMeta& m = index->Meta();
  nlohmann::json j;
  j["source"] = m.source;
  j["pid"] = ::getpid();
  j["rss_bytes"] = ReadResidentMemory().total;
  j["files"] = m.files;
  j["dirs"] = m.dirs;
  j["archives"] = m.archives;
  j["archive_members"] = m.members;
  j["total_bytes"] = m.bytes;
  j["index_cached_bytes"] = index->CachedBytes();
  AddJson(j, "index", options_.index_json);
  j["block_size"] = cache_.block_size();
  for (const CacheCounter& c : kCacheCounters) j[c.json] = cs.*c.field;
  for (const auto& [name, c] : cs.sources) {
    j["block_sources"][name] = {{"blocks", c.blocks}, {"bytes", c.bytes}};
  }
  AddJson(j, "routes", options_.routes_json);
  AddJson(j, "sources", options_.sources_json);
  AddJson(j, "passthrough", options_.passthrough_json);
  AddJson(j, "fuse_transport", options_.transport_json);
  for (const auto& [name, t] : cs.tiers) {
    for (const TierField& f : kTierFields) j["tiers"][name][f.json] = t.*f.field;
  }
  for (const FuseOp& op : kFuseOps) j["fuse_ops"][op.json] = (counters_.*op.counter).load();
  j["fetch"] = {{"slots", cs.fetch.slots},
                {"running", cs.fetch.running},
                {"running_peak", cs.fetch.running_peak},
                {"queued", cs.fetch.queued},
                {"demand_jobs", cs.fetch.jobs[0]},
                {"warm_jobs", cs.fetch.jobs[1]},
                {"background_jobs", cs.fetch.jobs[2]}};
  j["warm"] = {{"files", warm_counters_.files.load()},
               {"bytes", warm_counters_.bytes.load()},
               {"failed", warm_counters_.failed.load()}};
  if (dataset_prefetch_ != nullptr) {
    DatasetPrefetch::Stats p = dataset_prefetch_->GetStats();
    j["dataset_prefetch"] = {{"state", p.state},
                             {"files", p.files},
                             {"bytes", p.bytes},
                             {"used_files", p.used_files},
                             {"used_bytes", p.used_bytes}};
  }
  return j.dump();
}

void Filesystem::WriteMetrics(MetricsWriter& w) const {
  CacheStats cs = cache_.Stats();
  const std::shared_ptr<Index> index = this->index();
  const IndexMeta& m = index->Meta();
  auto d = [](uint64_t v) { return static_cast<double>(v); };
  w.Gauge("tierfs_build_info", "tierfs version", {{"version", TIERFS_VERSION}}, 1);
  w.Gauge("tierfs_dataset_files", "regular files in the index", {}, d(m.files));
  w.Gauge("tierfs_dataset_bytes", "total size of the data set (TOTAL SIZE)", {}, d(m.bytes));
  w.Gauge("tierfs_process_resident_memory_bytes", "resident memory of the daemon", {},
          d(ReadResidentMemory().total));
  if (const BlockPool* pool = options_.block_pool; pool != nullptr) {
    w.Gauge("tierfs_block_pool_idle_bytes", "freed block memory kept for the next block", {},
            d(pool->idle_bytes()));
    w.Counter("tierfs_block_pool_reuses_total", "blocks that reused freed memory (no new pages)",
              {}, d(pool->reuses()));
  }
  // Per-tier families; each is written whole (all tiers) before the next one starts.
  for (const TierField& f : kTierFields) {
    if (f.metric == nullptr) continue;
    for (const auto& [name, t] : cs.tiers) {
      if (f.counter) {
        w.Counter(f.metric, f.help, {{"tier", name}}, d(t.*f.field));
      } else {
        w.Gauge(f.metric, f.help, {{"tier", name}}, d(t.*f.field));
      }
    }
  }
  for (const auto& [name, c] : cs.sources) {
    w.Counter("tierfs_block_source_blocks_total",
              "blocks by where they came from: a tier (ram, nvme) or, fetched, a cluster cache "
              "(cache_hit, cache_miss, cache: did not say) or the origin",
              {{"source", name}}, d(c.blocks));
  }
  for (const auto& [name, c] : cs.sources) {
    w.Counter("tierfs_block_source_bytes_total", "bytes of those blocks, by the same sources",
              {{"source", name}}, d(c.bytes));
  }
  uint64_t checksum_failures = 0;
  for (const auto& [name, t] : cs.tiers) checksum_failures += t.checksum_failures;
  w.Counter("tierfs_checksum_failures_total", "cached blocks that failed verification (dropped)",
            {}, d(checksum_failures));
  for (const CacheCounter& c : kCacheCounters) {
    if (c.metric != nullptr) w.Counter(c.metric, c.help, {}, d(cs.*c.field));
  }
  for (const FuseOp& op : kFuseOps) {
    if (op.label == nullptr) continue;
    w.Counter("tierfs_fuse_ops_total", "FUSE requests by operation (write: refused, EROFS)",
              {{"op", op.label}}, d((counters_.*op.counter).load()));
  }
  w.Counter("tierfs_fuse_errors_total", "FUSE requests answered with an error", {},
            d(counters_.errors.load()));
  w.Gauge("tierfs_fetch_slots", "origin requests the mount may have in flight (--fetch-budget)", {},
          d(cs.fetch.slots));
  w.Gauge("tierfs_fetch_running", "fetch jobs running now (origin requests in flight)", {},
          d(cs.fetch.running));
  w.Gauge("tierfs_fetch_queued", "fetch jobs waiting for a slot", {}, d(cs.fetch.queued));
  const char* kClasses[] = {"demand", "warm", "background"};
  for (int c = 0; c < 3; ++c) {
    w.Counter("tierfs_fetch_jobs_total", "fetch jobs run, by class", {{"class", kClasses[c]}},
              d(cs.fetch.jobs[c]));
  }
  w.Counter("tierfs_readahead_refetched_total",
            "read-ahead blocks evicted before they were read (the window then halves)", {},
            d(cs.readahead_refetched));
  if (dataset_prefetch_ != nullptr) {
    DatasetPrefetch::Stats p = dataset_prefetch_->GetStats();
    w.Counter("tierfs_dataset_prefetch_bytes_total", "bytes the data set prefetch fetched", {},
              d(p.bytes));
    w.Counter("tierfs_dataset_prefetch_used_bytes_total",
              "bytes of prefetched files that readers have read since", {}, d(p.used_bytes));
  }
}

}  // namespace tierfs
