#include "tiers/block_cache.h"

#include <algorithm>
#include <cstring>
#include <future>

#include "common/blocking.h"
#include "common/log.h"

namespace tierfs {

struct BlockCache::Flight {
  std::promise<BlockResult> promise;
  std::shared_future<BlockResult> result = promise.get_future().share();
};

void ReadResult::CopyTo(char* out) const {
  for (const iovec& v : iov) {
    std::memcpy(out, v.iov_base, v.iov_len);
    out += v.iov_len;
  }
}

BlockCache::BlockCache(Store& store, std::vector<Tier*> tiers, size_t block_size,
                       PrefetchOptions prefetch)
    : store_(store),
      tiers_(std::move(tiers)),
      block_size_(block_size),
      flight_shards_(new FlightShard[kFlightShards]),
      prefetch_(prefetch),
      tier_sources_(new SourceCounter[tiers_.size() + 1]) {}

BlockCache::~BlockCache() { Stop(); }

void BlockCache::Start() {
  std::lock_guard lock(job_mu_);
  if (!workers_.empty()) return;
  stopping_ = false;
  for (unsigned i = 0; i < prefetch_.workers; ++i)
    workers_.emplace_back([this] {
      SetThreadName("tierfs-prefetch");
      PrefetchLoop();
    });
}

void BlockCache::Stop() {
  std::vector<std::thread> workers;
  {
    std::lock_guard lock(job_mu_);
    stopping_ = true;
    jobs_.clear();
    workers.swap(workers_);
  }
  job_cv_.notify_all();
  for (auto& w : workers) w.join();
}

void BlockCache::PrefetchLoop() {
  while (true) {
    PrefetchJob job;
    {
      std::unique_lock lock(job_mu_);
      job_cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    // Errors surface to the reader that asks for the block later.
    (void)GetBlock(job.ref, job.object_size, KeyOf(job.ref, job.index, job.object_size));
    ++prefetched_;
    std::lock_guard lock(job_mu_);
    inflight_bytes_ -= block_size_;
  }
}

// Called after each read of blocks [first, last] of an object.
void BlockCache::MaybePrefetch(const ObjectRef& ref, uint64_t object_size, uint64_t first,
                               uint64_t last) {
  if (prefetch_.workers == 0 || prefetch_.max_window == 0) return;
  const uint64_t blocks = (object_size + block_size_ - 1) / block_size_;
  uint64_t from = 0, to = 0;
  {
    std::lock_guard lock(stream_mu_);
    if (streams_.size() > 4096) streams_.clear();  // forget old readers rather than grow
    Stream& s = streams_[ref.key];
    bool sequential = first == s.next_block || (first + 1 == s.next_block && first <= last);
    if (sequential) {
      s.window = std::clamp<uint64_t>(s.window * 2, 1, prefetch_.max_window);
    } else {
      s.window = 0;
      s.prefetched_to = 0;
    }
    s.next_block = last + 1;
    if (s.window == 0) return;
    from = std::max(last + 1, s.prefetched_to);
    to = std::min(blocks, last + 1 + s.window);
    if (from >= to) return;
    s.prefetched_to = to;
  }
  std::lock_guard lock(job_mu_);
  if (workers_.empty() || stopping_) return;
  for (uint64_t i = from; i < to; ++i) {
    if (inflight_bytes_ + block_size_ > prefetch_.budget) {
      ++prefetch_dropped_;
      continue;
    }
    inflight_bytes_ += block_size_;
    inflight_peak_ = std::max(inflight_peak_, inflight_bytes_);
    jobs_.push_back(PrefetchJob{ref, object_size, i});
  }
  job_cv_.notify_all();
}

Result<ReadResult> BlockCache::Read(const ObjectRef& ref, uint64_t object_size, uint64_t offset,
                                    size_t length) {
  ReadResult out;
  ++reads_;
  if (offset >= object_size || length == 0) return out;
  const uint64_t end = std::min<uint64_t>(object_size, offset + length);
  const uint64_t first = offset / block_size_, last = (end - 1) / block_size_;
  // A read over several blocks looks them all up first, so the NVMe tier reads its hits
  // in one batch rather than one round trip per block.
  const bool batched = last > first && !tiers_.empty();
  std::vector<BlockKey> keys;
  std::vector<std::shared_ptr<const Block>> cached;
  std::vector<int> cached_tier;
  if (batched) {
    keys.reserve(last - first + 1);
    for (uint64_t i = first; i <= last; ++i) keys.push_back(KeyOf(ref, i, object_size));
    cached.resize(keys.size());
    cached_tier.assign(keys.size(), -1);
    FromTiersBatch(keys, cached, cached_tier);
  }
  int tier = -1;  // the tier that served the block in hand, if one did
  auto get = [&](uint64_t i) -> BlockResult {
    if (!batched) return GetBlock(ref, object_size, KeyOf(ref, i, object_size), false, &tier);
    if (cached[i - first] == nullptr) {
      return GetBlock(ref, object_size, keys[i - first], true, &tier);
    }
    ++hits_;
    tier = cached_tier[i - first];
    return std::move(cached[i - first]);
  };
  for (uint64_t i = first; i <= last; ++i) {
    BlockResult block = get(i);
    if (!block.ok()) return block.status();
    const uint64_t block_start = i * block_size_;
    const uint64_t from = std::max(offset, block_start) - block_start;
    const uint64_t to = std::min<uint64_t>(end - block_start, (*block)->size());
    if (to <= from) break;
    if (tier >= 0) tier_sources_[tier].Add(to - from);
    out.iov.push_back({const_cast<char*>((*block)->data() + from), to - from});
    out.size += to - from;
    out.blocks.push_back(std::move(*block));
  }
  read_bytes_ += out.size;
  MaybePrefetch(ref, object_size, first, last);
  return out;
}

std::shared_ptr<const Block> BlockCache::FromTiers(const BlockKey& key, int* tier) {
  for (size_t t = 0; t < tiers_.size(); ++t) {
    if (auto block = tiers_[t]->Get(key)) {
      if (tier != nullptr) *tier = static_cast<int>(t);
      for (size_t up = 0; up < t; ++up) tiers_[up]->Put(key, block);
      return block;
    }
  }
  return nullptr;
}

void BlockCache::FromTiersBatch(std::span<const BlockKey> keys,
                                std::span<std::shared_ptr<const Block>> out,
                                std::span<int> tier_of) {
  std::vector<const BlockKey*> want;
  std::vector<size_t> where;
  std::vector<std::shared_ptr<const Block>> got;
  for (size_t t = 0; t < tiers_.size(); ++t) {
    want.clear();
    where.clear();
    for (size_t i = 0; i < keys.size(); ++i) {
      if (out[i] == nullptr) {
        want.push_back(&keys[i]);
        where.push_back(i);
      }
    }
    if (want.empty()) return;
    got.assign(want.size(), nullptr);
    tiers_[t]->GetBatch(want, got);
    for (size_t j = 0; j < want.size(); ++j) {
      if (got[j] == nullptr) continue;
      tier_of[where[j]] = static_cast<int>(t);
      for (size_t up = 0; up < t; ++up) tiers_[up]->Put(*want[j], got[j]);
      out[where[j]] = std::move(got[j]);
    }
  }
}

BlockCache::BlockResult BlockCache::GetBlock(const ObjectRef& ref, uint64_t object_size,
                                             const BlockKey& key, bool tiers_checked, int* tier) {
  if (tier != nullptr) *tier = -1;
  if (!tiers_checked) {
    if (auto block = FromTiers(key, tier)) {
      ++hits_;
      return block;
    }
  }

  FlightShard& shard = flight_shards_[key.hash.lo % kFlightShards];
  std::shared_ptr<Flight> flight;
  bool leader = false;
  {
    std::lock_guard lock(shard.mu);
    std::shared_ptr<Flight>& slot = shard.flights[key.hash];
    if (slot == nullptr) {
      slot = std::make_shared<Flight>();
      leader = true;
    }
    flight = slot;
  }
  if (!leader) {
    ++singleflight_waits_;
    ++hits_;  // served by another reader's fetch
    AboutToBlock();
    return flight->result.get();
  }
  // Leader. A previous leader may have finished between our tier check and our flight
  // insert: it fills the tiers before leaving, so look once more before fetching.
  BlockResult result = Status::Io("fetch did not run");
  try {
    if (auto block = FromTiers(key, tier)) {
      ++hits_;
      result = block;
    } else {
      ++misses_;
      AboutToBlock();
      result = Fetch(ref, key, object_size);
    }
  } catch (const std::bad_alloc&) {
    result = Status(ENOMEM, "out of memory fetching a block");
  } catch (const std::exception& e) {
    result = Status::Io(std::string("fetch failed: ") + e.what());
  }
  {
    std::lock_guard lock(shard.mu);
    shard.flights.erase(key.hash);
  }
  flight->promise.set_value(result);
  return result;
}

BlockCache::BlockResult BlockCache::Fetch(const ObjectRef& ref, const BlockKey& key,
                                          uint64_t object_size) {
  const uint64_t start = key.index * block_size_;
  const size_t expected = static_cast<size_t>(std::min<uint64_t>(block_size_, object_size - start));
  auto block = Block::Allocate(expected);
  ++remote_reads_;
  ReadVia via = ReadVia::kOrigin;
  Result<size_t> n = store_.ReadRange(ref, start, expected, block->mutable_data(), &via);
  if (!n.ok()) {
    ++remote_errors_;
    TLOG_WARN_LIMITED(remote_failure_log_, "remote read of '{}' block {} failed: {}", ref.key,
                      key.index, n.status().message());
    return n.status();
  }
  if (*n != expected) {
    ++remote_errors_;
    TLOG_WARN_LIMITED(remote_failure_log_,
                      "remote read of '{}' block {}: got {} bytes, expected {} (object changed?)",
                      ref.key, key.index, *n, expected);
    return Status::Io("short read of '" + ref.key + "'");
  }
  remote_bytes_ += *n;
  via_sources_[static_cast<size_t>(via) & 3].Add(*n);
  block->set_size(*n);
  std::shared_ptr<const Block> shared = std::move(block);
  for (Tier* tier : tiers_) tier->Put(key, shared);
  return shared;
}

std::vector<std::pair<std::string, std::array<uint64_t, 256>>> BlockCache::BytesByTag() const {
  std::vector<std::pair<std::string, std::array<uint64_t, 256>>> out;
  for (const Tier* t : tiers_) {
    out.emplace_back(t->name(), std::array<uint64_t, 256>{});
    t->AddBytesByTag(tag_of_, out.back().second);
  }
  return out;
}

CacheStats BlockCache::Stats() const {
  CacheStats s;
  for (const Tier* t : tiers_) s.tiers.emplace_back(t->name(), t->Stats());
  for (size_t t = 0; t < tiers_.size(); ++t) {
    s.sources.emplace_back(tiers_[t]->name(), SourceCount{tier_sources_[t].blocks.load(),
                                                          tier_sources_[t].bytes.load()});
  }
  for (ReadVia via : {ReadVia::kCacheHit, ReadVia::kCacheMiss, ReadVia::kCache, ReadVia::kOrigin}) {
    const SourceCounter& c = via_sources_[static_cast<size_t>(via)];
    s.sources.emplace_back(ReadViaName(via), SourceCount{c.blocks.load(), c.bytes.load()});
  }
  s.reads = reads_;
  s.read_bytes = read_bytes_;
  s.remote_reads = remote_reads_;
  s.remote_bytes = remote_bytes_;
  s.remote_errors = remote_errors_;
  s.singleflight_waits = singleflight_waits_;
  s.prefetched_blocks = prefetched_;
  s.prefetch_dropped = prefetch_dropped_;
  {
    std::lock_guard lock(job_mu_);
    s.prefetch_inflight_peak = inflight_peak_;
  }
  s.hits = hits_;
  s.misses = misses_;
  return s;
}

}  // namespace tierfs
