// Hedger: a second request for a straggling fetch (as gcsfuse does by default). It keeps
// the durations of recent successful fetches and the fetches in flight; a fetch that has
// run longer than `multiple` x the recent p99 (and at least `floor`) gets its `second`
// request started once, by the watcher thread. Whoever answers first wins (the caller
// lands the block's flight with it); the other answer is dropped.
//
// Thread-safe. Without Start() nothing is hedged.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "common/mutex.h"

namespace tierfs {

class Hedger {
 public:
  struct Options {
    double multiple = 3.0;
    std::chrono::milliseconds floor{20};
    unsigned min_samples = 20;  // fetches timed before anything is hedged
  };
  explicit Hedger(Options options);
  ~Hedger();
  Hedger(const Hedger&) = delete;
  Hedger& operator=(const Hedger&) = delete;

  void Start();
  void Stop();

  // A fetch starts; `second` starts its second request if it straggles. Returns its id.
  uint64_t Begin(std::function<void()> second);
  // The fetch `id` ended; a success's duration joins the samples unless it was hedged.
  void End(uint64_t id, bool ok);

  // How long a fetch may run before it is hedged (0: not enough samples yet).
  std::chrono::nanoseconds threshold() const;
  uint64_t hedged() const;

 private:
  using Clock = std::chrono::steady_clock;
  struct Fetch {
    Clock::time_point started;
    std::function<void()> second;  // empty once started
  };
  void Watch();
  void UpdateThresholdLocked() REQUIRES(mu_);

  const Options options_;
  mutable Mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, Fetch> in_flight_ GUARDED_BY(mu_);
  uint64_t next_id_ GUARDED_BY(mu_) = 1;
  std::vector<int64_t> samples_ GUARDED_BY(mu_);  // nanoseconds, a ring of the last kSamples
  size_t next_sample_ GUARDED_BY(mu_) = 0;
  uint64_t since_update_ GUARDED_BY(mu_) = 0;
  std::chrono::nanoseconds threshold_ GUARDED_BY(mu_){0};
  uint64_t hedged_ GUARDED_BY(mu_) = 0;
  bool stopping_ GUARDED_BY(mu_) = false;
  std::thread watcher_;
};

}  // namespace tierfs
