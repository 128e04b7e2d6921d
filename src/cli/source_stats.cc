#include "cli/source_stats.h"

#include <nlohmann/json.hpp>
#include <vector>

namespace tierfs {
namespace {

struct SourceRow {
  std::string path, url;
  uint64_t files = 0, bytes = 0, cached = 0, requests = 0, errors = 0, remote_bytes = 0;
};

std::vector<SourceRow> Rows(const NamespaceStore& names, const BlockCache& cache,
                            const IndexMeta& meta) {
  // What CACHED counts: the disk tiers when there are any, else the RAM tier.
  const auto by_tier = cache.BytesByTag();
  bool on_disk = false;
  for (const auto& [tier, bytes] : by_tier) on_disk |= tier != "ram";
  std::vector<SourceRow> rows;
  for (size_t i = 0; i < names.size(); ++i) {
    SourceRow r;
    r.path = "/" + names.prefix(i);
    r.url = names.SourceUrl(i);
    for (const IndexMeta::SourceCount& s : meta.sources) {
      if (s.prefix == names.prefix(i)) {
        r.files = s.files;
        r.bytes = s.bytes;
      }
    }
    for (const auto& [tier, bytes] : by_tier) {
      if ((tier != "ram") == on_disk) r.cached += bytes[i + 1];
    }
    const SourceCounters& c = names.counters(i);
    r.requests = c.requests.load(std::memory_order_relaxed);
    r.errors = c.errors.load(std::memory_order_relaxed);
    r.remote_bytes = c.bytes.load(std::memory_order_relaxed);
    rows.push_back(std::move(r));
  }
  return rows;
}

}  // namespace

nlohmann::json SourcesJson(const NamespaceStore& names, const BlockCache& cache,
                           const IndexMeta& meta) {
  nlohmann::json j = nlohmann::json::array();
  for (const SourceRow& r : Rows(names, cache, meta)) {
    j.push_back({{"path", r.path},
                 {"url", r.url},
                 {"files", r.files},
                 {"bytes", r.bytes},
                 {"cached_bytes", r.cached},
                 {"remote_requests", r.requests},
                 {"remote_errors", r.errors},
                 {"remote_bytes", r.remote_bytes}});
  }
  return j;
}

void WriteSourceMetrics(MetricsWriter& w, const NamespaceStore& names, const BlockCache& cache,
                        const IndexMeta& meta) {
  const std::vector<SourceRow> rows = Rows(names, cache, meta);
  struct Family {
    const char* name;
    const char* help;
    bool counter;
    uint64_t SourceRow::*field;
  };
  static constexpr Family kFamilies[] = {
      {"tierfs_source_files", "regular files of each source", false, &SourceRow::files},
      {"tierfs_source_bytes", "bytes of each source (its TOTAL SIZE)", false, &SourceRow::bytes},
      {"tierfs_source_cached_bytes", "bytes of each source in the cache (its CACHED)", false,
       &SourceRow::cached},
      {"tierfs_source_remote_requests_total", "calls to each source (stat, list, read)", true,
       &SourceRow::requests},
      {"tierfs_source_remote_errors_total", "calls to each source that failed", true,
       &SourceRow::errors},
      {"tierfs_source_remote_bytes_total", "bytes read from each source", true,
       &SourceRow::remote_bytes},
  };
  for (const Family& f : kFamilies) {
    for (const SourceRow& r : rows) {
      const double v = static_cast<double>(r.*f.field);
      if (f.counter) {
        w.Counter(f.name, f.help, {{"source", r.path}}, v);
      } else {
        w.Gauge(f.name, f.help, {{"source", r.path}}, v);
      }
    }
  }
}

}  // namespace tierfs
