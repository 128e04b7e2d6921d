// Metrics: counters and histograms in the Prometheus text exposition format (version
// 0.0.4), with no dependency beyond the standard library.
//
//  - A Counter or Histogram is created once per label set through a MetricsRegistry and
//    then updated lock-free (relaxed atomics) from any thread; references stay valid for
//    the registry's life.
//  - Values that already live elsewhere (cache tiers, FUSE counters) are not copied into
//    counters: a collector callback writes them at scrape time through MetricsWriter.
//  - Render() produces the whole page; it may run concurrently with updates.
//
// MetricsRegistry::Global() is the process's registry (what /metrics serves); tests make
// their own.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/mutex.h"

namespace tierfs {

// Label pairs in the order they are written, e.g. {{"op", "read"}, {"code", "ok"}}.
using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void Add(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A histogram with fixed upper bounds (seconds, bytes, ...); observations above the last
// bound land in +Inf.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double value);

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative;  // one per bound, then +Inf (= count)
    double sum = 0;
  };
  Snapshot Read() const;

 private:
  const std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_.size() + 1, not cumulative
  std::atomic<uint64_t> sum_micros_{0};               // sum in millionths, to stay atomic
};

// Writes metric families in the text format. Each family's HELP/TYPE lines are written
// once, before its first sample.
class MetricsWriter {
 public:
  void Counter(const std::string& name, const std::string& help, const Labels& labels,
               double value);
  void Gauge(const std::string& name, const std::string& help, const Labels& labels, double value);
  void Histogram(const std::string& name, const std::string& help, const Labels& labels,
                 const Histogram::Snapshot& snapshot);
  const std::string& text() const { return out_; }

 private:
  void Header(const std::string& name, const std::string& help, const char* type);
  void Sample(const std::string& name, const Labels& labels, double value);
  std::string out_;
  std::string last_family_;
};

class MetricsRegistry {
 public:
  static MetricsRegistry& Global();

  // Returns the counter (histogram) for `name` and `labels`, creating it on first use.
  // Callers on hot paths keep the reference instead of calling this per event.
  tierfs::Counter& GetCounter(const std::string& name, const std::string& help,
                              const Labels& labels = {});
  tierfs::Histogram& GetHistogram(const std::string& name, const std::string& help,
                                  const std::vector<double>& bounds, const Labels& labels = {});

  // Adds a callback that writes values owned by others at scrape time. Returns an id for
  // RemoveCollector (the owner must remove it before it dies). Collectors run under the
  // registry's lock: they must not call back into the registry.
  using Collector = std::function<void(MetricsWriter&)>;
  int AddCollector(Collector collector);
  void RemoveCollector(int id);

  // The whole exposition page.
  std::string Render() const;

 private:
  struct Family {
    std::string help;
    bool histogram = false;
    std::map<Labels, std::unique_ptr<tierfs::Counter>> counters;
    std::map<Labels, std::unique_ptr<tierfs::Histogram>> histograms;
  };
  mutable Mutex mu_;
  std::map<std::string, Family> families_ GUARDED_BY(mu_);
  std::map<int, Collector> collectors_ GUARDED_BY(mu_);
  int next_id_ GUARDED_BY(mu_) = 1;
};

// Escapes a label value for the text format (backslash, double quote, newline).
std::string EscapeLabelValue(const std::string& value);

}  // namespace tierfs
