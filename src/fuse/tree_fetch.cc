#include "fuse/tree_fetch.h"

#include <algorithm>

#include "common/log.h"
#include "common/mutex.h"
#include "fuse/packed_files.h"

namespace tierfs {

TreeWarmResult WarmTree(Index& index, BlockCache& cache, uint64_t root, const TreeWalk& walk) {
  Mutex mu;  // serializes result, in_flight
  std::condition_variable cv;
  TreeWarmResult result;
  unsigned in_flight = 0;
  const unsigned outstanding = std::max(1u, walk.outstanding);

  auto start = [&](const Entry& e, const std::string& path) {
    if (walk.want && !walk.want(e)) {
      if (walk.counters != nullptr) ++walk.counters->skipped;
      return;
    }
    {
      MutexLock lock(mu);
      cv.wait(lock.native(), [&]() REQUIRES(mu) { return in_flight < outstanding; });
      ++in_flight;
    }
    const FileExtent x = ExtentOf(e);
    const WarmRange range = WarmRangeOf(x);
    auto warm = [&](auto&& done) {
      if (x.unreadable.empty()) {
        return cache.Warm(x.ref, x.object_size, range.offset, range.length, walk.priority, done);
      }
      done(Status::Io("an archive member that cannot be read: " + x.unreadable));
    };
    warm([&, size = e.size, path](const Status& s) {
      MutexLock lock(mu);
      if (s.ok()) {
        ++result.files;
        result.bytes += size;
        if (walk.counters != nullptr) {
          ++walk.counters->files;
          walk.counters->bytes += size;
        }
      } else {
        ++result.failed;
        if (walk.counters != nullptr) ++walk.counters->failed;
        if (result.failures.size() < 20) result.failures.push_back(path + ": " + s.message());
      }
      --in_flight;
      cv.notify_all();
    });
  };

  auto top = index.GetAttr(root);
  if (!top.ok()) {
    result.failed = 1;
    result.failures.push_back(top.status().message());
    return result;
  }
  // Depth first, children in name order; only directories wait on the stack.
  std::vector<std::pair<uint64_t, std::string>> dirs;
  if (top->type == ObjectType::kFile) start(*top, ".");
  if (top->is_dir()) dirs.emplace_back(root, "");
  while (!dirs.empty() && !(walk.stop && walk.stop())) {
    const uint64_t ino = dirs.back().first;
    const std::string path = std::move(dirs.back().second);
    dirs.pop_back();
    std::vector<std::pair<uint64_t, std::string>> subdirs;
    Status s = index.ReadDir(ino, 0, [&](std::string_view name, const Entry& e, uint64_t) {
      std::string child = path.empty() ? std::string(name) : path + "/" + std::string(name);
      if (e.is_dir()) {
        subdirs.emplace_back(e.ino, std::move(child));
      } else if (e.type == ObjectType::kFile) {
        start(e, child);
      }
      return !(walk.stop && walk.stop());
    });
    if (!s.ok()) {
      MutexLock lock(mu);
      ++result.failed;
      if (result.failures.size() < 20) result.failures.push_back(path + ": " + s.message());
    }
    // Reversed, so the first subdirectory in name order is walked first.
    for (auto it = subdirs.rbegin(); it != subdirs.rend(); ++it) dirs.push_back(std::move(*it));
  }
  MutexLock lock(mu);
  cv.wait(lock.native(), [&]() REQUIRES(mu) { return in_flight == 0; });
  return result;
}

void InodeSet::Insert(uint64_t ino) {
  tail_.push_back(ino);
  if (tail_.size() < kTail) return;
  // Taken entries leave at each merge (every kTail inserts).
  size_t kept = 0;
  for (size_t i = 0; i < sorted_.size(); ++i) {
    if (!taken_[i]) sorted_[kept++] = sorted_[i];
  }
  sorted_.resize(kept);
  std::sort(tail_.begin(), tail_.end());
  sorted_.insert(sorted_.end(), tail_.begin(), tail_.end());
  std::inplace_merge(sorted_.begin(), sorted_.begin() + static_cast<ptrdiff_t>(kept),
                     sorted_.end());
  taken_.assign(sorted_.size(), false);
  taken_count_ = 0;
  tail_.clear();
}

bool InodeSet::Take(uint64_t ino) {
  if (auto it = std::find(tail_.begin(), tail_.end(), ino); it != tail_.end()) {
    *it = tail_.back();
    tail_.pop_back();
    return true;
  }
  auto it = std::lower_bound(sorted_.begin(), sorted_.end(), ino);
  if (it == sorted_.end() || *it != ino) return false;
  // Marked, not erased (an erase would move the whole vector).
  const auto i = static_cast<size_t>(it - sorted_.begin());
  if (taken_[i]) return false;
  taken_[i] = true;
  ++taken_count_;
  return true;
}

DatasetPrefetch::DatasetPrefetch(BlockCache& cache, std::function<std::shared_ptr<Index>()> index,
                                 DatasetPrefetchOptions options)
    : cache_(cache), index_(std::move(index)), options_(std::move(options)) {}

DatasetPrefetch::~DatasetPrefetch() { Stop(); }

void DatasetPrefetch::Stop() {
  stop_ = true;
  std::thread t;
  {
    MutexLock lock(mu_);
    t.swap(thread_);
  }
  if (t.joinable()) t.join();
}

void DatasetPrefetch::NoteRead(uint64_t ino, uint64_t size) {
  MutexLock lock(mu_);
  if (started_.load(std::memory_order_relaxed)) {
    if (prefetched_.Take(ino)) {
      ++used_files_;
      used_bytes_ += size;
    }
    return;
  }
  if (std::find(first_reads_.begin(), first_reads_.end(), ino) != first_reads_.end()) return;
  first_reads_.push_back(ino);
  if (first_reads_.size() < options_.trigger_files || stop_) return;
  started_ = true;
  state_ = "running";
  first_reads_ = {};
  thread_ = std::thread([this] {
    SetThreadName("tierfs-prefetch");
    Run();
  });
}

void DatasetPrefetch::Run() {
  const uint64_t room = options_.room ? options_.room() : 0;
  const uint64_t block_cost = options_.block_cost ? options_.block_cost() : 0;
  const uint64_t block_size = cache_.block_size();
  const uint64_t evictions = options_.evictions ? options_.evictions() : 0;
  // Fill at most 90% of the free room: the rest is for what readers fetch meanwhile.
  const uint64_t limit = room / 10 * 9;
  std::atomic<uint64_t> planned{0};
  std::string why;
  TreeWalk walk;
  walk.priority = FetchPool::Class::kBackground;
  walk.outstanding = std::max(1u, cache_.pool().slots());
  walk.counters = &counters_;
  walk.want = [&](const Entry& e) {
    const FileExtent x = ExtentOf(e);
    const WarmRange range = WarmRangeOf(x);
    if (!x.unreadable.empty() || cache_.Cached(x.ref, x.object_size, range.offset, range.length)) {
      return false;
    }
    const uint64_t cost = std::max(e.size, (e.size + block_size - 1) / block_size * block_cost);
    if (planned + cost > limit) return false;  // does not fit: leave it to its reader
    planned += cost;
    MutexLock lock(mu_);
    prefetched_.Insert(e.ino);
    return true;
  };
  uint64_t checks = 0;
  walk.stop = [&] {  // (called for every file, from the walking thread only)
    if (stop_ || cache_.pool().stopping()) {
      why = "stopped: unmounting";
      return true;
    }
    // The eviction count comes from every tier's figures: asked every 16 files, which is
    // less than the files the walk keeps queued anyway.
    if (options_.evictions && ++checks % 16 == 0 && options_.evictions() > evictions) {
      why = "stopped: the cache is full (it would evict what it fetched)";
      return true;
    }
    return false;
  };
  const std::shared_ptr<Index> index = index_();
  TreeWarmResult r = WarmTree(*index, cache_, kRootIno, walk);
  MutexLock lock(mu_);
  state_ = why.empty() ? "done" : why;
  TLOG_INFO("data set prefetch {}: {} files, {} bytes fetched ({} failed), room was {} bytes",
            state_, r.files, r.bytes, r.failed, room);
}

DatasetPrefetch::Stats DatasetPrefetch::GetStats() const {
  Stats s;
  MutexLock lock(mu_);
  s.state = state_;
  s.files = counters_.files;
  s.bytes = counters_.bytes;
  s.used_files = used_files_;
  s.used_bytes = used_bytes_;
  return s;
}

}  // namespace tierfs
