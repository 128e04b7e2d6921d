// Filesystem: the read-only POSIX view of an Index and a BlockCache, in plain C++.
//
// Every FUSE operation has a method here; lowlevel.cc only translates between libfuse and
// these methods. Metadata comes from the index alone (never from the store); file bytes
// come from the block cache. Anything that would modify the tree is EROFS.
//
// Thread-safe: methods are called concurrently from the FUSE worker threads.
#pragma once

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/metrics.h"
#include "common/mutex.h"
#include "common/status.h"
#include "fuse/device_channel.h"
#include "fuse/packed_files.h"
#include "fuse/tree_fetch.h"
#include "metadata/index.h"
#include "metadata/index_diff.h"
#include "tiers/block_cache.h"

namespace tierfs {

struct FilesystemOptions {
  uid_t uid = 0;  // owner shown for every entry (the mounting user)
  gid_t gid = 0;
  // Producers of stats sections, each added as JSON under its key as it is (null or
  // empty: omitted; unset: omitted).
  using JsonSection = std::function<nlohmann::json()>;
  // The source's routes (cluster caches, DIRECT), an array.
  JsonSection routes_json;
  // The index revision in use and its refresh checks, an object.
  JsonSection index_json;
  // A namespace of several sources: each one's figures, an array (cli/source_stats.h).
  JsonSection sources_json;
  // Checks for a new index revision now and switches to it (reading the root's
  // "user.tierfs.refresh"); the outcome in one line.
  std::function<Result<std::string>()> refresh;
  // The backing file of a fully cached object of at least `backing_min_size` bytes, for
  // FUSE passthrough (unset: none).
  std::function<BackingFile(const ObjectRef& ref, uint64_t size)> backing;
  uint64_t backing_min_size = 0;
  // Passthrough state and counters, an object.
  JsonSection passthrough_json;
  // The FUSE request transport, an object.
  JsonSection transport_json;
  // The pool block memory comes from, for its metrics (unset: omitted).
  const BlockPool* block_pool = nullptr;
  // --prefetch dataset: fetch the rest of the data set once readers are spread over it.
  bool prefetch_dataset = false;
  unsigned prefetch_trigger_files = 32;  // distinct files read before it starts
};

// What the kernel caches of a mount and how to make it forget (set by the FUSE server).
struct KernelCache {
  std::function<void(uint64_t parent, const std::string& name)> forget_entry;
  std::function<void(uint64_t ino)> forget_inode;  // attributes, data and listing
};

// Per-operation counters (for stats and metrics).
struct FuseOpCounters {
  std::atomic<uint64_t> lookup{0}, getattr{0}, readdir{0}, read{0}, readlink{0}, statfs{0},
      xattr{0}, open{0}, rejected_writes{0}, errors{0};
};

class Filesystem {
 public:
  Filesystem(std::shared_ptr<Index> index, BlockCache& cache, FilesystemOptions options);
  ~Filesystem();
  Filesystem(const Filesystem&) = delete;
  Filesystem& operator=(const Filesystem&) = delete;

  // Serves `next` from now on, and tells the kernel to forget what it cached of paths
  // that changed. A file open before keeps reading the version it opened (its inode
  // still names it) or gets EIO once no tier and not the source has those bytes.
  Result<DiffCounts> SwitchIndex(const std::shared_ptr<Index>& next);
  void SetKernelCache(KernelCache kernel);

  Result<struct stat> Lookup(uint64_t parent, std::string_view name);
  Result<struct stat> GetAttr(uint64_t ino);

  // Lists directory `ino` from `offset` (0 = start): ".", "..", then the children in name
  // order. `sink` gets each name, its attributes and the offset of the entry after it;
  // returning false stops the listing (the reply buffer is full).
  using DirSink =
      std::function<bool(std::string_view name, const struct stat& st, uint64_t next_offset)>;
  Status ReadDir(uint64_t ino, uint64_t offset, const DirSink& sink);

  Result<ReadResult> Read(uint64_t ino, uint64_t offset, size_t size);
  // The same read; when it must wait for the store it runs on the fetch pool and returns
  // nullopt, and `done` gets the outcome there (BlockCache::ReadOrDefer).
  using ReadDone = std::function<void(Result<ReadResult>)>;
  std::optional<Result<ReadResult>> ReadOrDefer(uint64_t ino, uint64_t offset, size_t size,
                                                ReadDone done);
  Result<std::string> ReadLink(uint64_t ino);
  // Checks an open of `ino` with open(2) `flags`: EROFS for any write access. On success
  // `*may_passthrough` says whether the file is large enough to have a backing file.
  Status Open(uint64_t ino, int flags, bool* may_passthrough = nullptr);
  // The backing file of `ino` when its object is fully cached and verified (fd -1 if not).
  BackingFile Backing(uint64_t ino);
  struct statvfs StatFs();

  // Extended attributes. The root carries "user.tierfs.stats" (JSON counters); reading
  // "user.tierfs.warm" of a file pulls the whole file into the cache and returns its size,
  // of a directory pulls its whole tree and returns {"files","bytes","failed","failures"}.
  // "user.tierfs.refresh" on the root runs a refresh (root or the mounting user only).
  Result<std::string> GetXattr(uint64_t ino, std::string_view name, uid_t caller);
  // "user.tierfs.warm" without waiting for a file's fetches: `done` gets the value, on
  // this thread (a directory, an error) or on a fetch thread once the file is in.
  using XattrDone = std::function<void(Result<std::string>)>;
  void Warm(uint64_t ino, XattrDone done);
  Result<std::vector<std::string>> ListXattr(uint64_t ino);

  // Any modifying operation: counts it and returns EROFS.
  Status RejectWrite();

  const FuseOpCounters& counters() const { return counters_; }
  std::string StatsJson() const;
  // Writes the cache, FUSE and data-set numbers as Prometheus metrics (a collector for
  // MetricsRegistry; see common/metrics.h).
  void WriteMetrics(MetricsWriter& w) const;

 private:
  // What a read needs of a file, for files looked up or read recently, so a read does not
  // go to the index (a RocksDB get, several microseconds) every time. Bounded: a shard
  // that fills up starts over. A file's inode number names its version (see InodeFor),
  // so nothing here goes stale when the index switches to a new revision.
  struct FileRef {
    static constexpr uint64_t kUnresolved = UINT64_MAX;
    explicit FileRef(FileExtent x)
        : extent(std::move(x)), data_offset(extent.zip_header ? kUnresolved : extent.offset) {}
    FileExtent extent;
    // Where the bytes start in extent.ref: a zip member's once its local header was read.
    mutable std::atomic<uint64_t> data_offset;
  };
  class RecentFiles {
   public:
    std::shared_ptr<const FileRef> Get(uint64_t ino);
    // Remembers a file (not other types) and returns what it remembered.
    std::shared_ptr<const FileRef> Put(const Entry& e);

   private:
    static constexpr size_t kShards = 32;
    static constexpr size_t kPerShard = 1024;
    struct Shard {
      Mutex mu;
      std::unordered_map<uint64_t, std::shared_ptr<const FileRef>> map GUARDED_BY(mu);
    };
    Shard shards_[kShards];
  };

  struct stat ToStat(const Entry& e) const;
  // What a read needs of `ino`: from recent files, else from the index.
  Result<std::shared_ptr<const FileRef>> File(uint64_t ino);
  Result<std::string> WarmTreeOf(const Entry& e);
  // A read of `file` at `offset`: told to the data set prefetch (first reads of a file).
  void NoteRead(uint64_t ino, const FileRef& file, uint64_t offset) {
    if (dataset_prefetch_ != nullptr && offset == 0) {
      dataset_prefetch_->NoteRead(ino, file.extent.size);
    }
  }
  // A read of `file`, clipped to its end; nullopt when it runs on the fetch pool (`done`
  // then gets it). A zip member's first read reads its local header first.
  std::optional<Result<ReadResult>> ReadExtent(const std::shared_ptr<const FileRef>& file,
                                               uint64_t offset, size_t size, const ReadDone& done);
  Result<ReadResult> ReadExtentNow(const FileRef& file, uint64_t offset, size_t size);
  // Records where a zip member's bytes start, from its local header's `header` bytes.
  static Status ResolveHeader(const FileRef& file, const Result<ReadResult>& header);
  Result<ReadResult> ReadOutcome(Result<ReadResult> r);

  // The revision in use; a caller keeps it alive for the whole operation.
  std::shared_ptr<Index> index() const {
    MutexLock lock(index_mu_);
    return index_;
  }

  // A mutex, not std::atomic<std::shared_ptr>: GCC 12's lock-bit implementation of that is
  // invisible to TSan, and an uncontended lock costs ~20 ns against a ~2 us lookup.
  mutable Mutex index_mu_;
  std::shared_ptr<Index> index_ GUARDED_BY(index_mu_);
  Mutex kernel_mu_;
  KernelCache kernel_ GUARDED_BY(kernel_mu_);
  BlockCache& cache_;
  const FilesystemOptions options_;
  FuseOpCounters counters_;
  RecentFiles recent_files_;
  TreeFetchCounters warm_counters_;  // what directory warms fetched (progress)
  std::unique_ptr<DatasetPrefetch> dataset_prefetch_;
};

}  // namespace tierfs
