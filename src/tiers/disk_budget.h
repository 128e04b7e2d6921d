// DiskBudget: one bound on the bytes several tiers keep in the same cache directory.
//
// The NVMe tier's segments and the object files of ObjectFileTier share --cache-size:
// each reserves bytes before it writes them and gives them back when it deletes them.
// Space goes to whichever tier asks first; a tier that cannot reserve evicts within what
// it already holds. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>

namespace tierfs {

class DiskBudget {
 public:
  explicit DiskBudget(uint64_t capacity) : capacity_(capacity) {}

  // Takes `bytes` if they fit under the capacity.
  bool TryReserve(uint64_t bytes) {
    uint64_t used = used_.load(std::memory_order_relaxed);
    do {
      if (used + bytes > capacity_) return false;
    } while (!used_.compare_exchange_weak(used, used + bytes, std::memory_order_relaxed));
    return true;
  }
  void Release(uint64_t bytes) { used_.fetch_sub(bytes, std::memory_order_relaxed); }

  uint64_t capacity() const { return capacity_; }
  uint64_t used() const { return used_.load(std::memory_order_relaxed); }

 private:
  const uint64_t capacity_;
  std::atomic<uint64_t> used_{0};
};

}  // namespace tierfs
