// NamespaceStore: several sources served as one tree, each under its own path — what a
// Fluid Dataset with several mounts is (`/spark`, `/apache/hbase`, ...).
//
// Keys under a source's path go to that source with the path taken off ("spark/a/b" →
// "a/b" of the source at /spark); the directories above the sources ("", "apache") are
// made up here and hold only what leads to a source. One index covers the namespace, so
// inode numbers derive from the whole key and never collide between sources; a new
// revision in which one source changed leaves the others' inodes and cached blocks alone
// (both derive from keys and versions that did not change).
//
// A namespace of one source at "/" is not a NamespaceStore: the mount uses that store as
// it is. Thread-safe as the stores it holds.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "ufs/store.h"

namespace tierfs {

// Checks a source's path in the namespace and returns it as a key prefix: "/spark/" →
// "spark", "/" → "". Refused: relative paths, "." and ".." components, empty components
// ("//"), NUL and control characters.
Result<std::string> NormalizeSourcePath(std::string_view path);

// Checks a namespace's paths (as NormalizeSourcePath returns them): none twice, none inside
// another's tree, and "/" only for a namespace of one source. One line naming the paths.
Status CheckSourcePaths(const std::vector<std::string>& prefixes);

struct NamespaceSource {
  std::string prefix;  // as NormalizeSourcePath returns it, never "" here
  std::unique_ptr<Store> store;
};

// What one source answered, for stats and /metrics.
struct SourceCounters {
  std::atomic<uint64_t> requests{0};  // stat, list and read calls
  std::atomic<uint64_t> errors{0};
  std::atomic<uint64_t> bytes{0};  // read
};

class NamespaceStore : public Store {
 public:
  // Fails if the paths do not pass CheckSourcePaths.
  static Result<std::unique_ptr<NamespaceStore>> Make(std::vector<NamespaceSource> sources);

  // "namespace:/apache/hbase=URL;/spark=URL" (sorted by path): recorded in the index.
  std::string Url() const override;
  std::vector<std::string> SourcePrefixes() const override;
  Result<ObjectInfo> Stat(const std::string& key) override;
  Status List(const std::string& key, const ListSink& sink) override;
  Result<size_t> ReadRange(const ObjectRef& ref, uint64_t offset, size_t length, char* buf,
                           ReadVia* via) override;
  Result<FetchedObject> Fetch(const std::string& key, const std::string& validator,
                              size_t max_bytes) override;
  nlohmann::json RoutesJson() const override;

  size_t size() const { return sources_.size(); }
  // The source `key` lies in (its position, sorted by path), or -1 for the directories
  // above the sources.
  int SourceOf(std::string_view key) const;
  const std::string& prefix(size_t i) const { return sources_[i].prefix; }
  std::string SourceUrl(size_t i) const { return sources_[i].store->Url(); }
  const SourceCounters& counters(size_t i) const { return *sources_[i].counters; }

 private:
  struct Source {
    std::string prefix;
    std::unique_ptr<Store> store;
    std::unique_ptr<SourceCounters> counters;
  };
  explicit NamespaceStore(std::vector<Source> sources);
  // The source of `key` and the key inside it; -1 if `key` is above the sources.
  int Route(std::string_view key, std::string* inner) const;
  // Whether `key` is one of the made-up directories above the sources.
  bool IsAbove(std::string_view key) const;
  void Count(size_t i, const Status& status, uint64_t bytes = 0) const;

  std::vector<Source> sources_;  // sorted by prefix + "/" (key order of their trees)
};

}  // namespace tierfs
