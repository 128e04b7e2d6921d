// DeviceLoop over a pipe standing for /dev/fuse: every request served once, a slow request
// hands the device on (others are served meanwhile) while short ones stay on one thread,
// and the loop ends with the device.
#include "fuse/device_loop.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "common/blocking.h"

namespace tierfs {
namespace {

// Each request is 8 bytes: its number.
class PipeDevice : public DeviceLoop::Device {
 public:
  PipeDevice() { EXPECT_EQ(::pipe2(fds_, O_CLOEXEC), 0); }
  ~PipeDevice() override {
    ::close(fds_[0]);
    if (fds_[1] >= 0) ::close(fds_[1]);
  }
  int fd() const override { return fds_[0]; }
  void* NewBuffer() override { return new uint64_t(0); }
  void FreeBuffer(void* buffer) override { delete static_cast<uint64_t*>(buffer); }
  int Receive(void* buffer) override {
    const ssize_t n = ::read(fds_[0], buffer, sizeof(uint64_t));
    if (n < 0) return -errno;
    return static_cast<int>(n);  // 0: the writer closed (the device ended)
  }
  bool Exited() const override { return false; }
  void Process(void* buffer) override { handler(*static_cast<uint64_t*>(buffer)); }
  void Ended() override { ++ended; }

  void Send(uint64_t n) { ASSERT_EQ(::write(fds_[1], &n, sizeof n), 8); }
  void End() {
    ::close(fds_[1]);
    fds_[1] = -1;
  }

  std::function<void(uint64_t)> handler;
  std::atomic<int> ended{0};

 private:
  int fds_[2] = {-1, -1};
};

TEST(DeviceLoop, ServesEveryRequestOnceAndEndsWithTheDevice) {
  PipeDevice device;
  std::mutex mu;
  std::map<uint64_t, int> served;
  std::set<std::thread::id> threads;
  device.handler = [&](uint64_t n) {
    std::lock_guard lock(mu);
    ++served[n];
    threads.insert(std::this_thread::get_id());
  };
  DeviceLoop loop(device, 8, std::chrono::microseconds(200));
  int rc = -1;
  std::thread runner([&] { rc = loop.Run(); });
  for (uint64_t n = 0; n < 5000; ++n) device.Send(n);
  device.End();
  runner.join();
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(device.ended, 1);
  ASSERT_EQ(served.size(), 5000u);
  for (const auto& [n, times] : served) ASSERT_EQ(times, 1) << n;
  // Short requests never hand the device on: one worker served them all.
  EXPECT_EQ(threads.size(), 1u);
}

TEST(DeviceLoop, ASlowRequestHandsTheDeviceOnSoOthersAreServedMeanwhile) {
  PipeDevice device;
  std::mutex mu;
  std::condition_variable cv;
  bool released = false;
  int served_during_slow = 0, slow_running = 0;
  device.handler = [&](uint64_t n) {
    if (n == 0) {  // slow: waits (announced) until the others were served
      AboutToBlock();
      std::unique_lock lock(mu);
      slow_running = 1;
      cv.wait_for(lock, std::chrono::seconds(10), [&] { return released; });
      slow_running = 0;
      return;
    }
    std::lock_guard lock(mu);
    if (slow_running) ++served_during_slow;
    if (served_during_slow == 10) {
      released = true;
      cv.notify_all();
    }
  };
  DeviceLoop loop(device, 4, std::chrono::microseconds(0));
  std::thread runner([&] { (void)loop.Run(); });
  device.Send(0);
  for (int i = 0; i < 50 &&
                  [&] {
                    std::lock_guard lock(mu);
                    return slow_running == 0;
                  }();
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (uint64_t n = 1; n <= 10; ++n) device.Send(n);
  device.End();
  runner.join();
  EXPECT_EQ(served_during_slow, 10);  // without the hand-off: 0 (and a 10 s wait)
}

TEST(DeviceLoop, ADeviceErrorEndsTheLoopWithIt) {
  class Failing : public PipeDevice {
   public:
    int Receive(void*) override { return -EIO; }
  } device;
  device.handler = [](uint64_t) {};
  DeviceLoop loop(device, 3, std::chrono::microseconds(0));
  EXPECT_EQ(loop.Run(), -EIO);
  EXPECT_EQ(device.ended, 1);
}

}  // namespace
}  // namespace tierfs
