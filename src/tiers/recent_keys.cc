#include "tiers/recent_keys.h"

#include <algorithm>
#include <bit>

namespace tierfs {

namespace {
constexpr uint64_t kMinKeys = 2 << 10;
constexpr uint64_t kMaxKeys = 2 << 20;

uint32_t Fingerprint(const Hash128& key) { return static_cast<uint32_t>(key.hi) | 1; }  // 0 = empty
}  // namespace

RecentKeys::RecentKeys(uint64_t keys)
    : current_(std::bit_ceil(2 * std::clamp(keys, kMinKeys, kMaxKeys)), 0),
      previous_(current_.size(), 0),
      mask_(current_.size() - 1) {}

bool RecentKeys::Contains(const std::vector<uint32_t>& table, uint64_t mask, const Hash128& key) {
  const uint32_t fp = Fingerprint(key);
  for (uint64_t i = key.lo & mask;; i = (i + 1) & mask) {
    if (table[i] == fp) return true;
    if (table[i] == 0) return false;  // a table is never more than half full
  }
}

bool RecentKeys::Insert(const Hash128& key) {
  MutexLock lock(mu_);
  if (Contains(current_, mask_, key)) return true;
  const bool seen = Contains(previous_, mask_, key);
  if (count_ >= current_.size() / 2) {
    previous_.swap(current_);
    std::fill(current_.begin(), current_.end(), 0);
    count_ = 0;
  }
  uint64_t i = key.lo & mask_;
  while (current_[i] != 0) i = (i + 1) & mask_;
  current_[i] = Fingerprint(key);
  ++count_;
  return seen;
}

}  // namespace tierfs
