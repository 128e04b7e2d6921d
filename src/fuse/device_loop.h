// DeviceLoop: the request loop of a mount. A pool of workers in leader/followers: one
// worker at a time (the leader) holds the device; it takes a request, serves it, and
// takes the next. When a request is going to take long (a remote fetch, a disk read, a
// large copy: see AboutToBlock in common/blocking.h) the leader hands the device to a
// follower first, so slow requests are served concurrently while short ones (lookups,
// attributes, RAM hits) never pay for a thread wake-up.
//
// The leader spins briefly (non-blocking reads, yielding the CPU to anything runnable)
// before it sleeps in poll(). On a VM whose idle vCPUs halt, every sleep and wake-up is a
// halt exit and re-entry, which costs more than serving a short request; a leader still
// spinning takes the next request at once. The spin ends `spin` after the last request,
// so an idle daemon sleeps (tools/bench/README.md, "Tuning behind the defaults").
//
// The device is an interface (DeviceLoop::Device): /dev/fuse through libfuse in the
// daemon (lowlevel.cc), a pipe in the unit tests.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "common/mutex.h"

namespace tierfs {

class DeviceLoop {
 public:
  // Where requests come from. Called by the workers, one Receive at a time (the leader's),
  // Process from any number of them at once.
  class Device {
   public:
    virtual ~Device() = default;
    // Polled for input when nothing was ready; in non-blocking mode once Run starts.
    virtual int fd() const = 0;
    // A worker's buffer for requests, and its release when the worker ends.
    virtual void* NewBuffer() = 0;
    virtual void FreeBuffer(void* buffer) = 0;
    // Takes the next request into `buffer`: > 0 a request, 0 the end (unmounted),
    // -EAGAIN or -EINTR nothing yet, another -errno an error that ends the loop.
    virtual int Receive(void* buffer) = 0;
    // True once the session was told to end (checked after each Receive).
    virtual bool Exited() const = 0;
    // Serves the request Receive put in `buffer`.
    virtual void Process(void* buffer) = 0;
    // The loop is ending (the device ended or failed): called once, before the workers
    // finish the requests they hold. The daemon shuts down (RequestShutdown).
    virtual void Ended() = 0;
  };

  DeviceLoop(Device& device, unsigned workers, std::chrono::microseconds spin)
      : device_(device), workers_(workers), spin_(spin) {}

  // Serves requests until the device ends (0) or fails (-errno, returned).
  int Run();

 private:
  static void HandOff(void* arg);
  void Worker();
  int Receive(void* buffer);

  Device& device_;
  const unsigned workers_;
  const std::chrono::microseconds spin_;
  Mutex mu_;
  std::condition_variable follower_cv_;
  bool leader_ GUARDED_BY(mu_) = false;  // a worker holds the device
  bool done_ GUARDED_BY(mu_) = false;
  std::atomic<int> error_{0};
};

}  // namespace tierfs
