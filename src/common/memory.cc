#include "common/memory.h"

#include <malloc.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>

namespace tierfs {

void LimitMallocArenas(int arenas) { ::mallopt(M_ARENA_MAX, arenas); }

HeapStats ReadHeapStats() {
  struct mallinfo2 m = ::mallinfo2();
  // uordblks: in use from arenas; hblkhd: in use as separate mappings; fordblks: free.
  return HeapStats{m.uordblks + m.hblkhd, m.fordblks};
}

uint64_t ReadAnonRss() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long long size = 0, resident = 0, shared = 0;
  int n = std::fscanf(f, "%llu %llu %llu", &size, &resident, &shared);
  std::fclose(f);
  if (n != 3 || shared > resident) return 0;
  return (resident - shared) * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

HeapTrimmer::HeapTrimmer(uint64_t slack) : slack_(slack), thread_([this] { Run(); }) {}

HeapTrimmer::~HeapTrimmer() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

uint64_t HeapTrimmer::trims() const {
  std::lock_guard lock(mu_);
  return trims_;
}

void HeapTrimmer::Run() {
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_; })) {
    lock.unlock();
    bool trimmed = false;
    // in_use is 0 when malloc is not glibc's (sanitizers): nothing to trim then.
    HeapStats heap = ReadHeapStats();
    if (heap.in_use > 0 && ReadAnonRss() > heap.in_use + slack_) {
      ::malloc_trim(0);
      trimmed = true;
    }
    lock.lock();
    trims_ += trimmed;
  }
}

}  // namespace tierfs
