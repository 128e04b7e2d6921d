#include "tiers/fetch_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace tierfs {
namespace {

// A gate jobs wait at until the test opens it.
class Gate {
 public:
  void Wait() {
    std::unique_lock lock(mu_);
    ++waiting_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
  }
  void WaitForWaiters(int n) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return waiting_ >= n; });
  }
  void Open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int waiting_ = 0;
  bool open_ = false;
};

TEST(FetchPool, DemandGoesBeforeQueuedWarmAndBackground) {
  FetchPool pool(1);  // one slot: jobs run one after the other, in the order taken
  pool.Start();
  Gate gate;
  pool.Submit(FetchPool::Class::kDemand, [&] { gate.Wait(); });
  gate.WaitForWaiters(1);  // the slot is busy: what follows queues
  std::mutex mu;
  std::vector<std::string> order;
  auto note = [&](std::string what) {
    return [&, what] {
      std::lock_guard lock(mu);
      order.push_back(what);
    };
  };
  pool.Submit(FetchPool::Class::kBackground, note("background"));
  pool.Submit(FetchPool::Class::kWarm, note("warm"));
  pool.Submit(FetchPool::Class::kDemand, note("demand"));
  gate.Open();
  pool.Stop();
  ASSERT_EQ(order.size(), 3u);
  EXPECT_EQ(order[0], "demand");
  EXPECT_EQ(order[1], "warm");
  EXPECT_EQ(order[2], "background");
}

// However much background work is queued, a demand job finds a slot at once: background
// and warm never hold the last eighth of the slots.
TEST(FetchPool, BackgroundNeverTakesTheDemandReserve) {
  FetchPool pool(8);  // 7 for warm and background, 1 for demand alone
  pool.Start();
  Gate gate;
  std::atomic<int> running{0}, peak{0};
  for (int i = 0; i < 20; ++i) {
    pool.Submit(i % 2 ? FetchPool::Class::kBackground : FetchPool::Class::kWarm, [&] {
      const int now = ++running;
      for (int seen = peak; now > seen && !peak.compare_exchange_weak(seen, now);) {
      }
      gate.Wait();
      --running;
    });
  }
  gate.WaitForWaiters(7);
  std::mutex mu;
  std::condition_variable cv;
  bool demand_ran = false;
  pool.Submit(FetchPool::Class::kDemand, [&] {
    std::lock_guard lock(mu);
    demand_ran = true;
    cv.notify_all();
  });
  {
    std::unique_lock lock(mu);
    // The background jobs are all parked at the gate: only the reserved slot can run it.
    EXPECT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return demand_ran; }));
  }
  gate.Open();
  // All of them run out under the limit (Stop would lift it to drain the queue).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (pool.non_demand_pending() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  pool.Stop();
  EXPECT_EQ(peak.load(), 7);
  FetchPool::Stats s = pool.GetStats();
  EXPECT_EQ(s.jobs[0], 1u);
  EXPECT_EQ(s.jobs[1] + s.jobs[2], 20u);
  EXPECT_EQ(s.running_peak, 8u);
}

// Stop answers every job still queued (each sees stopping() and can tell its waiter),
// rather than dropping them with someone waiting.
TEST(FetchPool, StopRunsQueuedJobsWithStoppingSet) {
  FetchPool pool(1);
  pool.Start();
  Gate gate;
  pool.Submit(FetchPool::Class::kDemand, [&] { gate.Wait(); });
  gate.WaitForWaiters(1);
  std::atomic<int> told{0};
  for (int i = 0; i < 3; ++i) {
    pool.Submit(FetchPool::Class::kBackground, [&] {
      if (pool.stopping()) ++told;
    });
  }
  std::thread stopper([&] { pool.Stop(); });
  while (!pool.stopping()) std::this_thread::yield();
  gate.Open();
  stopper.join();
  EXPECT_EQ(told.load(), 3);
  EXPECT_FALSE(pool.Submit(FetchPool::Class::kDemand, [] {}));
}

TEST(FetchPool, WithoutStartNothingIsTaken) {
  FetchPool pool(4);
  EXPECT_FALSE(pool.Submit(FetchPool::Class::kDemand, [] {}));
  EXPECT_FALSE(FetchPool::OnPoolThread());
}

}  // namespace
}  // namespace tierfs
