#include "tiers/admission.h"

#include <algorithm>

namespace tierfs {

EpochAdmission::EpochAdmission(uint64_t blocks, bool epoch_aware, double min_hit_ratio)
    : epoch_aware_(epoch_aware),
      min_hit_ratio_(min_hit_ratio),
      window_(std::clamp<uint64_t>(blocks / 4, 64, 4096)),
      // The sample is small next to the cache (1/16 of its blocks, 16..256 lookups): when a
      // new epoch starts hitting, the churn before admission closes stays a small part of
      // the cache (with a fixed 256, a 200-block cache turned over ~60% of itself at each
      // epoch start).
      sample_(std::clamp<uint64_t>(blocks / 16, 16, 256)),
      fetched_(8 * blocks) {}

void EpochAdmission::CountLookup(bool hit) {
  if (hit) ++window_hits_;
  if (++window_lookups_ >= window_) {
    const uint64_t lookups = window_lookups_.exchange(0);
    const uint64_t hits = window_hits_.exchange(0);
    if (lookups > 0) last_ratio_permille_ = hits * 1000 / lookups;
  }
}

bool EpochAdmission::NoteFetch(const Hash128& key) {
  const bool refetched = fetched_.Insert(key);
  if (refetched) CountLookup(false);
  return refetched;
}

bool EpochAdmission::EarningHits() const {
  // The current window once it has a fair sample, else the last complete one.
  const uint64_t lookups = window_lookups_, hits = window_hits_;
  const uint64_t permille =
      lookups >= sample_ ? hits * 1000 / lookups : last_ratio_permille_.load();
  return permille >= static_cast<uint64_t>(min_hit_ratio_ * 1000);
}

bool EpochAdmission::MayEvict(bool refetched) {
  if (!epoch_aware_ || (refetched && !EarningHits())) return true;
  ++refused_;  // keep the resident set; this block is served from the store
  return false;
}

}  // namespace tierfs
