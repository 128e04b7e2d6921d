// EpochAdmission: which blocks may evict others once a disk tier is full.
//
// Until the cache is full every block is admitted (the tier does not ask). Once full, a
// block evicts others only if (1) it has been fetched before (RecentKeys remembers recent
// fetches: a one-time scan, or the first epoch, evicts nothing) and (2) the cache is not
// earning hits (hit ratio of re-referenced lookups below `min_hit_ratio`). A training job
// re-reading a data set larger than the cache in shuffled order then keeps a stable subset
// resident instead of churning it with every miss; when the workload moves to other data
// that is read again, hits on the old subset stop and the cache turns over to the new data.
//
// No disk, no clock: the tier reports lookups and fetches, and asks. Thread-safe (the hit
// window is racy by design: a heuristic).
#pragma once

#include <atomic>
#include <cstdint>

#include "common/checksum.h"
#include "tiers/recent_keys.h"

namespace tierfs {

class EpochAdmission {
 public:
  // `blocks`: how many blocks the full cache holds (sizes the window and the memory of
  // recent fetches: 8x the cache).
  EpochAdmission(uint64_t blocks, bool epoch_aware, double min_hit_ratio);

  // A lookup of a block that was fetched before found it (hit) or not: the hit window.
  void CountLookup(bool hit);
  // `key` is being fetched (put into the tier); true if it was fetched recently, in which
  // case the miss that led here counts as a re-referenced miss.
  bool NoteFetch(const Hash128& key);
  // The cache is full: may a block (`refetched`: NoteFetch said so) evict others? A
  // refusal is counted.
  bool MayEvict(bool refetched);

  bool EarningHits() const;
  uint64_t refused() const { return refused_; }

 private:
  const bool epoch_aware_;
  const double min_hit_ratio_;
  // Hit ratio over windows of `window_` re-referenced lookups; the current window counts
  // once it has `sample_` of them.
  const uint64_t window_, sample_;
  RecentKeys fetched_;
  std::atomic<uint64_t> window_lookups_{0}, window_hits_{0}, refused_{0};
  // Until re-referenced lookups show otherwise, the cache counts as earning: the first pass
  // over a data set (no re-references) must not open admission at the next epoch.
  std::atomic<uint64_t> last_ratio_permille_{1000};
};

}  // namespace tierfs
