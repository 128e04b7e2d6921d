#include "fuse/device_loop.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>

#include <cerrno>
#include <thread>
#include <vector>

#include "common/blocking.h"
#include "common/log.h"

namespace tierfs {
namespace {
thread_local bool holding = false;  // this worker is the leader
}  // namespace

int DeviceLoop::Run() {
  const int fd = device_.fd();
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return -errno;
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < workers_; ++i) threads.emplace_back([this] { Worker(); });
  for (auto& t : threads) t.join();
  return error_;
}

// The blocking hook: give the device to a follower before a long request goes on.
void DeviceLoop::HandOff(void* arg) {
  if (!holding) return;
  auto* self = static_cast<DeviceLoop*>(arg);
  holding = false;
  {
    MutexLock lock(self->mu_);
    self->leader_ = false;
  }
  self->follower_cv_.notify_one();
}

void DeviceLoop::Worker() {
  SetThreadName("tierfs-fuse");
  SetBlockingHook(&DeviceLoop::HandOff, this);
  void* buffer = device_.NewBuffer();
  holding = false;
  while (true) {
    if (!holding) {
      MutexLock lock(mu_);
      follower_cv_.wait(lock.native(), [&]() REQUIRES(mu_) { return !leader_ || done_; });
      if (done_) break;
      leader_ = true;
      holding = true;
    }
    const int res = Receive(buffer);
    if (res <= 0) {
      bool first;
      {
        MutexLock lock(mu_);
        first = !done_;
        leader_ = false;
        done_ = true;
      }
      if (first) device_.Ended();
      holding = false;
      follower_cv_.notify_all();
      if (res < 0) error_ = res;
      break;
    }
    device_.Process(buffer);
  }
  SetBlockingHook(nullptr, nullptr);
  device_.FreeBuffer(buffer);
}

// The next request (> 0), or 0 once the session ends, or -errno.
int DeviceLoop::Receive(void* buffer) {
  const auto spin_until = std::chrono::steady_clock::now() + spin_;
  while (true) {
    const int res = device_.Receive(buffer);
    if (device_.Exited()) return 0;
    if (res > 0) return res;
    if (res == 0) return 0;  // ENODEV: unmounted
    if (res != -EAGAIN && res != -EINTR) return res;
    if (std::chrono::steady_clock::now() < spin_until) {
      ::sched_yield();
      continue;
    }
    pollfd p{device_.fd(), POLLIN, 0};
    ::poll(&p, 1, 500);  // wakes to check for exit; a signal also interrupts it
    // Hung up: the end, once what was sent before is read.
    if ((p.revents & (POLLERR | POLLHUP)) && !(p.revents & POLLIN)) return 0;
  }
}

}  // namespace tierfs
