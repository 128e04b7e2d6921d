#include "tiers/ram_tier.h"

#include <algorithm>
#include <list>
#include <mutex>
#include <unordered_map>

#include "common/mutex.h"

namespace tierfs {

class RamTier::Shard {
 public:
  explicit Shard(uint64_t capacity) : capacity_(capacity), protected_cap_(capacity / 10 * 8) {}

  bool Contains(const Hash128& h) const {
    MutexLock lock(mu_);
    return map_.count(h) > 0;
  }
  std::shared_ptr<const Block> Get(const Hash128& h) {
    MutexLock lock(mu_);
    auto it = map_.find(h);
    if (it == map_.end()) {
      ++misses_;
      return nullptr;
    }
    ++hits_;
    Node& node = *it->second;
    if (node.is_protected) {
      protected_.splice(protected_.begin(), protected_, it->second);
    } else {
      // Second touch: promote to the protected segment.
      node.is_protected = true;
      probation_bytes_ -= node.bytes;
      protected_bytes_ += node.bytes;
      protected_.splice(protected_.begin(), probation_, it->second);
      while (protected_bytes_ > protected_cap_ && protected_.size() > 1) {
        auto last = std::prev(protected_.end());
        last->is_protected = false;
        protected_bytes_ -= last->bytes;
        probation_bytes_ += last->bytes;
        probation_.splice(probation_.begin(), protected_, last);
      }
    }
    return node.block;
  }

  void Put(const Hash128& h, const std::shared_ptr<const Block>& block) {
    std::vector<std::shared_ptr<const Block>> dropped;  // freed outside the lock
    MutexLock lock(mu_);
    uint64_t bytes = block->footprint();
    if (bytes > capacity_ || map_.count(h)) return;
    if (used() + bytes > capacity_) {
      const uint64_t target = capacity_ - bytes;
      while (used() > target && (!probation_.empty() || !protected_.empty())) {
        auto& list = probation_.empty() ? protected_ : probation_;
        Node& victim = list.back();
        (victim.is_protected ? protected_bytes_ : probation_bytes_) -= victim.bytes;
        dropped.push_back(std::move(victim.block));
        map_.erase(victim.hash);
        list.pop_back();
        ++evictions_;
      }
    }
    probation_.push_front(Node{h, block, bytes, false});
    probation_bytes_ += bytes;
    map_.emplace(h, probation_.begin());
    ++inserts_;
  }

  void AddStats(TierStats* s) const {
    MutexLock lock(mu_);
    s->used_bytes += used();
    s->blocks += map_.size();
    s->hits += hits_;
    s->misses += misses_;
    s->inserts += inserts_;
    s->evictions += evictions_;
  }

  void AddBytesByTag(std::span<uint64_t, 256> out) const {
    MutexLock lock(mu_);
    for (const auto& [hash, node] : map_) out[BlockTag(hash)] += node->bytes;
  }

 private:
  struct Node {
    Hash128 hash;
    std::shared_ptr<const Block> block;
    uint64_t bytes;
    bool is_protected;
  };
  uint64_t used() const REQUIRES(mu_) { return probation_bytes_ + protected_bytes_; }

  const uint64_t capacity_, protected_cap_;
  mutable Mutex mu_;
  // Front = most recently used.
  std::list<Node> probation_ GUARDED_BY(mu_), protected_ GUARDED_BY(mu_);
  std::unordered_map<Hash128, std::list<Node>::iterator, Hash128Hasher> map_ GUARDED_BY(mu_);
  uint64_t probation_bytes_ GUARDED_BY(mu_) = 0, protected_bytes_ GUARDED_BY(mu_) = 0;
  uint64_t hits_ GUARDED_BY(mu_) = 0, misses_ GUARDED_BY(mu_) = 0;
  uint64_t inserts_ GUARDED_BY(mu_) = 0, evictions_ GUARDED_BY(mu_) = 0;
};

RamTier::RamTier(uint64_t capacity_bytes, size_t block_size) : capacity_(capacity_bytes) {
  // Up to 16 shards, each with room for at least 8 blocks.
  uint64_t per_block = std::max<uint64_t>(block_size, kBlockAlign);
  uint64_t n = std::clamp<uint64_t>(capacity_bytes / (per_block * 8), 1, 16);
  for (uint64_t i = 0; i < n; ++i) shards_.push_back(std::make_unique<Shard>(capacity_bytes / n));
}

RamTier::~RamTier() = default;

RamTier::Shard& RamTier::ShardFor(const BlockKey& key) const {
  return *shards_[key.hash.hi % shards_.size()];
}

std::shared_ptr<const Block> RamTier::Get(const BlockKey& key) {
  return ShardFor(key).Get(key.hash);
}

bool RamTier::Contains(const BlockKey& key) const { return ShardFor(key).Contains(key.hash); }

void RamTier::Put(const BlockKey& key, const std::shared_ptr<const Block>& block) {
  ShardFor(key).Put(key.hash, block);
}

void RamTier::AddBytesByTag(const TagOf&, std::span<uint64_t, 256> out) const {
  for (const auto& shard : shards_) shard->AddBytesByTag(out);
}

TierStats RamTier::Stats() const {
  TierStats s;
  s.capacity_bytes = capacity_;
  for (const auto& shard : shards_) shard->AddStats(&s);
  return s;
}

}  // namespace tierfs
