// FetchPool: the threads that talk to the store. How many requests a mount has in flight
// at the origin is its budget (the pool's slots), not the number of readers that happen
// to block: a far origin (10-50 ms a request) is paced by requests in flight.
//
//  - Three classes of work share the slots: demand (a reader is waiting), warm (a user
//    asked for it) and background (read-ahead, data set prefetch). A free slot takes the
//    oldest demand job first, then warm, then background.
//  - Warm and background jobs together never hold more than `slots - reserve` slots, so a
//    demand read always finds a slot without waiting behind a prefetch's round trip.
//  - Jobs may block (they do network I/O); a job that needs another block runs its fetch
//    in place (OnPoolThread) rather than queueing behind itself.
//  - Stop() runs every job still queued with stopping() true, so each can give its
//    waiter an answer ("unmounting") instead of leaving it hanging, then joins.
//
// Thread-safe. Without Start() (tests, tools) Submit returns false and callers run the work
// themselves.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "common/mutex.h"

namespace tierfs {

class FetchPool {
 public:
  enum class Class { kDemand = 0, kWarm = 1, kBackground = 2 };

  struct Stats {
    unsigned slots = 0;
    uint64_t jobs[3] = {0, 0, 0};  // run, by Class
    uint64_t running = 0;          // jobs running now
    uint64_t running_peak = 0;
    uint64_t queued = 0;  // jobs waiting for a slot now
  };

  explicit FetchPool(unsigned slots);
  ~FetchPool();
  FetchPool(const FetchPool&) = delete;
  FetchPool& operator=(const FetchPool&) = delete;

  void Start();
  void Stop();

  // Queues `job`; false (job not taken) when the pool is not running.
  bool Submit(Class c, std::function<void()> job);

  bool running() const { return running_.load(std::memory_order_acquire); }
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }
  unsigned slots() const { return slots_; }
  // Jobs of classes warm and background queued or running (their producers keep this
  // bounded rather than queue a whole data set at once).
  uint64_t non_demand_pending() const;
  Stats GetStats() const;

  // True on one of a pool's threads.
  static bool OnPoolThread();

 private:
  void Loop();
  // The next job a free slot may take, or false.
  bool TakeLocked(std::function<void()>* job, Class* c) REQUIRES(mu_);

  const unsigned slots_;
  const unsigned non_demand_slots_;  // slots warm and background may hold
  mutable Mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queues_[3] GUARDED_BY(mu_);
  unsigned busy_ GUARDED_BY(mu_) = 0;
  unsigned non_demand_busy_ GUARDED_BY(mu_) = 0;
  uint64_t jobs_[3] GUARDED_BY(mu_) = {0, 0, 0};
  uint64_t running_peak_ GUARDED_BY(mu_) = 0;
  std::atomic<bool> running_{false};
  std::atomic<bool> stopping_{false};
  std::vector<std::thread> threads_;
};

}  // namespace tierfs
