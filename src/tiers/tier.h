// Tier: one level of the block cache (RAM, NVMe). Tiers share this interface so a
// BlockCache can chain any of them, and a test can build RAM-only or NVMe-only caches.
//
// Contract:
//  - Get returns only verified, complete blocks of exactly the key asked for; any error
//    inside the tier is a miss (counted), never an error to the caller.
//  - Put may decline a block (admission policy, no space, I/O errors) silently.
//  - Used bytes never exceed the capacity the tier was given.
//  - Thread-safe: Get and Put may be called from any number of threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>

#include "tiers/block.h"

namespace tierfs {

struct TierStats {
  uint64_t capacity_bytes = 0;
  uint64_t used_bytes = 0;
  uint64_t blocks = 0;
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t inserts = 0;
  uint64_t evictions = 0;
  uint64_t errors = 0;             // I/O errors inside the tier (each was served as a miss)
  uint64_t checksum_failures = 0;  // blocks that failed verification (each was dropped)
};

// The event counters a disk tier keeps, and how they fill TierStats.
struct TierCounters {
  std::atomic<uint64_t> hits{0}, misses{0}, inserts{0}, evictions{0}, errors{0},
      checksum_failures{0};
  void Fill(TierStats* s) const {
    s->hits = hits;
    s->misses = misses;
    s->inserts = inserts;
    s->evictions = evictions;
    s->errors = errors;
    s->checksum_failures = checksum_failures;
  }
};

class Tier {
 public:
  virtual ~Tier() = default;
  virtual const char* name() const = 0;
  virtual std::shared_ptr<const Block> Get(const BlockKey& key) = 0;
  // Several lookups at once: out[i] is the block for *keys[i], or null. A tier whose
  // lookups do I/O overrides this to issue that I/O together.
  virtual void GetBatch(std::span<const BlockKey* const> keys,
                        std::span<std::shared_ptr<const Block>> out) {
    for (size_t i = 0; i < keys.size(); ++i) out[i] = Get(*keys[i]);
  }
  virtual void Put(const BlockKey& key, const std::shared_ptr<const Block>& block) = 0;
  // Whether the tier holds the block, without reading it or counting a lookup (a
  // background prefetch asks before fetching what may be cached already).
  virtual bool Contains(const BlockKey& key) const = 0;
  virtual TierStats Stats() const = 0;

  // Adds the bytes the tier holds to out[tag], by the tag of each block's source
  // (BlockTag of its key's hash; tiers that keep object keys may ask `tag_of`).
  using TagOf = std::function<uint8_t(std::string_view key)>;
  virtual void AddBytesByTag(const TagOf& tag_of, std::span<uint64_t, 256> out) const {
    (void)tag_of;
    (void)out;
  }
};

}  // namespace tierfs
