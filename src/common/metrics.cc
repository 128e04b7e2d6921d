#include "common/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace tierfs {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      buckets_(std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1)) {}

void Histogram::Observe(double value) {
  size_t i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) -
                                 bounds_.begin());
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  if (value > 0) {
    sum_micros_.fetch_add(static_cast<uint64_t>(std::llround(value * 1e6)),
                          std::memory_order_relaxed);
  }
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  s.bounds = bounds_;
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    total += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(total);
  }
  s.sum = static_cast<double>(sum_micros_.load(std::memory_order_relaxed)) / 1e6;
  return s;
}

std::string EscapeLabelValue(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

namespace {
std::string FormatValue(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buf[64];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.9g", v);
  }
  return buf;
}

std::string FormatLabels(const Labels& labels) {
  if (labels.empty()) return {};
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i) out += ',';
    out += labels[i].first + "=\"" + EscapeLabelValue(labels[i].second) + "\"";
  }
  return out + "}";
}
}  // namespace

void MetricsWriter::Header(const std::string& name, const std::string& help, const char* type) {
  if (name == last_family_) return;
  last_family_ = name;
  out_ += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

void MetricsWriter::Sample(const std::string& name, const Labels& labels, double value) {
  out_ += name + FormatLabels(labels) + " " + FormatValue(value) + "\n";
}

void MetricsWriter::Counter(const std::string& name, const std::string& help, const Labels& labels,
                            double value) {
  Header(name, help, "counter");
  Sample(name, labels, value);
}

void MetricsWriter::Gauge(const std::string& name, const std::string& help, const Labels& labels,
                          double value) {
  Header(name, help, "gauge");
  Sample(name, labels, value);
}

void MetricsWriter::Histogram(const std::string& name, const std::string& help,
                              const Labels& labels, const Histogram::Snapshot& s) {
  Header(name, help, "histogram");
  for (size_t i = 0; i < s.cumulative.size(); ++i) {
    Labels with_le = labels;
    with_le.emplace_back("le", i < s.bounds.size() ? FormatValue(s.bounds[i]) : "+Inf");
    Sample(name + "_bucket", with_le, static_cast<double>(s.cumulative[i]));
  }
  Sample(name + "_sum", labels, s.sum);
  Sample(name + "_count", labels, static_cast<double>(s.cumulative.back()));
}

MetricsRegistry& MetricsRegistry::Global() {
  static MetricsRegistry* registry = new MetricsRegistry();  // never destroyed: used at exit
  return *registry;
}

Counter& MetricsRegistry::GetCounter(const std::string& name, const std::string& help,
                                     const Labels& labels) {
  MutexLock lock(mu_);
  Family& f = families_[name];
  if (f.help.empty()) f.help = help;
  auto& slot = f.counters[labels];
  if (!slot) slot = std::make_unique<tierfs::Counter>();
  return *slot;
}

Histogram& MetricsRegistry::GetHistogram(const std::string& name, const std::string& help,
                                         const std::vector<double>& bounds, const Labels& labels) {
  MutexLock lock(mu_);
  Family& f = families_[name];
  if (f.help.empty()) f.help = help;
  f.histogram = true;
  auto& slot = f.histograms[labels];
  if (!slot) slot = std::make_unique<tierfs::Histogram>(bounds);
  return *slot;
}

int MetricsRegistry::AddCollector(Collector collector) {
  MutexLock lock(mu_);
  int id = next_id_++;
  collectors_.emplace(id, std::move(collector));
  return id;
}

void MetricsRegistry::RemoveCollector(int id) {
  MutexLock lock(mu_);
  collectors_.erase(id);
}

std::string MetricsRegistry::Render() const {
  MetricsWriter w;
  MutexLock lock(mu_);
  for (const auto& [id, collect] : collectors_) collect(w);
  for (const auto& [name, f] : families_) {
    if (f.histogram) {
      for (const auto& [labels, h] : f.histograms) w.Histogram(name, f.help, labels, h->Read());
    } else {
      for (const auto& [labels, c] : f.counters) {
        w.Counter(name, f.help, labels, static_cast<double>(c->value()));
      }
    }
  }
  return w.text();
}

}  // namespace tierfs
