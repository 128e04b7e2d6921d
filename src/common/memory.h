// Keeps the daemon's heap close to what it holds.
//
// Cached blocks are malloc'd in one thread and freed in another (eviction, a reader
// dropping the last reference), in sizes from 4 KiB to the block size. glibc gives every
// thread that allocates under contention its own arena (up to 8 per core) and returns
// free memory in the middle of an arena only on malloc_trim: under a steady churn of
// blocks the heap grows well past the bytes the tiers account for.
//
//  - LimitMallocArenas() caps the arenas (call before any thread starts).
//  - HeapTrimmer (once started) checks once a second and returns free heap pages to the system
//    (malloc_trim) when the process's anonymous memory exceeds what malloc has handed out
//    by more than `slack` bytes. Memory handed out but kept idle for reuse (the block
//    pool) counts as free here, so free heap and idle buffers together stay near `slack`.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

#include "common/mutex.h"

namespace tierfs {

void LimitMallocArenas(int arenas);

// Bytes malloc has handed out and not had back; 0 when malloc is not glibc's (sanitizers).
uint64_t MallocInUse();

// This process's resident memory in bytes (/proc/self/statm): all of it, and the
// anonymous part (less file-backed and shared pages). Zeros if it cannot be read.
struct ResidentMemory {
  uint64_t total = 0;
  uint64_t anon = 0;
};
ResidentMemory ReadResidentMemory();

class HeapTrimmer {
 public:
  // `idle`: bytes malloc handed out that are only held for reuse (0 if not given).
  explicit HeapTrimmer(uint64_t slack, std::function<uint64_t()> idle = nullptr);
  ~HeapTrimmer();  // stops the thread, if started
  HeapTrimmer(const HeapTrimmer&) = delete;
  HeapTrimmer& operator=(const HeapTrimmer&) = delete;

  // One check: trims the heap if it holds more than `slack` free bytes. True if it did.
  // Tests call this directly; the daemon calls Start().
  bool TrimOnce();

  // Calls TrimOnce() every `period` on a thread of its own until destroyed.
  void Start(std::chrono::milliseconds period = std::chrono::seconds(1));

  uint64_t trims() const;

 private:
  const uint64_t slack_;
  const std::function<uint64_t()> idle_;
  mutable Mutex mu_;
  std::condition_variable cv_;
  bool stop_ GUARDED_BY(mu_) = false;
  uint64_t trims_ GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace tierfs
