#include "ufs/metered_store.h"

#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>

namespace tierfs {
namespace {
constexpr const char* kRequests = "tierfs_remote_requests_total";
constexpr const char* kRequestsHelp = "calls to the source store by operation and outcome";
constexpr const char* kDuration = "tierfs_remote_request_duration_seconds";
constexpr const char* kDurationHelp = "time of calls to the source store, retries included";

const std::vector<double>& DurationBounds() {
  static const std::vector<double> bounds{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                          0.25,   0.5,   1,      2.5,   5,    10,    30};
  return bounds;
}

std::string ErrnoName(int err) {
  const char* name = ::strerrordesc_np(err) ? ::strerrorname_np(err) : nullptr;
  return name ? name : "errno" + std::to_string(err);
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}
}  // namespace

MeteredStore::MeteredStore(std::unique_ptr<Store> inner, MetricsRegistry& registry)
    : inner_(std::move(inner)),
      registry_(registry),
      bytes_(registry.GetCounter("tierfs_remote_bytes_total", "bytes read from the source store")) {
  auto op = [&](const char* name) {
    return Op{&registry.GetHistogram(kDuration, kDurationHelp, DurationBounds(), {{"op", name}}),
              &registry.GetCounter(kRequests, kRequestsHelp, {{"op", name}, {"code", "ok"}})};
  };
  stat_ = op("stat");
  list_ = op("list");
  read_ = op("read");
}

void MeteredStore::Record(const char* op, const Op& counters, const Status& status,
                          double seconds) {
  counters.duration->Observe(seconds);
  if (status.ok()) {
    counters.ok->Add();
  } else {
    registry_
        .GetCounter(kRequests, kRequestsHelp, {{"op", op}, {"code", ErrnoName(status.error())}})
        .Add();
  }
}

Result<ObjectInfo> MeteredStore::Stat(const std::string& key) {
  auto start = std::chrono::steady_clock::now();
  auto r = inner_->Stat(key);
  Record("stat", stat_, r.status(), SecondsSince(start));
  return r;
}

Status MeteredStore::List(const std::string& key, const ListSink& sink) {
  auto start = std::chrono::steady_clock::now();
  Status s = inner_->List(key, sink);
  Record("list", list_, s, SecondsSince(start));
  return s;
}

Status MeteredStore::ListFlat(const ListSink& sink) {
  auto start = std::chrono::steady_clock::now();
  Status s = inner_->ListFlat(sink);
  if (s.error() != ENOTSUP) Record("list", list_, s, SecondsSince(start));
  return s;
}

Result<size_t> MeteredStore::ReadRange(const ObjectRef& ref, uint64_t offset, size_t length,
                                       char* buf, ReadVia* via) {
  auto start = std::chrono::steady_clock::now();
  auto r = inner_->ReadRange(ref, offset, length, buf, via);
  Record("read", read_, r.status(), SecondsSince(start));
  if (r.ok()) bytes_.Add(*r);
  return r;
}

nlohmann::json MeteredStore::RoutesJson() const { return inner_->RoutesJson(); }

}  // namespace tierfs
