// RamTier: blocks in memory, bounded by a byte quota.
//
// Sharded by key hash (one mutex per shard) so many reader threads do not contend.
// Eviction is segmented LRU: a new block enters a probation segment and moves to the
// protected segment (at most 80% of a shard) only when read again, so a one-pass scan
// over more data than fits only churns probation and never flushes the hot set.
// Eviction runs on insert and frees just what the new block needs: the whole quota serves
// hits, and the memory a victim frees is what the next block reuses (evicting in batches
// left up to a quarter of the quota empty and handed the heap big runs of free memory).
#pragma once

#include <memory>
#include <vector>

#include "tiers/tier.h"

namespace tierfs {

class RamTier : public Tier {
 public:
  // `block_size` sizes the shards: a shard always has room for several blocks.
  RamTier(uint64_t capacity_bytes, size_t block_size);
  ~RamTier() override;
  RamTier(const RamTier&) = delete;
  RamTier& operator=(const RamTier&) = delete;

  const char* name() const override { return "ram"; }
  std::shared_ptr<const Block> Get(const BlockKey& key) override;
  bool Contains(const BlockKey& key) const override;
  void Put(const BlockKey& key, const std::shared_ptr<const Block>& block) override;
  TierStats Stats() const override;
  void AddBytesByTag(const TagOf& tag_of, std::span<uint64_t, 256> out) const override;

 private:
  class Shard;
  Shard& ShardFor(const BlockKey& key) const;
  uint64_t capacity_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace tierfs
