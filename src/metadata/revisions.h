// IndexRevisions: which revision of the index a mount serves, where it came from, and the
// switch to a newer one while mounted.
//
// Two kinds of mount, one subclass each (in revisions.cc; Open picks it):
//  - Published (--index URL naming a pointer, see artifact.h): the pointer is fetched
//    (conditionally, fresh through cluster caches), the artifact it names downloaded in
//    block-sized ranges (through --http-proxy, so every node after the first is served by
//    the caches), its SHA-256 verified and unpacked under <cache_dir>/indexes/<sha256>.
//    A node that restarts on a revision it has unpacked downloads nothing.
//  - Local (no URL): the index is built from the source on first mount
//    (<cache_dir>/index) or given as a directory; a refresh walks the source again into
//    <cache_dir>/indexes/local-<time> (nothing changed: the new one is dropped).
// <cache_dir>/indexes/current names the revision in use, so a restart starts from it.
//
// A refresh (every --index-refresh seconds, or on demand) that finds a new revision
// opens it and hands it to the switch callback (the filesystem, which swaps it in and
// invalidates the kernel's caches). Anything that fails (download, digest, unpack,
// another source, no room) is logged in one line and counted; the mount keeps its
// revision. An old revision's directory is removed once its last user lets go of it.
//
// Thread-safe: refreshes are serialized; Current() and the status may be read any time.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <thread>

#include "common/metrics.h"
#include "common/mutex.h"
#include "common/status.h"
#include "metadata/index.h"
#include "metadata/index_diff.h"
#include "ufs/store.h"

namespace tierfs {

struct RevisionOptions {
  std::string cache_dir;
  // A pointer: http(s)://.../latest, s3://.../latest, a local file, or a directory holding
  // `latest`. Empty: a local index.
  std::string index_url;
  std::string index_dir;  // local: a prebuilt index directory; empty: <cache_dir>/index
  bool rebuild = false;   // local: build anew even if an index is there
  long refresh_seconds = 0;
  uint64_t block_size = 1 << 20;  // artifact downloads go in ranges of this size
  StoreOptions store;             // how to reach the pointer's location
  BuildOptions build;             // local: how the index is built (archives)
};

// Whether a string given to --index names a pointer (published index) rather than an
// index directory.
bool IsIndexPointer(const std::string& index);

class IndexRevisions {
 public:
  // Swaps `next` in; returns what changed. Called from the refresh that found it.
  using SwitchFn = std::function<Result<DiffCounts>(std::shared_ptr<Index> next)>;

  // Opens the revision to start from (downloading or building it if needed). `offline`:
  // the source cannot be reached (a local index cannot be built).
  static Result<std::unique_ptr<IndexRevisions>> Open(RevisionOptions options, Store& source,
                                                      bool offline);
  virtual ~IndexRevisions();

  std::shared_ptr<Index> Current() const;
  // Bytes the index in use takes in the cache dir, and the room kept there for indexes
  // (the revision in use, plus a download and unpack of the next): the NVMe tier gets the
  // rest of --cache-size.
  uint64_t DiskBytes() const { return disk_bytes_; }
  static uint64_t RoomFor(uint64_t index_bytes);
  // Bounds the bytes indexes may take (0: unbounded). A revision that would not fit is refused.
  void SetRoom(uint64_t bytes) { room_ = bytes; }

  // Starts the periodic refresh (if refresh_seconds > 0); `on_switch` applies new revisions.
  void Start(SwitchFn on_switch);
  void Stop();
  // One refresh now (waits for one already running). The outcome in one line.
  Result<std::string> RefreshNow();

  nlohmann::json StatusJson() const;
  void WriteMetrics(MetricsWriter& w) const;

 protected:
  IndexRevisions(RevisionOptions options, Store& source);
  struct Revision {
    std::string id;  // sha256, or "local-..." / "built" for local indexes
    int64_t published_at = 0;
    int64_t built_at = 0;
  };

  // Opens the index directory `dir` as revision `rev`; `owned`: remove `dir` once unused.
  Result<std::shared_ptr<Index>> OpenDir(const std::string& dir, bool owned) REQUIRES(refresh_mu_);
  // What a check found: the revision in use stays, or another one replaced it (`line`
  // says which and what changed).
  struct Outcome {
    bool updated = false;
    std::string line = "unchanged";
  };
  // The last check's result, for status.
  enum class Checked { kNone, kUnchanged, kUpdated, kFailed };
  static const char* Name(Checked c);

  // Where revisions come from (revisions.cc): the source, walked by this node
  // (LocalRevisions), or a published pointer and its artifacts (PublishedRevisions).
  // Opens the revision to start from.
  virtual Status OpenFirst(bool offline) REQUIRES(refresh_mu_) = 0;
  // Looks for a newer revision and adopts it.
  virtual Result<Outcome> Check() REQUIRES(refresh_mu_) = 0;
  // What status and /metrics add for this kind of revision.
  virtual void AddStatus(nlohmann::json& j) const REQUIRES(mu_);
  virtual void AddMetrics(MetricsWriter& w) const REQUIRES(mu_);
  Result<Outcome> Adopt(const std::shared_ptr<Index>& next, const Revision& rev,
                        const std::string& dir_name) REQUIRES(refresh_mu_);
  // At open: `index` is the revision in use (`rev`, built_at taken from the index when 0),
  // its directory `disk_bytes` in size.
  void Serve(std::shared_ptr<Index> index, Revision rev, uint64_t disk_bytes);
  Status WriteCurrent(const std::string& dir_name);
  void RemoveStale(const std::string& keep);
  void Loop();

  // Set at open, then read only.
  const RevisionOptions options_;
  Store& source_;
  std::string indexes_dir_;
  std::atomic<uint64_t> disk_bytes_{0};
  std::atomic<uint64_t> room_{0};
  SwitchFn on_switch_;  // set by Start(), before the refresh thread runs

  // One refresh at a time; refresh_mu_ guards the state only refreshes (and Open) use.
  Mutex refresh_mu_;
  // Set to remove a revision's directory once its last user lets go.
  std::map<const Index*, std::shared_ptr<std::atomic<bool>>> retire_flags_ GUARDED_BY(refresh_mu_);

  // What readers of the status see.
  mutable Mutex mu_;
  std::shared_ptr<Index> current_ GUARDED_BY(mu_);
  Revision revision_ GUARDED_BY(mu_);
  int64_t last_check_ GUARDED_BY(mu_) = 0;
  Checked last_result_ GUARDED_BY(mu_) = Checked::kNone;
  std::string last_message_ GUARDED_BY(mu_);
  uint64_t checks_unchanged_ GUARDED_BY(mu_) = 0;
  uint64_t checks_updated_ GUARDED_BY(mu_) = 0;
  uint64_t checks_failed_ GUARDED_BY(mu_) = 0;
  uint64_t changes_applied_ GUARDED_BY(mu_) = 0;
  bool stop_ GUARDED_BY(mu_) = false;
  std::condition_variable cv_;
  std::thread thread_;
};

}  // namespace tierfs
