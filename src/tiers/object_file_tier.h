// ObjectFileTier: large objects on local disk as one file each, so a fully cached object
// can be handed to the kernel as a FUSE passthrough backing file (byte N of the file is
// byte N of the object).
//
// Why a tier of its own: the NVMe tier packs blocks of many objects into shared segments,
// which is right for small files (one file per 50 KB object would cost an inode, an open
// and a directory entry each) but gives no file whose bytes are one object's. Objects of
// at least `min_object_size` bytes live here instead (the NVMe tier skips them); smaller
// ones stay in segments. Both draw on one DiskBudget (--cache-size).
//
// Layout: <dir>/<32 hex>.data (sparse: block i at offset i × block size) and
// <dir>/<32 hex>.map: a header (object key, version, size, block size) followed by one
// 16-byte record (index, length, XXH3) appended after each block's data is written. No
// fsync: after a crash a record may name data that never reached the disk, and the
// checksum catches it. Start-up reads the .map files only.
//
// Guarantees:
//  - Get verifies the block's checksum; a bad block is a miss, counted and forgotten (the
//    next fetch rewrites it).
//  - Backing() hands out a file only for an object whose every block is present and
//    verified: blocks written by this process are verified by construction (checksummed
//    from memory); an object found on disk at start-up is read back and checked once, in
//    the background, the first time it is asked for. Bytes changed on disk after that
//    are not detected (passthrough reads bypass the daemon); see docs/passthrough.md.
//  - Bytes reserved (blocks rounded up to 4 KiB) never exceed the budget. Eviction takes
//    whole objects, least recently used first; an evicted object that the kernel still
//    reads through passthrough loses its name at once and its room when the last pin goes.
//  - When full, a new object may evict others only if EpochAdmission (tiers/admission.h,
//    the NVMe tier's policy) lets its block: fetched before, and the tier not earning hits.
//    A data set larger than the cache, re-read in shuffled order, keeps a stable resident
//    set instead of churning. An object already partly here may always evict to complete
//    itself.
//
// Thread-safe. Put() does no I/O: one writer thread writes blocks and runs verifications.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/log.h"
#include "common/mutex.h"
#include "tiers/admission.h"
#include "tiers/block.h"
#include "tiers/disk_budget.h"
#include "tiers/tier.h"
#include "ufs/store.h"

namespace tierfs {

struct ObjectFileTierOptions {
  std::string dir;  // created if missing
  DiskBudget* budget = nullptr;
  size_t block_size = 1 << 20;
  uint64_t min_object_size = 8 << 20;  // the mount passes kLargeFileBytes (metadata/index.h)
  uint64_t max_queue_bytes = 64 << 20;
  bool epoch_aware = true;  // false: a full tier evicts least recently used objects always
  double min_hit_ratio = 0.10;
  // Removes a file (::unlink); tests slow it down to check that hits never wait on it.
  std::function<void(const std::string& path)> remove_file;
};

struct ObjectFileStats {
  uint64_t objects = 0;               // resident (complete or not)
  uint64_t complete = 0;              // every block present
  uint64_t verified = 0;              // complete and verified: eligible for passthrough
  uint64_t pinned = 0;                // objects with backing files in use
  uint64_t evicted_pinned_bytes = 0;  // evicted but still read by the kernel
  uint64_t verifications = 0;         // whole-object checks run
  uint64_t admission_refused = 0;
};

class ObjectFileTier : public Tier {
 public:
  // Loads what the directory holds (reserving its bytes in the budget; objects beyond it
  // are deleted). Starts no thread.
  static Result<std::unique_ptr<ObjectFileTier>> Open(const ObjectFileTierOptions& options);
  ~ObjectFileTier() override;
  ObjectFileTier(const ObjectFileTier&) = delete;
  ObjectFileTier& operator=(const ObjectFileTier&) = delete;

  void Start();
  void Stop();   // writes what is queued
  void Flush();  // waits until everything queued so far is written and verified

  // Objects this tier keeps (the NVMe tier leaves them here).
  bool Accepts(uint64_t object_size) const { return object_size >= options_.min_object_size; }
  uint64_t min_object_size() const { return options_.min_object_size; }

  const char* name() const override { return "objects"; }
  std::shared_ptr<const Block> Get(const BlockKey& key) override;
  bool Contains(const BlockKey& key) const override;
  void Put(const BlockKey& key, const std::shared_ptr<const Block>& block) override;
  TierStats Stats() const override;
  void AddBytesByTag(const TagOf& tag_of, std::span<uint64_t, 256> out) const override;
  ObjectFileStats ObjectStats() const;

  struct Backing {
    int fd = -1;                // the object's data file, read-only use
    std::shared_ptr<void> pin;  // keeps fd and the object's room until released
  };
  // The backing file of `ref` (`size` bytes) if it is complete and verified; otherwise
  // fd -1, and a complete object not yet verified is queued for verification.
  Backing GetBacking(const ObjectRef& ref, uint64_t size);

 private:
  struct Object;
  struct Job {
    std::shared_ptr<Object> object;
    uint64_t index = 0;                  // block to write
    std::shared_ptr<const Block> block;  // null: verify the object
    bool refetched = false;              // the block was fetched before (admission)
  };

  explicit ObjectFileTier(const ObjectFileTierOptions& options);
  Status Load();
  std::shared_ptr<Object> LoadOne(const std::string& stem);
  void WriterLoop();
  void Write(const Job& job);
  void Verify(const std::shared_ptr<Object>& object);
  Status CreateFiles(Object& object);
  bool Reserve(const std::shared_ptr<Object>& object, uint64_t bytes, bool refetched);
  // Drops `victim` from the map (requires mu_); returns the bytes to release once its
  // files are gone (0 while it is pinned: the last Unpin releases them).
  uint64_t TakeOutLocked(const std::shared_ptr<Object>& victim) REQUIRES(mu_);
  // Unlinks an object's files. Never called with mu_ held: a lookup must not wait on it.
  void RemoveFiles(const Object& object) const;
  void Unpin(const std::shared_ptr<Object>& object);
  void Forget(Object& object, uint64_t index) REQUIRES(mu_);  // a block found bad
  std::string PathOf(const Object& object, const char* ext) const;

  const ObjectFileTierOptions options_;
  DiskBudget own_budget_{0};

  mutable Mutex mu_;  // also protects every Object's mutable state
  std::unordered_map<Hash128, std::shared_ptr<Object>, Hash128Hasher> objects_ GUARDED_BY(mu_);
  uint64_t tick_ GUARDED_BY(mu_) = 0;  // LRU clock
  EpochAdmission admission_;

  Mutex queue_mu_;
  std::condition_variable queue_cv_, drained_cv_, space_cv_;
  std::deque<Job> queue_ GUARDED_BY(queue_mu_);
  uint64_t queued_bytes_ GUARDED_BY(queue_mu_) = 0;
  bool stopping_ GUARDED_BY(queue_mu_) = false;
  bool busy_ GUARDED_BY(queue_mu_) = false;
  std::thread writer_;

  TierCounters counters_;
  std::atomic<uint64_t> dropped_{0}, verifications_{0}, evicted_pinned_bytes_{0};
  LogLimiter io_error_log_{10, std::chrono::seconds(10)};
};

}  // namespace tierfs
