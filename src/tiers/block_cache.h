// BlockCache: the read path. Serves byte ranges of objects from a chain of tiers (RAM,
// then NVMe) in front of a Store, in fixed-size blocks.
//
//  - A hit in a lower tier is promoted to the tiers above it.
//  - A miss is fetched from the store with one ranged read per block; concurrent readers
//    of the same missing block share that one read (single-flight).
//  - A fetched block is offered to every tier (the NVMe tier writes asynchronously).
//  - Only a store failure reaches the caller (with the store's errno, EIO by default);
//    tier failures are misses.
//
// Thread-safe. Does not own the store or the tiers; they must outlive it.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "tiers/block.h"
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

struct CacheStats {
  std::vector<std::pair<std::string, TierStats>> tiers;
  uint64_t reads = 0;
  uint64_t read_bytes = 0;
  uint64_t remote_reads = 0;
  uint64_t remote_bytes = 0;
  uint64_t remote_errors = 0;
  uint64_t singleflight_waits = 0;
};

class BlockCache {
 public:
  BlockCache(Store& store, std::vector<Tier*> tiers, size_t block_size);
  BlockCache(const BlockCache&) = delete;
  BlockCache& operator=(const BlockCache&) = delete;

  // Reads [offset, offset + length) of `ref`, an object of `object_size` bytes, clipped to
  // the object's end.
  Result<ReadResult> Read(const ObjectRef& ref, uint64_t object_size, uint64_t offset,
                          size_t length);

  size_t block_size() const { return block_size_; }
  CacheStats Stats() const;

 private:
  using BlockResult = Result<std::shared_ptr<const Block>>;
  struct Flight;
  BlockResult GetBlock(const ObjectRef& ref, uint64_t object_size, uint64_t index);
  std::shared_ptr<const Block> FromTiers(const BlockKey& key);
  BlockResult Fetch(const ObjectRef& ref, const BlockKey& key, uint64_t object_size);

  Store& store_;
  const std::vector<Tier*> tiers_;
  const size_t block_size_;

  static constexpr size_t kFlightShards = 64;
  struct FlightShard {
    std::mutex mu;  // protects flights
    std::unordered_map<Hash128, std::shared_ptr<Flight>, Hash128Hasher> flights;
  };
  std::unique_ptr<FlightShard[]> flight_shards_;

  std::atomic<uint64_t> reads_{0}, read_bytes_{0}, remote_reads_{0}, remote_bytes_{0},
      remote_errors_{0}, singleflight_waits_{0};
};

}  // namespace tierfs
