// Wall-clock time as stored in indexes, pointers and metrics, and a seam for it: code that
// waits for a time (credential renewal, back-off) takes a Clock, so tests can move time
// instead of sleeping through it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>

namespace tierfs {

// Seconds since the Unix epoch.
inline int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class Clock {
 public:
  virtual ~Clock() = default;
  // Seconds since the Unix epoch.
  virtual int64_t Now() const = 0;
  // With `lock` held on the mutex `cv` is used with: waits until `done()` or until Now()
  // reaches `deadline`; returns done(). Wakes on cv's notifications like cv.wait_until.
  virtual bool WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                         int64_t deadline, const std::function<bool()>& done) = 0;
  // The system clock.
  static Clock& Real();
};

// A clock that moves only when told (tests). Waiters notice a move within 5 ms.
class FakeClock : public Clock {
 public:
  explicit FakeClock(int64_t now = 1'800'000'000) : now_(now) {}
  int64_t Now() const override { return now_.load(); }
  bool WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, int64_t deadline,
                 const std::function<bool()>& done) override {
    waiting_until_ = deadline;
    while (!done()) {
      if (now_.load() >= deadline) return false;
      cv.wait_for(lock, std::chrono::milliseconds(5));
    }
    return true;
  }
  void Advance(int64_t seconds) { now_ += seconds; }
  // The deadline the latest waiter waits for (0: none yet): lets a test move time only
  // once the code under test has chosen its next deadline.
  int64_t waiting_until() const { return waiting_until_.load(); }

 private:
  std::atomic<int64_t> now_;
  std::atomic<int64_t> waiting_until_{0};
};

}  // namespace tierfs
