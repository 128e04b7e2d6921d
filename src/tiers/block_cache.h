// BlockCache: the read path. Serves byte ranges of objects from a chain of tiers (RAM,
// then the disk tiers: NVMe segments for small objects, the object file tier for large
// ones kept whole for passthrough) in front of a Store, in fixed-size blocks.
//
//  - A hit in a lower tier is promoted to the tiers above it. A read that spans several
//    blocks asks each tier once for all of them (the NVMe tier reads them in one batch).
//  - A miss is fetched from the store with one ranged read per block; concurrent readers
//    of the same missing block share that one read (single-flight).
//  - A fetched block is offered to every tier (the NVMe tier writes asynchronously).
//  - Only a store failure reaches the caller (with the store's errno, EIO by default);
//    tier failures are misses.
//  - Every store request runs on the cache's FetchPool: requests in flight are the pool's
//    slots (the mount's fetch budget), shared by demand reads first, then warm, then
//    read-ahead. ReadOrDefer serves cached bytes on the caller's thread and hands a read
//    that must fetch to the pool, so a caller's threads never cap requests in flight.
//  - Read-ahead: a reader that moves through an object sequentially gets the next blocks
//    fetched in the background, with a window that doubles from 1 to `max_window` blocks;
//    a random reader gets none. Bytes being prefetched never exceed `prefetch_budget`,
//    however many objects are read at once, and a stream whose read-ahead was evicted
//    before it was read (the RAM tier is smaller than the window) halves its window, so a
//    sequential pass fetches each byte once.
//
// Thread-safe. Does not own the store or the tiers; they must outlive it. Start() runs
// the fetch pool; without it (tests) reads fetch on the caller's thread and nothing is
// prefetched.
#pragma once

#include <sys/uio.h>

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/log.h"
#include "common/mutex.h"
#include "tiers/block.h"
#include "tiers/fetch_pool.h"
#include "tiers/hedger.h"
#include "tiers/recent_keys.h"
#include "tiers/tier.h"
#include "ufs/store.h"

namespace tierfs {

inline constexpr size_t kMinBlockSize = 64 << 10;
inline constexpr size_t kMaxBlockSize = 16 << 20;
inline constexpr size_t kDefaultBlockSize = 1 << 20;

// The bytes of one read: slices of shared blocks, kept alive by `blocks`.
struct ReadResult {
  std::vector<std::shared_ptr<const Block>> blocks;
  std::vector<iovec> iov;
  size_t size = 0;
  void CopyTo(char* out) const;  // for callers that want one flat buffer
};

// Where bytes came from: a tier ("ram", "nvme": blocks a read found there and the bytes the
// reader got from them) or, for blocks fetched (read-ahead included), the route
// ("cache_hit", "cache_miss", "cache", "origin"; see ReadVia) and the whole block's bytes.
struct SourceCount {
  uint64_t blocks = 0;
  uint64_t bytes = 0;
};

struct CacheStats {
  std::vector<std::pair<std::string, SourceCount>> sources;
  std::vector<std::pair<std::string, TierStats>> tiers;
  uint64_t reads = 0;
  uint64_t read_bytes = 0;
  uint64_t remote_reads = 0;
  uint64_t remote_bytes = 0;
  uint64_t remote_errors = 0;
  uint64_t singleflight_waits = 0;
  uint64_t prefetched_blocks = 0;
  uint64_t prefetch_dropped = 0;        // not issued: budget full
  uint64_t prefetch_inflight_peak = 0;  // most bytes ever being prefetched at once
  uint64_t readahead_refetched = 0;     // read-ahead blocks evicted unread, fetched again
  uint64_t hedged_fetches = 0;          // stragglers given a second request
  uint64_t hedge_wins = 0;              // of those, answered first by the second request
  uint64_t hits = 0;                    // blocks served by some tier
  uint64_t misses = 0;                  // blocks that needed the store
  FetchPool::Stats fetch;
};

inline constexpr unsigned kDefaultFetchSlots = 64;

// The part of an object one file is (an archive member is a range of its archive):
// read-ahead stays inside it and follows it as a stream of its own. Default: all of it.
struct Extent {
  uint64_t start = 0;
  uint64_t end = UINT64_MAX;
};

struct PrefetchOptions {
  unsigned fetch_slots = kDefaultFetchSlots;  // store requests in flight, all kinds together
  unsigned max_window = 64;                   // blocks ahead of a sequential reader (0: none)
  uint64_t budget = 128ULL << 20;             // bytes in flight for prefetch, all readers together
  // A fetch slower than 3x the recent p99 gets a second request; the first answer wins.
  bool hedge = true;
};

class BlockCache {
 public:
  BlockCache(Store& store, std::vector<Tier*> tiers, size_t block_size,
             PrefetchOptions prefetch = {});
  ~BlockCache();
  BlockCache(const BlockCache&) = delete;
  BlockCache& operator=(const BlockCache&) = delete;

  void Start();
  void Stop();

  // Reads [offset, offset + length) of `ref`, an object of `object_size` bytes, clipped to
  // the object's end.
  Result<ReadResult> Read(const ObjectRef& ref, uint64_t object_size, uint64_t offset,
                          size_t length, Extent extent = {});

  // The same read, without making the caller wait for the store: when every block is in
  // a tier the result is returned; otherwise nullopt, and the read runs on the fetch pool,
  // which calls `done` with its outcome (on a pool thread).
  using ReadDone = std::function<void(Result<ReadResult>)>;
  std::optional<Result<ReadResult>> ReadOrDefer(const ObjectRef& ref, uint64_t object_size,
                                                uint64_t offset, size_t length, ReadDone done,
                                                Extent extent = {});

  // Pulls every block of [offset, offset + length) of the object (clipped to its end) into
  // the tiers as work of class `c` (warm, or background for a data set prefetch); `done`
  // gets the outcome once all are in (on a pool thread, or on the caller's when the pool is
  // not running). At most 16 blocks of one object are in flight at once.
  void Warm(const ObjectRef& ref, uint64_t object_size, uint64_t offset, uint64_t length,
            FetchPool::Class c, std::function<void(Status)> done);
  // Whether some tier holds the first and last blocks of that range (no data is read).
  bool Cached(const ObjectRef& ref, uint64_t object_size, uint64_t offset, uint64_t length) const;

  // Objects made here from other objects' bytes (an archive's deflated member, inflated)
  // rather than read from the store: `make` fetches their blocks, and is used for every ref
  // whose version starts with '\0' (no store's version does). Set before Start().
  using Maker = std::function<Result<size_t>(const ObjectRef& ref, uint64_t offset, size_t length,
                                             char* buf, ReadVia* via)>;
  void SetMaker(Maker make) { make_ = std::move(make); }
  static bool IsMade(const ObjectRef& ref) {
    return !ref.version.empty() && ref.version[0] == '\0';
  }

  FetchPool& pool() { return pool_; }

  size_t block_size() const { return block_size_; }
  CacheStats Stats() const;

  // A namespace of several sources: `tag_of` gives the tag (1 + the source's position) of
  // an object key, put in every block's hash (MakeBlockKey). Set before Start().
  void SetTagger(Tier::TagOf tag_of) { tag_of_ = std::move(tag_of); }
  // Bytes each tier holds by tag (index: the tag).
  std::vector<std::pair<std::string, std::array<uint64_t, 256>>> BytesByTag() const;

 private:
  using BlockResult = Result<std::shared_ptr<const Block>>;
  struct Flight;
  // The block `key` (of `ref`) from a tier, another reader's fetch, or the store.
  // `tiers_checked`: the caller has just looked in the tiers (skip the first look).
  // `*tier`: the index of the tier that had it, or -1 (fetched, or another reader's fetch).
  // `*fetched`: this call fetched the block from the store itself.
  BlockResult GetBlock(const ObjectRef& ref, uint64_t object_size, const BlockKey& key,
                       bool tiers_checked = false, int* tier = nullptr, bool* fetched = nullptr);
  // The flight fetching `key`, joined, or started with `*leader` set (the caller must then
  // run LeadFetch for it).
  std::shared_ptr<Flight> JoinOrLead(const BlockKey& key, bool* leader);
  // Removes `flight` from its shard and lands it; false if something landed it first.
  bool Finish(const BlockKey& key, const std::shared_ptr<Flight>& flight,
              const BlockResult& result);
  BlockResult FetchHedged(const ObjectRef& ref, const BlockKey& key, uint64_t object_size,
                          const std::shared_ptr<Flight>& flight);
  // Runs the leader's fetch (looking in the tiers once more) and lands its flight.
  BlockResult LeadFetch(const ObjectRef& ref, uint64_t object_size, const BlockKey& key,
                        const std::shared_ptr<Flight>& flight, int* tier, bool* fetched);
  // A read's bytes from its blocks (by block from the first; `tier`: which tier served
  // each, or -1), then read-ahead.
  ReadResult Assemble(const ObjectRef& ref, uint64_t object_size, uint64_t offset, uint64_t end,
                      std::span<const std::shared_ptr<const Block>> blocks,
                      std::span<const int> tier, bool refetched, Extent extent);
  bool Held(const BlockKey& key) const;  // some tier has it (no read)
  // Assembles a read from blocks found in the tiers (`cached`, by block from `first`) and
  // GetBlock for the rest.
  Result<ReadResult> ReadBlocks(const ObjectRef& ref, uint64_t object_size, uint64_t offset,
                                uint64_t end, std::vector<BlockKey> keys,
                                std::vector<std::shared_ptr<const Block>> cached,
                                std::vector<int> cached_tier, Extent extent);
  std::shared_ptr<const Block> FromTiers(const BlockKey& key, int* tier = nullptr);
  // The keys of blocks [first, last] of `ref` and what the tiers hold of them (FromTiersBatch).
  void LookUp(const ObjectRef& ref, uint64_t object_size, uint64_t first, uint64_t last,
              std::vector<BlockKey>* keys, std::vector<std::shared_ptr<const Block>>* cached,
              std::vector<int>* tier);
  // out[i] = the block for keys[i] if some tier has it (each tier asked once, in a batch),
  // and tier_of[i] = that tier's index.
  void FromTiersBatch(std::span<const BlockKey> keys, std::span<std::shared_ptr<const Block>> out,
                      std::span<int> tier_of);
  BlockResult Fetch(const ObjectRef& ref, const BlockKey& key, uint64_t object_size);
  // `refetched`: the read fetched again a block read-ahead had fetched (evicted unread).
  void MaybePrefetch(const ObjectRef& ref, uint64_t object_size, uint64_t first, uint64_t last,
                     bool refetched, Extent extent);

  BlockKey KeyOf(const ObjectRef& ref, uint64_t index, uint64_t object_size) const {
    return MakeBlockKey(ref, index, object_size, tag_of_ ? tag_of_(ref.key) : 0);
  }

  Store& store_;
  Maker make_;
  Tier::TagOf tag_of_;
  const std::vector<Tier*> tiers_;
  const size_t block_size_;

  static constexpr size_t kFlightShards = 64;
  struct FlightShard {
    Mutex mu;
    std::unordered_map<Hash128, std::shared_ptr<Flight>, Hash128Hasher> flights GUARDED_BY(mu);
  };
  std::unique_ptr<FlightShard[]> flight_shards_;

  // Read-ahead.
  struct Stream {
    uint64_t next_block = 0;  // where a sequential reader goes next
    uint64_t window = 0;
    uint64_t max_window = 0;     // halved each time read-ahead was evicted unread
    uint64_t prefetched_to = 0;  // blocks below this are fetched or in flight
  };
  const PrefetchOptions prefetch_;
  Mutex stream_mu_;
  std::unordered_map<std::string, Stream> streams_ GUARDED_BY(stream_mu_);
  mutable Mutex job_mu_;
  uint64_t inflight_bytes_ GUARDED_BY(job_mu_) = 0;
  uint64_t inflight_peak_ GUARDED_BY(job_mu_) = 0;
  RecentKeys readahead_keys_{4096};  // blocks read-ahead fetched
  FetchPool pool_;
  Hedger hedger_{Hedger::Options{}};

  // Reads served by each tier (by index in tiers_: one per block a read touched, with the
  // bytes the reader got from it) and blocks fetched by each route (ReadVia, whole blocks,
  // read-ahead included).
  struct SourceCounter {
    std::atomic<uint64_t> blocks{0}, bytes{0};
    void Add(uint64_t n) {
      blocks.fetch_add(1, std::memory_order_relaxed);
      bytes.fetch_add(n, std::memory_order_relaxed);
    }
  };
  std::unique_ptr<SourceCounter[]> tier_sources_;
  SourceCounter via_sources_[4];

  // One warning per remote failure, at most 10 per 10 s: a dead remote must not flood logs.
  LogLimiter remote_failure_log_{10, std::chrono::seconds(10)};
  std::atomic<uint64_t> reads_{0}, read_bytes_{0}, remote_reads_{0}, remote_bytes_{0},
      remote_errors_{0}, singleflight_waits_{0}, prefetched_{0}, prefetch_dropped_{0},
      readahead_refetched_{0}, hedge_wins_{0}, hits_{0}, misses_{0};
};

}  // namespace tierfs
