// The figures of each source of a namespace mount (ufs/namespace_store.h), next to the
// mount's totals: files and bytes (from the index), bytes cached (on disk, or in RAM
// without a disk cache, as the CACHED column of `tierfs stats`), and the requests and
// bytes each source answered.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>

#include "common/metrics.h"
#include "metadata/index.h"
#include "tiers/block_cache.h"
#include "ufs/namespace_store.h"

namespace tierfs {

// A JSON array, one object per source: path, url, files, bytes, cached_bytes,
// remote_requests, remote_errors, remote_bytes.
nlohmann::json SourcesJson(const NamespaceStore& names, const BlockCache& cache,
                           const IndexMeta& meta);

// tierfs_source_{files,bytes,cached_bytes} gauges and tierfs_source_remote_{requests,
// errors,bytes}_total counters, labelled {source="/spark"}.
void WriteSourceMetrics(MetricsWriter& w, const NamespaceStore& names, const BlockCache& cache,
                        const IndexMeta& meta);

}  // namespace tierfs
