#include "common/memory.h"

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <utility>

#include "common/log.h"

namespace tierfs {

void LimitMallocArenas(int arenas) { ::mallopt(M_ARENA_MAX, arenas); }

uint64_t MallocInUse() {
  struct mallinfo2 m = ::mallinfo2();
  return m.uordblks + m.hblkhd;  // in use from the arenas + in use as separate mappings
}

ResidentMemory ReadResidentMemory() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return {};
  unsigned long long size = 0, resident = 0, shared = 0;
  int n = std::fscanf(f, "%llu %llu %llu", &size, &resident, &shared);
  std::fclose(f);
  if (n != 3 || shared > resident) return {};
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  return ResidentMemory{resident * page, (resident - shared) * page};
}

HeapTrimmer::HeapTrimmer(uint64_t slack, std::function<uint64_t()> idle)
    : slack_(slack), idle_(std::move(idle)) {}

HeapTrimmer::~HeapTrimmer() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

uint64_t HeapTrimmer::trims() const {
  MutexLock lock(mu_);
  return trims_;
}

bool HeapTrimmer::TrimOnce() {
  // Nothing to trim when malloc is not glibc's (in use reads 0).
  const uint64_t in_use = MallocInUse();
  const uint64_t idle = in_use > 0 && idle_ ? std::min(idle_(), in_use) : 0;
  if (in_use == 0 || ReadResidentMemory().anon <= in_use - idle + slack_) return false;
  ::malloc_trim(0);
  MutexLock lock(mu_);
  ++trims_;
  return true;
}

void HeapTrimmer::Start(std::chrono::milliseconds period) {
  thread_ = std::thread([this, period] {
    SetThreadName("tierfs-trim");
    MutexLock lock(mu_);
    while (!cv_.wait_for(lock.native(), period, [this]() REQUIRES(mu_) { return stop_; })) {
      lock.Unlock();
      TrimOnce();
      lock.Lock();
    }
  });
}

}  // namespace tierfs
