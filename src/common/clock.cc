#include "common/clock.h"

namespace tierfs {
namespace {

class RealClock : public Clock {
 public:
  int64_t Now() const override { return UnixNow(); }
  bool WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, int64_t deadline,
                 const std::function<bool()>& done) override {
    const auto until = std::chrono::system_clock::time_point(std::chrono::seconds(deadline));
    return cv.wait_until(lock, until, done);
  }
};

}  // namespace

Clock& Clock::Real() {
  static RealClock clock;
  return clock;
}

}  // namespace tierfs
