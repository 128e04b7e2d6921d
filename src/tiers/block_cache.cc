#include "tiers/block_cache.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>

#include "common/blocking.h"
#include "common/log.h"

namespace tierfs {

// One fetch of one block and who waits for it: threads (Wait) and deferred reads (Then),
// which take no thread while they wait.
struct BlockCache::Flight {
  Mutex mu;
  std::condition_variable cv;
  bool landed GUARDED_BY(mu) = false;
  BlockResult result GUARDED_BY(mu) = Status::Io("fetch did not run");
  std::vector<std::function<void(const BlockResult&)>> then GUARDED_BY(mu);

  // The first answer lands (true); a later one (the loser of a hedged fetch) is dropped.
  bool Land(const BlockResult& r) {
    std::vector<std::function<void(const BlockResult&)>> waiting;
    {
      MutexLock lock(mu);
      if (landed) return false;
      result = r;
      landed = true;
      waiting.swap(then);
    }
    cv.notify_all();
    for (auto& f : waiting) f(r);
    return true;
  }
  bool Landed() {
    MutexLock lock(mu);
    return landed;
  }
  BlockResult Wait() {
    MutexLock lock(mu);
    cv.wait(lock.native(), [&]() REQUIRES(mu) { return landed; });
    return result;
  }
  // Runs `f` with the result once landed (now, on this thread, if it has).
  void Then(std::function<void(const BlockResult&)> f) {
    MutexLock lock(mu);
    if (!landed) {
      then.push_back(std::move(f));
      return;
    }
    const BlockResult landed_result = result;  // fixed once landed
    lock.Unlock();
    f(landed_result);
  }
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
      pool_(prefetch.fetch_slots),
      tier_sources_(new SourceCounter[tiers_.size() + 1]) {}

BlockCache::~BlockCache() { Stop(); }

void BlockCache::Start() {
  pool_.Start();
  if (prefetch_.hedge) hedger_.Start();
}

void BlockCache::Stop() {
  hedger_.Stop();
  pool_.Stop();
}

// How far (in blocks) a read may be from where its stream is and still be sequential:
// the kernel's read-ahead window (32 MiB) in default blocks.
constexpr uint64_t kReorderBlocks = 32;

// Called after each read of blocks [first, last] of an object.
void BlockCache::MaybePrefetch(const ObjectRef& ref, uint64_t object_size, uint64_t first,
                               uint64_t last, bool refetched, Extent extent) {
  if (prefetch_.max_window == 0 || !pool_.running()) return;
  const uint64_t blocks = (std::min(object_size, extent.end) + block_size_ - 1) / block_size_;
  if (last + 1 >= blocks) return;  // nothing of the file is left past this read
  uint64_t from = 0, to = 0;
  {
    MutexLock lock(stream_mu_);
    if (streams_.size() > 4096) streams_.clear();  // forget old readers rather than grow
    Stream& s =
        streams_[extent.start == 0 ? ref.key : ref.key + '@' + std::to_string(extent.start)];
    if (s.max_window == 0) s.max_window = prefetch_.max_window;
    // The kernel's read-ahead sends many READs of one stream at once and they arrive in
    // any order: once a stream is sequential, a read near where it is keeps it so.
    const bool sequential = first == s.next_block || (first + 1 == s.next_block && first <= last) ||
                            (s.window > 0 && first + kReorderBlocks >= s.next_block &&
                             first <= s.next_block + kReorderBlocks);
    if (sequential && refetched) {
      // What read-ahead fetched was evicted before the reader got there: the tiers cannot
      // hold this far ahead. Read less far ahead rather than fetch every block twice.
      ++readahead_refetched_;
      s.max_window = std::max<uint64_t>(1, s.max_window / 2);
      s.window = std::min(s.window, s.max_window);
    }
    if (sequential) {
      s.window = std::clamp<uint64_t>(s.window * 2, 1, s.max_window);
    } else {
      s.window = 0;
      s.prefetched_to = 0;
    }
    s.next_block = sequential ? std::max(s.next_block, last + 1) : last + 1;
    if (s.window == 0) return;
    from = std::max(last + 1, s.prefetched_to);
    to = std::min(blocks, last + 1 + s.window);
    if (from >= to) return;
    s.prefetched_to = to;
  }
  for (uint64_t i = from; i < to; ++i) {
    {
      MutexLock lock(job_mu_);
      if (inflight_bytes_ + block_size_ > prefetch_.budget) {
        ++prefetch_dropped_;
        continue;
      }
      inflight_bytes_ += block_size_;
      inflight_peak_ = std::max(inflight_peak_, inflight_bytes_);
    }
    const bool queued = pool_.Submit(FetchPool::Class::kBackground, [this, ref, object_size, i] {
      // Errors surface to the reader that asks for the block later.
      // A block some tier has, or some reader is fetching, is left alone: a prefetch
      // never holds a slot waiting. Errors surface to the reader that asks later.
      const BlockKey key = KeyOf(ref, i, object_size);
      if (!pool_.stopping() && !Held(key)) {
        bool leader = false;
        std::shared_ptr<Flight> flight = JoinOrLead(key, &leader);
        bool fetched = false;
        if (leader) (void)LeadFetch(ref, object_size, key, flight, nullptr, &fetched);
        if (fetched) {
          readahead_keys_.Insert(key.hash);
          ++prefetched_;
        }
      }
      MutexLock lock(job_mu_);
      inflight_bytes_ -= block_size_;
    });
    if (!queued) {
      MutexLock lock(job_mu_);
      inflight_bytes_ -= block_size_;
    }
  }
}

void BlockCache::LookUp(const ObjectRef& ref, uint64_t object_size, uint64_t first, uint64_t last,
                        std::vector<BlockKey>* keys,
                        std::vector<std::shared_ptr<const Block>>* cached, std::vector<int>* tier) {
  keys->reserve(last - first + 1);
  for (uint64_t i = first; i <= last; ++i) keys->push_back(KeyOf(ref, i, object_size));
  cached->assign(keys->size(), nullptr);
  tier->assign(keys->size(), -1);
  FromTiersBatch(*keys, *cached, *tier);
}

Result<ReadResult> BlockCache::Read(const ObjectRef& ref, uint64_t object_size, uint64_t offset,
                                    size_t length, Extent extent) {
  ++reads_;
  if (offset >= object_size || length == 0) return ReadResult{};
  const uint64_t end = std::min<uint64_t>(object_size, offset + length);
  const uint64_t first = offset / block_size_, last = (end - 1) / block_size_;
  // A read over several blocks looks them all up first, so the NVMe tier reads its hits
  // in one batch rather than one round trip per block.
  std::vector<BlockKey> keys;
  std::vector<std::shared_ptr<const Block>> cached;
  std::vector<int> cached_tier;
  if (last > first && !tiers_.empty()) {
    LookUp(ref, object_size, first, last, &keys, &cached, &cached_tier);
  }
  return ReadBlocks(ref, object_size, offset, end, std::move(keys), std::move(cached),
                    std::move(cached_tier), extent);
}

std::optional<Result<ReadResult>> BlockCache::ReadOrDefer(const ObjectRef& ref,
                                                          uint64_t object_size, uint64_t offset,
                                                          size_t length, ReadDone done,
                                                          Extent extent) {
  if (!pool_.running() || FetchPool::OnPoolThread() || offset >= object_size || length == 0) {
    return Read(ref, object_size, offset, length, extent);
  }
  ++reads_;
  const uint64_t end = std::min<uint64_t>(object_size, offset + length);
  const uint64_t first = offset / block_size_, last = (end - 1) / block_size_;
  std::vector<BlockKey> keys;
  std::vector<std::shared_ptr<const Block>> cached;
  std::vector<int> cached_tier;
  LookUp(ref, object_size, first, last, &keys, &cached, &cached_tier);
  const bool all = std::all_of(cached.begin(), cached.end(), [](const auto& b) { return b; });
  if (all) {
    return ReadBlocks(ref, object_size, offset, end, std::move(keys), std::move(cached),
                      std::move(cached_tier), extent);
  }
  // Each missing block joins its flight, or starts one on the pool; the read completes on
  // whichever thread lands the last of them. No thread waits meanwhile.
  struct Pending {
    Mutex mu;
    std::vector<BlockKey> keys;
    std::vector<std::shared_ptr<const Block>> cached GUARDED_BY(mu);
    std::vector<int> tier GUARDED_BY(mu);
    std::vector<char> led;  // this read started the block's fetch
    size_t left GUARDED_BY(mu) = 0;
    Status error GUARDED_BY(mu);
    bool refetched GUARDED_BY(mu) = false;
    ReadDone done;
  };
  auto p = std::make_shared<Pending>();
  p->keys = std::move(keys);
  p->led.assign(p->keys.size(), 0);
  p->done = std::move(done);
  std::vector<std::pair<size_t, std::shared_ptr<Flight>>> flights;
  for (size_t i = 0; i < p->keys.size(); ++i) {
    if (cached[i] != nullptr) {
      ++hits_;
      continue;
    }
    bool leader = false;
    flights.emplace_back(i, JoinOrLead(p->keys[i], &leader));
    p->led[i] = leader;
    if (!leader) {
      ++singleflight_waits_;
      ++hits_;
    }
  }
  {
    MutexLock lock(p->mu);  // before any flight can land into it
    p->cached = std::move(cached);
    p->tier = std::move(cached_tier);
    p->left = flights.size();
  }
  auto finish = [this, p, ref, object_size, offset, end, extent](size_t i, const BlockResult& r) {
    Status error;
    std::vector<std::shared_ptr<const Block>> blocks;
    std::vector<int> tier;
    bool refetched;
    {
      MutexLock lock(p->mu);
      if (r.ok()) {
        p->cached[i] = *r;
        // A block read-ahead fetched that has to be fetched again was evicted unread.
        if (p->led[i] && readahead_keys_.Insert(p->keys[i].hash)) p->refetched = true;
      } else if (p->error.ok()) {
        p->error = r.status();
      }
      if (--p->left > 0) return;
      // The last block: nothing writes these any more.
      error = p->error;
      blocks = std::move(p->cached);
      tier = std::move(p->tier);
      refetched = p->refetched;
    }
    if (!error.ok()) return p->done(error);
    p->done(Assemble(ref, object_size, offset, end, blocks, tier, refetched, extent));
  };
  for (auto& [i, flight] : flights) {
    if (p->led[i]) {
      auto run = [this, ref, object_size, key = p->keys[i], f = flight] {
        (void)LeadFetch(ref, object_size, key, f, nullptr, nullptr);
      };
      if (!pool_.Submit(FetchPool::Class::kDemand, run)) run();
    }
    flight->Then([finish, i = i](const BlockResult& r) { finish(i, r); });
  }
  return std::nullopt;
}

Result<ReadResult> BlockCache::ReadBlocks(const ObjectRef& ref, uint64_t object_size,
                                          uint64_t offset, uint64_t end, std::vector<BlockKey> keys,
                                          std::vector<std::shared_ptr<const Block>> cached,
                                          std::vector<int> cached_tier, Extent extent) {
  const uint64_t first = offset / block_size_, last = (end - 1) / block_size_;
  const size_t n = static_cast<size_t>(last - first + 1);
  const bool batched = !keys.empty();
  if (!batched) {
    cached.assign(n, nullptr);
    cached_tier.assign(n, -1);
  }
  bool refetched = false;
  for (size_t j = 0; j < n; ++j) {
    if (cached[j] != nullptr) {
      ++hits_;
      continue;
    }
    const BlockKey key = batched ? keys[j] : KeyOf(ref, first + j, object_size);
    bool fetched = false;
    BlockResult b = GetBlock(ref, object_size, key, batched, &cached_tier[j], &fetched);
    if (!b.ok()) return b.status();
    // A block read-ahead fetched that has to be fetched again was evicted unread.
    refetched |= fetched && readahead_keys_.Insert(key.hash);
    cached[j] = std::move(*b);
  }
  return Assemble(ref, object_size, offset, end, cached, cached_tier, refetched, extent);
}

ReadResult BlockCache::Assemble(const ObjectRef& ref, uint64_t object_size, uint64_t offset,
                                uint64_t end, std::span<const std::shared_ptr<const Block>> blocks,
                                std::span<const int> tier, bool refetched, Extent extent) {
  ReadResult out;
  const uint64_t first = offset / block_size_, last = (end - 1) / block_size_;
  for (uint64_t i = first; i <= last; ++i) {
    const std::shared_ptr<const Block>& block = blocks[i - first];
    const uint64_t block_start = i * block_size_;
    const uint64_t from = std::max(offset, block_start) - block_start;
    const uint64_t to = std::min<uint64_t>(end - block_start, block->size());
    if (to <= from) break;
    if (tier[i - first] >= 0) tier_sources_[tier[i - first]].Add(to - from);
    out.iov.push_back({const_cast<char*>(block->data() + from), to - from});
    out.size += to - from;
    out.blocks.push_back(block);
  }
  read_bytes_ += out.size;
  MaybePrefetch(ref, object_size, first, last, refetched, extent);
  return out;
}

namespace {
// One object being warmed: its blocks are claimed one at a time by up to 16 jobs.
struct WarmState {
  ObjectRef ref;
  uint64_t size = 0;
  uint64_t blocks = 0;  // one past the last block to warm
  std::atomic<uint64_t> next{0};
  std::atomic<unsigned> jobs_left{0};
  Mutex mu;
  Status error GUARDED_BY(mu);
  std::function<void(Status)> done;
};
}  // namespace

bool BlockCache::Held(const BlockKey& key) const {
  return std::any_of(tiers_.begin(), tiers_.end(), [&](Tier* t) { return t->Contains(key); });
}

bool BlockCache::Cached(const ObjectRef& ref, uint64_t object_size, uint64_t offset,
                        uint64_t length) const {
  const uint64_t end = offset + std::min(length, object_size - std::min(offset, object_size));
  if (end <= offset) return true;
  return Held(KeyOf(ref, offset / block_size_, object_size)) &&
         Held(KeyOf(ref, (end - 1) / block_size_, object_size));
}

void BlockCache::Warm(const ObjectRef& ref, uint64_t object_size, uint64_t offset, uint64_t length,
                      FetchPool::Class c, std::function<void(Status)> done) {
  auto state = std::make_shared<WarmState>();
  state->ref = ref;
  state->size = object_size;
  const uint64_t end = offset + std::min(length, object_size - std::min(offset, object_size));
  state->next = offset / block_size_;
  state->blocks = end > offset ? (end + block_size_ - 1) / block_size_ : 0;
  state->done = std::move(done);
  if (state->blocks <= state->next) return state->done(Status::Ok());
  const unsigned jobs = static_cast<unsigned>(std::min<uint64_t>(state->blocks - state->next, 16));
  state->jobs_left = jobs;
  auto job = [this, state] {
    for (uint64_t i = state->next++; i < state->blocks; i = state->next++) {
      BlockResult b = pool_.stopping()
                          ? BlockResult(Status::Io("unmounting"))
                          : GetBlock(state->ref, state->size, KeyOf(state->ref, i, state->size));
      if (!b.ok()) {
        MutexLock lock(state->mu);
        if (state->error.ok()) state->error = b.status();
        state->next = state->blocks;  // the others stop at their next block
      }
    }
    if (--state->jobs_left == 0) {
      Status error;
      {
        MutexLock lock(state->mu);
        error = state->error;
      }
      state->done(error);
    }
  };
  for (unsigned j = 0; j < jobs; ++j) {
    if (!pool_.Submit(c, job)) job();
  }
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

std::shared_ptr<BlockCache::Flight> BlockCache::JoinOrLead(const BlockKey& key, bool* leader) {
  FlightShard& shard = flight_shards_[key.hash.lo % kFlightShards];
  MutexLock lock(shard.mu);
  std::shared_ptr<Flight>& slot = shard.flights[key.hash];
  *leader = slot == nullptr;
  if (*leader) slot = std::make_shared<Flight>();
  return slot;
}

BlockCache::BlockResult BlockCache::GetBlock(const ObjectRef& ref, uint64_t object_size,
                                             const BlockKey& key, bool tiers_checked, int* tier,
                                             bool* fetched) {
  if (tier != nullptr) *tier = -1;
  if (fetched != nullptr) *fetched = false;
  if (!tiers_checked) {
    if (auto block = FromTiers(key, tier)) {
      ++hits_;
      return block;
    }
  }
  bool leader = false;
  std::shared_ptr<Flight> flight = JoinOrLead(key, &leader);
  if (!leader) {
    ++singleflight_waits_;
    ++hits_;  // served by another reader's fetch
    AboutToBlock();
    return flight->Wait();
  }
  // The leader's request runs on the fetch pool (the mount's budget of requests in
  // flight), or here when this is a pool thread already or the pool is closed.
  if (!FetchPool::OnPoolThread()) {
    auto did_fetch = std::make_shared<bool>(false);  // read after the flight lands
    const bool queued = pool_.Submit(FetchPool::Class::kDemand, [=, this] {
      (void)LeadFetch(ref, object_size, key, flight, nullptr, did_fetch.get());
    });
    if (queued) {
      AboutToBlock();
      BlockResult result = flight->Wait();
      if (fetched != nullptr) *fetched = *did_fetch;
      return result;
    }
  }
  return LeadFetch(ref, object_size, key, flight, tier, fetched);
}

BlockCache::BlockResult BlockCache::LeadFetch(const ObjectRef& ref, uint64_t object_size,
                                              const BlockKey& key,
                                              const std::shared_ptr<Flight>& flight, int* tier,
                                              bool* fetched) {
  // A previous leader may have finished between our tier check and our flight insert: it
  // fills the tiers before leaving, so look once more before fetching.
  BlockResult result = Status::Io("fetch did not run");
  try {
    if (auto block = FromTiers(key, tier)) {
      ++hits_;
      result = block;
    } else if (pool_.stopping()) {
      result = Status::Io("unmounting");
    } else {
      ++misses_;
      AboutToBlock();
      result = FetchHedged(ref, key, object_size, flight);
      if (fetched != nullptr) *fetched = result.ok();
    }
  } catch (const std::bad_alloc&) {
    result = Status(ENOMEM, "out of memory fetching a block");
  } catch (const std::exception& e) {
    result = Status::Io(std::string("fetch failed: ") + e.what());
  }
  if (Finish(key, flight, result)) return result;
  return flight->Wait();  // a hedged request answered first
}

bool BlockCache::Finish(const BlockKey& key, const std::shared_ptr<Flight>& flight,
                        const BlockResult& result) {
  FlightShard& shard = flight_shards_[key.hash.lo % kFlightShards];
  {
    MutexLock lock(shard.mu);
    auto it = shard.flights.find(key.hash);
    if (it != shard.flights.end() && it->second == flight) shard.flights.erase(it);
  }
  return flight->Land(result);
}

// The fetch, with a second request started on the pool if it straggles (Hedger); the
// second lands the flight only with an answer, and only if it is first.
BlockCache::BlockResult BlockCache::FetchHedged(const ObjectRef& ref, const BlockKey& key,
                                                uint64_t object_size,
                                                const std::shared_ptr<Flight>& flight) {
  if (!prefetch_.hedge) return Fetch(ref, key, object_size);
  const uint64_t id = hedger_.Begin([this, ref, key, object_size, flight] {
    (void)pool_.Submit(FetchPool::Class::kDemand, [this, ref, key, object_size, flight] {
      if (flight->Landed() || pool_.stopping()) return;
      BlockResult r = Fetch(ref, key, object_size);
      if (r.ok() && Finish(key, flight, r)) ++hedge_wins_;
    });
  });
  BlockResult r = Fetch(ref, key, object_size);
  hedger_.End(id, r.ok());
  return r;
}

BlockCache::BlockResult BlockCache::Fetch(const ObjectRef& ref, const BlockKey& key,
                                          uint64_t object_size) {
  const uint64_t start = key.index * block_size_;
  const size_t expected = static_cast<size_t>(std::min<uint64_t>(block_size_, object_size - start));
  auto block = Block::Allocate(expected);
  ++remote_reads_;
  ReadVia via = ReadVia::kOrigin;
  Result<size_t> n = make_ && IsMade(ref)
                         ? make_(ref, start, expected, block->mutable_data(), &via)
                         : store_.ReadRange(ref, start, expected, block->mutable_data(), &via);
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
  s.readahead_refetched = readahead_refetched_;
  s.hedged_fetches = hedger_.hedged();
  s.hedge_wins = hedge_wins_;
  s.fetch = pool_.GetStats();
  {
    MutexLock lock(job_mu_);
    s.prefetch_inflight_peak = inflight_peak_;
  }
  s.hits = hits_;
  s.misses = misses_;
  return s;
}

}  // namespace tierfs
