// MeteredStore: a Store decorator that counts every call to the store it wraps, for
// /metrics: requests by operation and outcome, bytes read, and call latency. It changes
// no result. Thread-safe as the wrapped store is.
//
// Metric families (in the registry given, by default the process's):
//   tierfs_remote_requests_total{op="stat|list|read",code="ok|ENOENT|EIO|..."}
//   tierfs_remote_bytes_total
//   tierfs_remote_request_duration_seconds{op}   (histogram)
#pragma once

#include <memory>

#include "common/metrics.h"
#include "ufs/store.h"

namespace tierfs {

class MeteredStore : public Store {
 public:
  explicit MeteredStore(std::unique_ptr<Store> inner,
                        MetricsRegistry& registry = MetricsRegistry::Global());

  std::string Url() const override { return inner_->Url(); }
  nlohmann::json RoutesJson() const override;
  std::vector<std::string> SourcePrefixes() const override { return inner_->SourcePrefixes(); }
  // The store it wraps.
  Store& inner() const { return *inner_; }
  Result<ObjectInfo> Stat(const std::string& key) override;
  Status List(const std::string& key, const ListSink& sink) override;
  Status ListFlat(const ListSink& sink) override;
  Result<size_t> ReadRange(const ObjectRef& ref, uint64_t offset, size_t length, char* buf,
                           ReadVia* via) override;

 private:
  struct Op {
    Histogram* duration;
    Counter* ok;
  };
  void Record(const char* op, const Op& counters, const Status& status, double seconds);

  std::unique_ptr<Store> inner_;
  MetricsRegistry& registry_;
  Op stat_, list_, read_;
  Counter& bytes_;
};

}  // namespace tierfs
