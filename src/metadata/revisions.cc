#include "metadata/revisions.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "common/clock.h"
#include "common/log.h"
#include "common/mutex.h"
#include "common/sha256.h"
#include "metadata/artifact.h"

namespace tierfs {
namespace fs = std::filesystem;
namespace {

constexpr size_t kMaxPointerBytes = 64 << 10;

uint64_t DirBytes(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec)) {
    if (e.is_regular_file(ec)) total += e.file_size(ec);
  }
  return total;
}

bool IsUrl(const std::string& s) {
  return s.rfind("http://", 0) == 0 || s.rfind("https://", 0) == 0 || s.rfind("s3://", 0) == 0;
}

// The directory holding a pointer and the pointer's name in it.
std::pair<std::string, std::string> SplitPointer(const std::string& index) {
  std::error_code ec;
  if (!IsUrl(index) && fs::is_directory(index, ec)) {
    return {fs::absolute(index).lexically_normal().string(), kPointerName};
  }
  std::string where = index;
  if (!IsUrl(index)) where = fs::absolute(index).lexically_normal().string();
  const size_t slash = where.rfind('/');
  return {where.substr(0, slash), where.substr(slash + 1)};
}

std::string ShortId(const std::string& id) { return id.size() == 64 ? id.substr(0, 12) : id; }

}  // namespace

bool IsIndexPointer(const std::string& index) {
  if (IsUrl(index)) return true;
  std::error_code ec;
  if (fs::is_regular_file(index, ec)) return true;
  return fs::is_directory(index, ec) && !fs::exists(fs::path(index) / "CURRENT", ec) &&
         fs::is_regular_file(fs::path(index) / kPointerName, ec);
}

uint64_t IndexRevisions::RoomFor(uint64_t index_bytes) {
  // The revision in use, the next one's download and its unpacked copy, and slack for
  // growth: a bigger revision than that is refused (until a remount makes room).
  return 3 * index_bytes + (4ULL << 20);
}

IndexRevisions::IndexRevisions(RevisionOptions options, Store& source)
    : options_(std::move(options)), source_(source) {
  indexes_dir_ = options_.cache_dir + "/indexes";
}

IndexRevisions::~IndexRevisions() { Stop(); }

// Revisions this node builds by walking the source: the index in the cache dir (or
// --index DIR), rebuilt on --rebuild-index; a refresh walks the source again.
class LocalRevisions : public IndexRevisions {
 public:
  LocalRevisions(RevisionOptions options, Store& source)
      : IndexRevisions(std::move(options), source) {}
  ~LocalRevisions() override { Stop(); }  // the refresher calls Check: stop it first

 private:
  Status OpenFirst(bool offline) override REQUIRES(refresh_mu_);
  Result<Outcome> Check() override REQUIRES(refresh_mu_);
};

// Revisions published elsewhere: a pointer (`latest`) names an artifact by its SHA-256;
// a refresh fetches the pointer conditionally and downloads what it names.
class PublishedRevisions : public IndexRevisions {
 public:
  PublishedRevisions(RevisionOptions options, Store& source)
      : IndexRevisions(std::move(options), source) {}
  ~PublishedRevisions() override { Stop(); }

 private:
  Status OpenFirst(bool offline) override REQUIRES(refresh_mu_);
  Result<Outcome> Check() override REQUIRES(refresh_mu_);
  void AddStatus(nlohmann::json& j) const override REQUIRES(mu_);
  void AddMetrics(MetricsWriter& w) const override REQUIRES(mu_);
  Status Download(const IndexPointer& pointer, const std::string& dest);

  std::unique_ptr<Store> pointer_store_;  // the pointer's directory; set at open
  std::string pointer_key_;
  std::string pointer_validator_ GUARDED_BY(refresh_mu_);
};

Result<std::unique_ptr<IndexRevisions>> IndexRevisions::Open(RevisionOptions options, Store& source,
                                                             bool offline) {
  std::unique_ptr<IndexRevisions> r;
  if (options.index_url.empty()) {
    r = std::make_unique<LocalRevisions>(std::move(options), source);
  } else {
    r = std::make_unique<PublishedRevisions>(std::move(options), source);
  }
  std::error_code ec;
  fs::create_directories(r->indexes_dir_, ec);
  if (ec) return Status(ec.value(), "cannot create '" + r->indexes_dir_ + "': " + ec.message());
  Status s;
  {
    MutexLock refresh(r->refresh_mu_);  // no refresh can run yet; the rule holds anyway
    s = r->OpenFirst(offline);
  }
  if (!s.ok()) return s;
  return r;
}

Result<std::shared_ptr<Index>> IndexRevisions::OpenDir(const std::string& dir, bool owned) {
  auto index = OpenIndex(dir);
  if (!index.ok()) return index.status();
  if ((*index)->Meta().source != source_.Url()) {
    return Status::Invalid("index '" + dir + "' was built for " + (*index)->Meta().source +
                           ", not " + source_.Url());
  }
  // The directory goes with the last user of a revision that was switched away from.
  auto retired = std::make_shared<std::atomic<bool>>(false);
  std::shared_ptr<Index> held((*index).release(), [dir, owned, retired](Index* p) {
    delete p;
    if (owned && retired->load()) {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  });
  retire_flags_[held.get()] = retired;
  return held;
}

void IndexRevisions::Serve(std::shared_ptr<Index> index, Revision rev, uint64_t disk_bytes) {
  if (rev.built_at == 0) rev.built_at = index->Meta().built_at;
  MutexLock lock(mu_);
  current_ = std::move(index);
  revision_ = std::move(rev);
  disk_bytes_ = disk_bytes;
}

Status IndexRevisions::WriteCurrent(const std::string& dir_name) {
  return WriteFileAtomically(indexes_dir_ + "/current", dir_name + "\n");
}

// Removes what earlier runs left in indexes/: other revisions, partial downloads/unpacks.
void IndexRevisions::RemoveStale(const std::string& keep) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(indexes_dir_, ec)) {
    const std::string name = e.path().filename().string();
    if (name == keep || name == "current") continue;
    fs::remove_all(e.path(), ec);
  }
}

Status LocalRevisions::OpenFirst(bool offline) {
  // A revision a refresh built earlier, if it is newer than what would be opened otherwise.
  std::string current_name;
  {
    std::ifstream f(indexes_dir_ + "/current");
    std::getline(f, current_name);
  }
  std::error_code ec;
  const std::string base =
      options_.index_dir.empty() ? options_.cache_dir + "/index" : options_.index_dir;
  if (!options_.rebuild && current_name.rfind("local-", 0) == 0 &&
      fs::exists(indexes_dir_ + "/" + current_name + "/CURRENT", ec)) {
    auto refreshed = OpenDir(indexes_dir_ + "/" + current_name, true);
    int64_t base_built = 0;
    if (auto b = OpenIndex(base); b.ok()) base_built = (*b)->Meta().built_at;
    if (refreshed.ok() && (*refreshed)->Meta().built_at >= base_built &&
        (*refreshed)->Meta().archive_label == options_.build.archive_label) {
      RemoveStale(current_name);
      Serve(std::move(*refreshed), {current_name, 0, 0},
            DirBytes(indexes_dir_ + "/" + current_name));
      return Status::Ok();
    }
  }
  RemoveStale("");
  const bool explicit_index = !options_.index_dir.empty();
  if (explicit_index || (!options_.rebuild && fs::exists(base + "/CURRENT", ec))) {
    auto index = OpenDir(base, !explicit_index);
    const bool other_archives = index.ok() && !explicit_index &&
                                (*index)->Meta().archive_label != options_.build.archive_label;
    if ((index.ok() && !other_archives) || explicit_index) {
      if (!index.ok()) return index.status();
      Serve(std::move(*index), {"built", 0, 0}, explicit_index ? 0 : DirBytes(base));
      return Status::Ok();
    }
    TLOG_INFO("index at '{}' is {}; rebuilding it", base,
              other_archives ? "for other --archives options" : "unusable");
  }
  if (offline) {
    return Status(EHOSTUNREACH, "the source is unreachable and there is no usable index");
  }
  std::fprintf(stderr, "tierfs: building index of %s ...\n", source_.Url().c_str());
  auto meta = BuildIndex(source_, base, options_.build);
  if (!meta.ok()) return meta.status();
  std::fprintf(stderr, "tierfs: indexed %llu files, %llu dirs\n",
               static_cast<unsigned long long>(meta->files),
               static_cast<unsigned long long>(meta->dirs));
  auto index = OpenDir(base, true);
  if (!index.ok()) return index.status();
  Serve(std::move(*index), {"built", 0, 0}, DirBytes(base));
  return Status::Ok();
}

// The pointer is tried even when the source is unreachable: it may be served elsewhere.
Status PublishedRevisions::OpenFirst(bool /*offline*/) {
  auto [dir, key] = SplitPointer(options_.index_url);
  pointer_key_ = key;
  StoreOptions so = options_.store;
  so.manifest.clear();
  so.allow_offline = true;
  auto store = OpenStore(dir, so);
  if (!store.ok()) return store.status();
  pointer_store_ = std::move(*store);

  // The revision this cache dir holds already: the fallback if the pointer cannot be had.
  std::string held;
  {
    std::ifstream f(indexes_dir_ + "/current");
    std::getline(f, held);
  }
  auto use_held = [&](const Status& why) REQUIRES(refresh_mu_) -> Status {
    std::error_code ec;
    if (!IsSha256Hex(held) || !fs::exists(indexes_dir_ + "/" + held + "/CURRENT", ec)) {
      const std::string url = RedactUrl(options_.index_url);
      if (why.message().find(url) != std::string::npos) return why;
      return Status(why.error(), "index " + url + ": " + why.message());
    }
    auto index = OpenDir(indexes_dir_ + "/" + held, true);
    if (!index.ok()) return index.status();
    TLOG_WARN("index {}: {}; serving the revision this node has ({})",
              RedactUrl(options_.index_url), why.message(), ShortId(held));
    RemoveStale(held);
    Serve(std::move(*index), {held, 0, 0}, DirBytes(indexes_dir_ + "/" + held));
    MutexLock lock(mu_);
    last_check_ = UnixNow();
    last_result_ = Checked::kFailed;
    last_message_ = why.message();
    ++checks_failed_;
    return Status::Ok();
  };
  auto fetched = pointer_store_->Fetch(pointer_key_, "", kMaxPointerBytes);
  if (!fetched.ok()) return use_held(fetched.status());
  auto pointer = DecodePointer(fetched->body);
  if (!pointer.ok()) return use_held(pointer.status());
  if (pointer->source != source_.Url()) {
    return Status::Invalid("index " + RedactUrl(options_.index_url) + " was published for " +
                           pointer->source + ", not " + source_.Url());
  }
  const std::string dest = indexes_dir_ + "/" + pointer->sha256;
  std::error_code ec;
  if (!fs::exists(dest + "/CURRENT", ec)) {
    RemoveStale(held);  // partial downloads of earlier runs
    std::fprintf(stderr, "tierfs: downloading index revision %s (%llu bytes) ...\n",
                 ShortId(pointer->sha256).c_str(), static_cast<unsigned long long>(pointer->size));
    if (Status s = Download(*pointer, dest); !s.ok()) return use_held(s);
  }
  auto index = OpenDir(dest, true);
  if (!index.ok()) return index.status();
  RemoveStale(pointer->sha256);
  Serve(std::move(*index), {pointer->sha256, pointer->published_at, pointer->built_at},
        DirBytes(dest));
  pointer_validator_ = fetched->validator;
  {
    MutexLock lock(mu_);
    last_check_ = UnixNow();
    last_result_ = Checked::kUnchanged;
    ++checks_unchanged_;
  }
  return WriteCurrent(pointer->sha256);
}

Status PublishedRevisions::Download(const IndexPointer& pointer, const std::string& dest) {
  const uint64_t room = room_.load();
  if (room != 0 && disk_bytes_ + 2 * pointer.size > room) {
    return Status(ENOSPC, "revision " + ShortId(pointer.sha256) + " needs " +
                              std::to_string(2 * pointer.size) +
                              " bytes to download and unpack; the cache dir keeps " +
                              std::to_string(room - std::min<uint64_t>(room, disk_bytes_)) +
                              " for it (remount to make room)");
  }
  return DownloadArtifact(*pointer_store_, pointer, options_.block_size, dest);
}

std::shared_ptr<Index> IndexRevisions::Current() const {
  MutexLock lock(mu_);
  return current_;
}

void IndexRevisions::Start(SwitchFn on_switch) {
  on_switch_ = std::move(on_switch);
  if (options_.refresh_seconds > 0) thread_ = std::thread([this] { Loop(); });
}

void IndexRevisions::Stop() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void IndexRevisions::Loop() {
  SetThreadName("tierfs-refresh");
  MutexLock lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock.native(), std::chrono::seconds(options_.refresh_seconds),
                 [&]() REQUIRES(mu_) { return stop_; });
    if (stop_) break;
    lock.Unlock();
    auto r = RefreshNow();
    if (r.ok() && *r != Outcome{}.line) TLOG_INFO("index: {}", *r);
    lock.Lock();
  }
}

const char* IndexRevisions::Name(Checked c) {
  switch (c) {
    case Checked::kUnchanged:
      return "unchanged";
    case Checked::kUpdated:
      return "updated";
    case Checked::kFailed:
      return "failed";
    case Checked::kNone:
      break;
  }
  return "none";
}

Result<std::string> IndexRevisions::RefreshNow() {
  MutexLock refresh(refresh_mu_);
  auto outcome = Check();
  MutexLock lock(mu_);
  last_check_ = UnixNow();
  if (!outcome.ok()) {
    // One line per kind of failure: a check that fails again the same way says nothing.
    const bool repeated =
        last_result_ == Checked::kFailed && last_message_ == outcome.status().message();
    last_result_ = Checked::kFailed;
    last_message_ = outcome.status().message();
    ++checks_failed_;
    if (!repeated) {
      TLOG_WARN("index refresh failed, staying on revision {}: {}", ShortId(revision_.id),
                last_message_);
    }
    return outcome.status();
  }
  if (last_result_ == Checked::kFailed) TLOG_INFO("index refresh works again");
  last_result_ = outcome->updated ? Checked::kUpdated : Checked::kUnchanged;
  last_message_ = outcome->line;
  ++(outcome->updated ? checks_updated_ : checks_unchanged_);
  return outcome->line;
}

Result<IndexRevisions::Outcome> PublishedRevisions::Check() {
  auto fetched = pointer_store_->Fetch(pointer_key_, pointer_validator_, kMaxPointerBytes);
  if (!fetched.ok()) {
    return Status(fetched.status().error(), "pointer: " + fetched.status().message());
  }
  if (fetched->not_modified) return Outcome{};
  auto pointer = DecodePointer(fetched->body);
  if (!pointer.ok())
    return Status(pointer.status().error(), "pointer: " + pointer.status().message());
  std::string current_id;
  {
    MutexLock lock(mu_);
    current_id = revision_.id;
  }
  if (pointer->sha256 == current_id) {
    pointer_validator_ = fetched->validator;
    return Outcome{};
  }
  if (pointer->source != source_.Url()) {
    return Status::Invalid("revision " + ShortId(pointer->sha256) + " was published for " +
                           pointer->source + ", not " + source_.Url());
  }
  const std::string dest = indexes_dir_ + "/" + pointer->sha256;
  std::error_code ec;
  if (!fs::exists(dest + "/CURRENT", ec)) {
    fs::remove_all(dest, ec);
    if (Status s = Download(*pointer, dest); !s.ok()) return s;
  }
  auto index = OpenDir(dest, true);
  if (!index.ok()) {
    fs::remove_all(dest, ec);
    return index.status();
  }
  auto adopted =
      Adopt(std::shared_ptr<Index>(std::move(*index)),
            {pointer->sha256, pointer->published_at, pointer->built_at}, pointer->sha256);
  if (adopted.ok()) pointer_validator_ = fetched->validator;
  return adopted;
}

Result<IndexRevisions::Outcome> LocalRevisions::Check() {
  // A name no revision has (the one in use may be from this very second).
  std::string name, dest;
  std::error_code ec;
  for (int n = 0; dest.empty() || fs::exists(dest, ec); ++n) {
    name = "local-" + std::to_string(UnixNow()) + "-" + std::to_string(n);
    dest = indexes_dir_ + "/" + name;
  }
  auto meta = BuildIndex(source_, dest, options_.build);
  if (!meta.ok()) return Status(meta.status().error(), "walk: " + meta.status().message());
  const uint64_t bytes = DirBytes(dest);
  const uint64_t room = room_.load();
  if (room != 0 && disk_bytes_ + bytes > room) {
    fs::remove_all(dest, ec);
    return Status(ENOSPC, "the new index takes " + std::to_string(bytes) +
                              " bytes; the cache dir keeps " +
                              std::to_string(room - std::min<uint64_t>(room, disk_bytes_)) +
                              " for it (remount to make room)");
  }
  auto index = OpenDir(dest, true);
  if (!index.ok()) {
    fs::remove_all(dest, ec);
    return index.status();
  }
  // Nothing changed: keep the revision in use (no switch, no invalidation).
  auto diff = DiffIndexes(*Current(), **index, [](const IndexChange&) {});
  if (diff.ok() && diff->total() == 0) {
    *retire_flags_[index->get()] = true;
    retire_flags_.erase(index->get());
    return Outcome{};
  }
  return Adopt(std::shared_ptr<Index>(std::move(*index)), {name, 0, meta->built_at}, name);
}

// Switches to `next` (opened from indexes/`dir_name`) and retires the revision in use.
Result<IndexRevisions::Outcome> IndexRevisions::Adopt(const std::shared_ptr<Index>& next,
                                                      const Revision& rev,
                                                      const std::string& dir_name) {
  DiffCounts counts;
  const auto start = std::chrono::steady_clock::now();
  if (on_switch_) {
    auto switched = on_switch_(next);
    if (!switched.ok()) return switched.status();
    counts = *switched;
  }
  const double switch_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::shared_ptr<Index> old;
  {
    MutexLock lock(mu_);
    old = std::move(current_);
    current_ = next;
    revision_ = rev;
    changes_applied_ += counts.total();
  }
  if (auto it = retire_flags_.find(old.get()); it != retire_flags_.end()) {
    it->second->store(true);
    retire_flags_.erase(it);
  }
  old.reset();
  disk_bytes_ = DirBytes(indexes_dir_ + "/" + dir_name);
  if (Status s = WriteCurrent(dir_name); !s.ok()) TLOG_WARN("{}", s.message());
  char line[256];
  std::snprintf(line, sizeof line,
                "switched to revision %s: %llu added, %llu removed, %llu replaced, %llu changed "
                "(compared and applied in %.2fs)",
                ShortId(rev.id).c_str(), static_cast<unsigned long long>(counts.added),
                static_cast<unsigned long long>(counts.removed),
                static_cast<unsigned long long>(counts.replaced),
                static_cast<unsigned long long>(counts.attrs), switch_seconds);
  return Outcome{true, line};
}

nlohmann::json IndexRevisions::StatusJson() const {
  MutexLock lock(mu_);
  nlohmann::json j = {{"revision", revision_.id},
                      {"built_at", revision_.built_at},
                      {"refresh_seconds", options_.refresh_seconds},
                      {"last_check", last_check_},
                      {"last_check_result", Name(last_result_)},
                      {"last_check_message", last_message_},
                      {"checks",
                       {{"unchanged", checks_unchanged_},
                        {"updated", checks_updated_},
                        {"failed", checks_failed_}}},
                      {"changes_applied", changes_applied_}};
  AddStatus(j);
  return j;
}

void IndexRevisions::AddStatus(nlohmann::json&) const {}
void IndexRevisions::AddMetrics(MetricsWriter&) const {}

void PublishedRevisions::AddStatus(nlohmann::json& j) const {
  j["url"] = RedactUrl(options_.index_url);
  j["published_at"] = revision_.published_at;
}

void PublishedRevisions::AddMetrics(MetricsWriter& w) const {
  w.Gauge("tierfs_index_published_timestamp_seconds", "when the index in use was published", {},
          static_cast<double>(revision_.published_at));
}

void IndexRevisions::WriteMetrics(MetricsWriter& w) const {
  MutexLock lock(mu_);
  auto d = [](auto v) { return static_cast<double>(v); };
  w.Gauge("tierfs_index_revision_info", "the index revision in use (1 for the one in use)",
          {{"revision", ShortId(revision_.id)}}, 1);
  w.Gauge("tierfs_index_built_timestamp_seconds", "when the index in use was built", {},
          d(revision_.built_at));
  AddMetrics(w);
  w.Gauge("tierfs_index_last_check_timestamp_seconds",
          "when the mount last checked for a new index revision (0: never)", {}, d(last_check_));
  const std::pair<const char*, uint64_t> results[] = {
      {"unchanged", checks_unchanged_}, {"updated", checks_updated_}, {"failed", checks_failed_}};
  for (const auto& [result, n] : results) {
    w.Counter("tierfs_index_checks_total", "checks for a new index revision, by outcome",
              {{"result", result}}, d(n));
  }
  w.Counter("tierfs_index_changes_total",
            "paths added, removed or changed by index revisions switched to while mounted", {},
            d(changes_applied_));
}

}  // namespace tierfs
