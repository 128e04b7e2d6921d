// Fetching whole trees into the cache inside the daemon, at the mount's fetch budget:
//  - WarmTree: `tierfs warm DIR` asks once for a whole tree (the warm xattr of a directory)
//    rather than once per file, so warm runs at link speed, not at one request per FUSE
//    thread.
//  - DatasetPrefetch (--prefetch dataset): once readers are spread over the data set (an
//    epoch over a shuffled data set), the rest of it is fetched in the background into the
//    cache's free room, behind demand reads; it stops before the cache would evict what it
//    fetched (never thrash), and counts what readers used of it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/mutex.h"
#include "metadata/index.h"
#include "tiers/block_cache.h"

namespace tierfs {

// What a tree walk fetched so far (read while it runs: the CLI's progress line).
struct TreeFetchCounters {
  std::atomic<uint64_t> files{0}, bytes{0}, failed{0}, skipped{0};
};

struct TreeWarmResult {
  uint64_t files = 0;  // warmed (or found cached)
  uint64_t bytes = 0;
  uint64_t failed = 0;
  std::vector<std::string> failures;  // "path: why", the first 20
};

struct TreeWalk {
  FetchPool::Class priority = FetchPool::Class::kWarm;
  unsigned outstanding = 128;  // files in flight at once
  // Files to fetch (default: all); one that returns false is skipped.
  std::function<bool(const Entry&)> want;
  // Checked between files: true ends the walk early.
  std::function<bool()> stop;
  TreeFetchCounters* counters = nullptr;  // also counted here, if given
};

// Warms every regular file under directory `root` (or `root` itself, a file), in index
// order. Returns when every file it started is done.
TreeWarmResult WarmTree(Index& index, BlockCache& cache, uint64_t root, const TreeWalk& walk);

// Inode numbers in bounded memory (8 bytes each): appended in any order, looked up by
// binary search over a sorted part plus a scan of a short unsorted tail.
class InodeSet {
 public:
  void Insert(uint64_t ino);
  // Removes `ino` if present; true if it was.
  bool Take(uint64_t ino);
  size_t size() const { return sorted_.size() + tail_.size() - taken_count_; }

 private:
  static constexpr size_t kTail = 1024;
  std::vector<uint64_t> sorted_, tail_;
  std::vector<bool> taken_;  // by position in sorted_
  size_t taken_count_ = 0;
};

struct DatasetPrefetchOptions {
  unsigned trigger_files = 32;  // distinct files read before the prefetch starts
  // Bytes the cache can take without evicting (free room of its largest tier).
  std::function<uint64_t()> room;
  // What a block costs that tier on average (its used bytes per block: block headers,
  // allocation units), so a file of n blocks counts as at least n times that.
  std::function<uint64_t()> block_cost;
  // Evictions in the tiers so far: the prefetch stops once they grow.
  std::function<uint64_t()> evictions;
};

class DatasetPrefetch {
 public:
  DatasetPrefetch(BlockCache& cache, std::function<std::shared_ptr<Index>()> index,
                  DatasetPrefetchOptions options);
  ~DatasetPrefetch();
  DatasetPrefetch(const DatasetPrefetch&) = delete;
  DatasetPrefetch& operator=(const DatasetPrefetch&) = delete;

  // A reader read file `ino` of `size` bytes (every read; cheap once started).
  void NoteRead(uint64_t ino, uint64_t size);
  void Stop();

  struct Stats {
    std::string state;                        // "waiting", "running", "done", "stopped: <why>"
    uint64_t files = 0, bytes = 0;            // fetched by the prefetch
    uint64_t used_files = 0, used_bytes = 0;  // of those, read by a reader since
  };
  Stats GetStats() const;

 private:
  void Run();

  BlockCache& cache_;
  const std::function<std::shared_ptr<Index>()> index_;
  const DatasetPrefetchOptions options_;
  std::atomic<bool> started_{false};
  std::atomic<bool> stop_{false};
  TreeFetchCounters counters_;
  mutable Mutex mu_;
  std::vector<uint64_t> first_reads_ GUARDED_BY(mu_);
  InodeSet prefetched_ GUARDED_BY(mu_);
  uint64_t used_files_ GUARDED_BY(mu_) = 0, used_bytes_ = 0;
  std::string state_ GUARDED_BY(mu_) = "waiting";
  std::thread thread_;
};

}  // namespace tierfs
