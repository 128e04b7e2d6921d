// FakeStore: an in-memory Store for tests, with per-call counters and fault injection.
//
// Thread-safe. Objects are added with AddFile/AddDir/AddSymlink (parents are created as
// needed). Counters count every call, including failed ones.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>

#include "common/mutex.h"
#include "ufs/store.h"

namespace tierfs {

class FakeStore : public Store {
 public:
  FakeStore() { AddDir(""); }

  void AddFile(const std::string& key, std::string data, std::string version = "v1");
  void AddDir(const std::string& key);
  void AddSymlink(const std::string& key, std::string target);
  // Replaces a file's bytes and version (as if changed remotely).
  void ReplaceFile(const std::string& key, std::string data, std::string version);
  void Remove(const std::string& key);

  // The next `n` calls of any kind fail with `err`.
  void FailNext(int n, int err = EIO) {
    fail_errno_ = err;
    fail_next_ = n;
  }
  // Every call sleeps this long first.
  void SetLatency(std::chrono::microseconds latency) { latency_us_ = latency.count(); }
  // Every `n`th ReadRange call sleeps `stall` more (a straggler); n = 0: none.
  void StallEvery(uint64_t n, std::chrono::milliseconds stall) {
    stall_ms_ = stall.count();
    stall_every_ = n;
  }

  uint64_t stat_calls() const { return stat_calls_; }
  uint64_t list_calls() const { return list_calls_; }
  uint64_t read_calls() const { return read_calls_; }
  uint64_t read_bytes() const { return read_bytes_; }
  uint64_t total_calls() const { return stat_calls_ + list_calls_ + read_calls_; }
  // The most ReadRange calls that were running at the same time.
  uint64_t max_concurrent_reads() const { return max_concurrent_; }

  std::string Url() const override { return "fake://"; }
  Result<ObjectInfo> Stat(const std::string& key) override;
  Status List(const std::string& key, const ListSink& sink) override;
  Result<size_t> ReadRange(const ObjectRef& ref, uint64_t offset, size_t length, char* buf,
                           ReadVia* via) override;

 private:
  struct Object {
    ObjectInfo info;
    std::string data;
  };
  Status Enter();  // latency + injected faults
  void AddParents(const std::string& key) REQUIRES(mu_);

  Mutex mu_;
  std::map<std::string, Object> objects_ GUARDED_BY(mu_);
  std::atomic<int> fail_next_{0};
  std::atomic<int> fail_errno_{EIO};
  std::atomic<int64_t> latency_us_{0};
  std::atomic<uint64_t> stall_every_{0};
  std::atomic<int64_t> stall_ms_{0};
  std::atomic<uint64_t> stat_calls_{0}, list_calls_{0}, read_calls_{0}, read_bytes_{0};
  std::atomic<uint64_t> concurrent_{0}, max_concurrent_{0};
};

}  // namespace tierfs
