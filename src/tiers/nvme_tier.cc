// NvmeTier: lookups (verified reads, batched), puts into the writer's queue, and stats.
// Start-up is in nvme_recovery.cc, the writer thread in nvme_writer.cc.
#include "tiers/nvme_tier.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "common/blocking.h"
#include "common/log.h"
#include "tiers/uring_io.h"

namespace tierfs {

NvmeTier::NvmeTier(const NvmeTierOptions& options)
    : options_(options), shards_(new Shard[kShards]) {}

NvmeTier::~NvmeTier() {
  Stop();
  for (auto& seg : segments_) {
    if (seg->fd >= 0) ::close(seg->fd);
  }
  std::free(staging_);
}

void NvmeTier::Publish(uint32_t seg, const DirEntry& e, uint32_t generation) {
  Hash128 key{e.key_lo, e.key_hi};
  Shard& shard = ShardFor(key);
  MutexLock lock(shard.mu);
  auto [it, inserted] = shard.map.try_emplace(key);
  if (!inserted) used_bytes_ -= RecordBytes(it->second.length);
  it->second = Loc{seg, generation, e.offset_units, e.length, e.index, false};
  used_bytes_ += RecordBytes(e.length);
  if (inserted) ++blocks_;
}

bool NvmeTier::RefusedWhenFull(const Pending& p) { return !admission_->MayEvict(p.refetched); }

bool NvmeTier::Erase(const Hash128& key, uint32_t segment, uint32_t generation,
                     std::optional<uint32_t> offset_units, bool* accessed) {
  Shard& shard = ShardFor(key);
  MutexLock lock(shard.mu);
  auto it = shard.map.find(key);
  if (it == shard.map.end() || it->second.segment != segment ||
      it->second.generation != generation ||
      (offset_units && it->second.offset_units != *offset_units)) {
    return false;  // the key lives elsewhere now (rewritten, or its segment was reused)
  }
  if (accessed != nullptr) *accessed = it->second.accessed;
  used_bytes_ -= RecordBytes(it->second.length);
  --blocks_;
  shard.map.erase(it);
  return true;
}

bool NvmeTier::Find(const BlockKey& key, Loc* loc) {
  if (Skips(key)) return false;
  {
    Shard& shard = ShardFor(key.hash);
    MutexLock lock(shard.mu);
    auto it = shard.map.find(key.hash);
    if (it == shard.map.end()) {
      ++counters_.misses;  // a re-referenced miss enters the hit window in Put, once per fetch
      return false;
    }
    it->second.accessed = true;
    *loc = it->second;
  }
  admission_->CountLookup(true);
  return true;
}

bool NvmeTier::Contains(const BlockKey& key) const {
  if (Skips(key)) return false;
  Shard& shard = ShardFor(key.hash);
  MutexLock lock(shard.mu);
  return shard.map.count(key.hash) > 0;
}

std::shared_ptr<Block> NvmeTier::RecordBuffer(const Loc& loc) {
  try {
    return Block::AllocateWithOffset(RecordBytes(loc.length), kRecordHeaderSize);
  } catch (const std::bad_alloc&) {
    ++counters_.misses;
    return nullptr;
  }
}

std::shared_ptr<const Block> NvmeTier::Verified(const BlockKey& key, const Loc& loc,
                                                std::shared_ptr<Block> block,
                                                const Result<size_t>& n) {
  const size_t rec = RecordBytes(loc.length);
  if (!n.ok() || *n != rec) {
    ++counters_.errors;
    ++counters_.misses;
    TLOG_WARN_LIMITED(io_error_log_, "nvme cache: read failed: {}",
                      n.ok() ? "short read" : n.status().message());
    Erase(key.hash, loc.segment, loc.generation, loc.offset_units);
    return nullptr;
  }
  RecordHeader h;
  std::memcpy(&h, block->storage(), sizeof h);
  if (!RecordValid(h, key.hash, key.index, block->data(), rec - kRecordHeaderSize) ||
      h.length != loc.length || h.generation != loc.generation) {
    ++counters_.misses;
    if (segments_[loc.segment]->generation.load() == loc.generation) {
      // Not a segment being rewritten under us: the bytes on disk are bad.
      ++counters_.checksum_failures;
      TLOG_WARN_LIMITED(io_error_log_,
                        "nvme cache: a block in segment {} failed verification; dropped",
                        loc.segment);
    }
    Erase(key.hash, loc.segment, loc.generation, loc.offset_units);
    return nullptr;
  }
  block->set_size(h.length);
  ++counters_.hits;
  return block;
}

std::shared_ptr<const Block> NvmeTier::Get(const BlockKey& key) {
  Loc loc;
  if (!Find(key, &loc)) return nullptr;
  std::shared_ptr<Block> block = RecordBuffer(loc);
  if (block == nullptr) return nullptr;
  AboutToBlock();
  ++read_batches_;
  auto n = UringRead(segments_[loc.segment]->fd, block->storage(), RecordBytes(loc.length),
                     static_cast<uint64_t>(loc.offset_units) * kUnit);
  return Verified(key, loc, std::move(block), n);
}

void NvmeTier::GetBatch(std::span<const BlockKey* const> keys,
                        std::span<std::shared_ptr<const Block>> out) {
  struct Found {
    size_t i;
    Loc loc;
    std::shared_ptr<Block> block;
  };
  std::vector<Found> found;
  found.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    out[i] = nullptr;
    Loc loc;
    if (!Find(*keys[i], &loc)) continue;
    if (auto block = RecordBuffer(loc)) found.push_back(Found{i, loc, std::move(block)});
  }
  if (found.empty()) return;
  std::vector<ReadOp> ops(found.size());
  for (size_t j = 0; j < found.size(); ++j) {
    const Found& f = found[j];
    ops[j].fd = segments_[f.loc.segment]->fd;
    ops[j].buf = f.block->storage();
    ops[j].len = RecordBytes(f.loc.length);
    ops[j].offset = static_cast<uint64_t>(f.loc.offset_units) * kUnit;
  }
  AboutToBlock();
  ++read_batches_;
  UringReadBatch(ops);
  for (size_t j = 0; j < found.size(); ++j) {
    Found& f = found[j];
    out[f.i] = Verified(*keys[f.i], f.loc, std::move(f.block), ops[j].result);
  }
}

void NvmeTier::Put(const BlockKey& key, const std::shared_ptr<const Block>& block) {
  if (RecordBytes(block->size()) > data_bytes_ || Skips(key)) return;
  {
    Shard& shard = ShardFor(key.hash);
    MutexLock lock(shard.mu);
    if (shard.map.count(key.hash)) return;
  }
  const bool refetched = admission_->NoteFetch(key.hash);
  MutexLock lock(queue_mu_);
  // Backpressure: a reader faster than the disk waits (briefly) for the writer, so a cold
  // pass still lands on disk; only a stuck or failing disk makes blocks drop.
  space_cv_.wait_for(lock.native(), std::chrono::seconds(2), [&]() REQUIRES(queue_mu_) {
    return stopping_ || queued_bytes_ + block->size() <= options_.max_queue_bytes;
  });
  if (stopping_ || !writer_.joinable() ||
      queued_bytes_ + block->size() > options_.max_queue_bytes) {
    ++dropped_;
    return;
  }
  queued_bytes_ += block->size();
  queue_.push_back(Pending{key, block, refetched});
  // A writer gathering a batch wakes by itself when its window ends.
  if (!gathering_ || queued_bytes_ >= staging_size_) queue_cv_.notify_one();
}

void NvmeTier::AddBytesByTag(const TagOf&, std::span<uint64_t, 256> out) const {
  for (size_t i = 0; i < kShards; ++i) {
    MutexLock lock(shards_[i].mu);
    for (const auto& [hash, loc] : shards_[i].map) out[BlockTag(hash)] += loc.length;
  }
}

TierStats NvmeTier::Stats() const {
  TierStats s;
  s.capacity_bytes = segments_.size() * segment_size_;
  s.used_bytes = used_bytes_;
  s.blocks = blocks_;
  counters_.Fill(&s);
  return s;
}

}  // namespace tierfs
