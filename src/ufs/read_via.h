// ReadVia: where the bytes of one remote read came from, for the per-source counters
// (RAM and NVMe hits are counted by the block cache; this splits the remote reads).
#pragma once

#include <cstdint>

namespace tierfs {

enum class ReadVia : uint8_t {
  kOrigin,     // straight from the source (any store, or DIRECT)
  kCacheHit,   // a cluster cache served it from its own store
  kCacheMiss,  // a cluster cache fetched it from the origin for us
  kCache,      // a cluster cache that does not say which
};

inline const char* ReadViaName(ReadVia via) {
  switch (via) {
    case ReadVia::kCacheHit:
      return "cache_hit";
    case ReadVia::kCacheMiss:
      return "cache_miss";
    case ReadVia::kCache:
      return "cache";
    case ReadVia::kOrigin:
      break;
  }
  return "origin";
}

}  // namespace tierfs
