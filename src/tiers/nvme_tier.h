// NvmeTier: blocks on local disk, in a few large preallocated segment files.
//
// Layout: <dir>/LAYOUT (segment size, count, block size) and <dir>/seg-NNNNN. Blocks are
// appended as self-describing records (header with key hash, index, length and XXH3 of the
// data) to the active segment by one writer thread, in batches, through io_uring with
// O_DIRECT where the filesystem supports it. A full segment is sealed by writing its
// directory into its tail; when no segment is free the oldest is evicted whole (FIFO), and
// blocks read since they were written get a second chance: they are copied forward
// (bounded), so a one-pass scan does not flush blocks that are re-read.
//
// Guarantees:
//  - Get verifies every record (key, index, length, checksum) before returning it; a bad
//    record is a miss, counted and dropped, never returned.
//  - Start-up reads only segment directories, plus record headers of at most one unsealed
//    segment (after a crash): its cost does not grow with the bytes cached.
//  - Bytes on disk = segments × segment size ≤ the capacity given. Segment files are
//    created and preallocated when first needed; if the disk refuses one (ENOSPC), the
//    cache keeps the segments it has and evicts within them.
//  - Write failures (ENOSPC, EIO) drop the blocks concerned; the tier keeps serving what
//    it has, and the cache above keeps working from RAM and the store.
//
// Thread-safe. Start() launches the writer; Stop() drains it. Put() does no I/O: blocks
// queue (bounded by bytes); when the queue is full Put waits up to 2 s for the writer
// (backpressure, so a fast cold pass still reaches the disk), then drops the block.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/log.h"
#include "common/mutex.h"
#include "tiers/admission.h"
#include "tiers/disk_budget.h"
#include "tiers/segment_format.h"
#include "tiers/tier.h"

namespace tierfs {

struct NvmeTierOptions {
  std::string dir;        // created if missing
  uint64_t capacity = 0;  // bytes this tier may occupy on disk
  size_t block_size = 1 << 20;
  uint64_t segment_size = 0;  // 0: about capacity/16, a whole number of full blocks (<= 256 MiB)
  uint64_t max_queue_bytes = 64 << 20;  // pending writes held in memory
  bool direct_io = true;                // O_DIRECT where supported
  // Epoch-aware admission once the cache is full (tiers/admission.h).
  bool epoch_aware = true;
  double min_hit_ratio = 0.10;
  // Shared with ObjectFileTier: segments are reserved in it when created (null: the tier
  // keeps to `capacity` alone).
  DiskBudget* budget = nullptr;
  // Blocks of objects this large or larger are left to ObjectFileTier (0: none).
  uint64_t skip_objects_from = 0;
};

class NvmeTier : public Tier {
 public:
  // Opens (or creates) the cache in options.dir and loads what survived. Starts no thread.
  static Result<std::unique_ptr<NvmeTier>> Open(const NvmeTierOptions& options);
  ~NvmeTier() override;
  NvmeTier(const NvmeTier&) = delete;
  NvmeTier& operator=(const NvmeTier&) = delete;

  void Start();
  void Stop();   // writes what is queued, seals nothing (the active segment is recovered by scan)
  void Flush();  // waits until everything queued so far is written (tests, warm-up)

  const char* name() const override { return "nvme"; }
  std::shared_ptr<const Block> Get(const BlockKey& key) override;
  bool Contains(const BlockKey& key) const override;
  // The records of every key found are read in one io_uring submission.
  void GetBatch(std::span<const BlockKey* const> keys,
                std::span<std::shared_ptr<const Block>> out) override;
  void Put(const BlockKey& key, const std::shared_ptr<const Block>& block) override;
  TierStats Stats() const override;
  void AddBytesByTag(const TagOf& tag_of, std::span<uint64_t, 256> out) const override;

  uint64_t segment_size() const { return segment_size_; }
  size_t segment_count() const { return segments_.size(); }
  bool direct_io() const { return direct_io_; }
  double startup_seconds() const { return startup_seconds_; }
  uint64_t admission_refused() const { return admission_->refused(); }
  // Disk reads issued so far, counted per submission: one per Get that found its key, one
  // per GetBatch that found any (however many records it read).
  uint64_t read_batches() const { return read_batches_; }

 private:
  struct Loc {
    uint32_t segment;
    uint32_t generation;
    uint32_t offset_units;
    uint32_t length;
    uint64_t index;
    bool accessed;
  };
  struct Segment {
    int fd = -1;
    std::atomic<uint32_t> generation{0};
    uint64_t write_offset = 0;      // writer thread only
    std::vector<DirEntry> entries;  // writer thread only: what the segment holds
    bool sealed = false;            // writer thread only
  };
  struct Pending {
    BlockKey key;
    std::shared_ptr<const Block> block;
    bool refetched = false;  // fetched before, per RecentKeys: may evict when full
  };
  static constexpr size_t kShards = 32;
  struct Shard {
    mutable Mutex mu;
    std::unordered_map<Hash128, Loc, Hash128Hasher> map GUARDED_BY(mu);
  };

  explicit NvmeTier(const NvmeTierOptions& options);
  Status Init();
  Status OpenSegmentFile(uint32_t seg, bool create);
  Status Recover(uint32_t seg);
  void RecoverByScan(uint32_t seg);
  Shard& ShardFor(const Hash128& h) const { return shards_[h.hi % kShards]; }
  bool Skips(const BlockKey& key) const {
    return options_.skip_objects_from > 0 && key.object_size >= options_.skip_objects_from;
  }
  void WriterLoop();
  void WriteBatch(std::deque<Pending> work);
  bool FlushStaging();
  void SealActive();
  // Makes a segment active for writing: a free one, else (if `incoming` may evict: see
  // admission.h) the oldest sealed one, whose accessed blocks get a second chance at the
  // front of `work`. No active segment if neither.
  void OpenNextSegment(const Pending& incoming, bool admission_checked, std::deque<Pending>* work);
  bool TakeFreeSegment(uint32_t* seg);
  bool EvictOldest(uint32_t* seg, std::vector<Pending>* keep);
  void WriteDirectory(uint32_t seg);  // the segment's entries into its tail
  // Forgets `key` if it still lives at (segment, generation[, offset]): the one place a
  // block leaves the map (a failed read, eviction). Reports whether it had been read.
  bool Erase(const Hash128& key, uint32_t segment, uint32_t generation,
             std::optional<uint32_t> offset_units, bool* accessed = nullptr);
  // Get's steps: find the key's record, allocate a block for it, check what was read.
  bool Find(const BlockKey& key, Loc* loc);
  std::shared_ptr<Block> RecordBuffer(const Loc& loc);
  std::shared_ptr<const Block> Verified(const BlockKey& key, const Loc& loc,
                                        std::shared_ptr<Block> block, const Result<size_t>& n);
  void Publish(uint32_t seg, const DirEntry& e, uint32_t generation);
  bool RefusedWhenFull(const Pending& p);  // writer thread

  const NvmeTierOptions options_;
  uint64_t segment_size_ = 0;
  uint64_t data_bytes_ = 0;  // per segment, before the directory area
  uint64_t dir_bytes_ = 0;
  bool direct_io_ = false;
  double startup_seconds_ = 0;
  std::vector<std::unique_ptr<Segment>> segments_;
  std::unique_ptr<Shard[]> shards_;

  // Writer state (writer thread only, or before Start()).
  int active_ = -1;
  bool active_by_eviction_ = false;   // the active segment was taken from the sealed FIFO
  std::deque<uint32_t> sealed_fifo_;  // oldest first
  std::deque<uint32_t> free_;
  uint32_t next_generation_ = 1;
  char* staging_ = nullptr;  // aligned buffer for one batched write
  size_t staging_size_ = 0, staging_used_ = 0;
  std::vector<DirEntry> staged_;  // entries whose records are in staging_

  Mutex queue_mu_;
  std::condition_variable queue_cv_, drained_cv_, space_cv_;
  std::deque<Pending> queue_ GUARDED_BY(queue_mu_);
  uint64_t queued_bytes_ GUARDED_BY(queue_mu_) = 0;
  bool stopping_ GUARDED_BY(queue_mu_) = false;
  bool in_flight_ GUARDED_BY(queue_mu_) = false;
  // Flush() callers: write what is queued without gathering more.
  int flush_waiters_ GUARDED_BY(queue_mu_) = 0;
  // The writer waits for more blocks before writing.
  bool gathering_ GUARDED_BY(queue_mu_) = false;
  static constexpr std::chrono::milliseconds kGatherWindow{5};
  std::thread writer_;

  TierCounters counters_;
  std::atomic<uint64_t> dropped_{0}, reinserted_{0}, used_bytes_{0}, blocks_{0}, read_batches_{0};
  std::unique_ptr<EpochAdmission> admission_;
  // Read errors and failed verifications: at most 10 warnings per 10 s.
  LogLimiter io_error_log_{10, std::chrono::seconds(10)};
};

}  // namespace tierfs
