#include "cli/admin_commands.h"

#include <signal.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/fail.h"
#include "cli/mount_command.h"
#include "common/mutex.h"
#include "common/size.h"
#include "common/xattrs.h"

namespace tierfs {
namespace fs = std::filesystem;
namespace {

bool ReadStats(const std::string& mountpoint, nlohmann::json* out, std::string* error) {
  if (!IsTierfsMount(mountpoint)) {
    *error = "'" + mountpoint + "' is not a tierfs mount";
    return false;
  }
  std::string buf(1 << 16, '\0');
  ssize_t n = ::getxattr(mountpoint.c_str(), kStatsXattr, buf.data(), buf.size());
  if (n < 0) {
    *error = "cannot read stats of '" + mountpoint + "': " + std::strerror(errno);
    return false;
  }
  buf.resize(static_cast<size_t>(n));
  *out = nlohmann::json::parse(buf, nullptr, false);
  if (out->is_discarded()) {
    *error = "malformed stats from '" + mountpoint + "'";
    return false;
  }
  return true;
}

std::string Percent(double part, double whole) {
  char b[16];
  std::snprintf(b, sizeof b, "%.1f%%", whole > 0 ? 100.0 * part / whole : 0.0);
  return b;
}

void PrintStats(const nlohmann::json& j) {
  const uint64_t total = j.value("total_bytes", uint64_t{0});
  uint64_t cached = 0, capacity = 0;
  const bool on_disk =
      j.contains("tiers") && (j["tiers"].contains("nvme") || j["tiers"].contains("objects"));
  if (on_disk) {
    // The disk tiers (segments and object files) share one bound.
    for (const char* tier : {"nvme", "objects"}) {
      if (!j["tiers"].contains(tier)) continue;
      cached += j["tiers"][tier].value("used_bytes", uint64_t{0});
      capacity = std::max(capacity, j["tiers"][tier].value("capacity_bytes", uint64_t{0}));
    }
  } else if (j.contains("tiers") && j["tiers"].contains("ram")) {
    cached = j["tiers"]["ram"].value("used_bytes", uint64_t{0});
    capacity = j["tiers"]["ram"].value("capacity_bytes", uint64_t{0});
  }
  cached = std::min(cached, total);
  std::printf("%-14s %-14s %-16s %-8s\n", "TOTAL SIZE", "CACHED", "CACHE CAPACITY", "CACHED%");
  std::printf("%-14s %-14s %-16s %-8s\n\n", FormatSize(total).c_str(), FormatSize(cached).c_str(),
              FormatSize(capacity).c_str(),
              Percent(static_cast<double>(cached), static_cast<double>(total)).c_str());
  if (j.contains("sources") && j["sources"].is_array()) {
    // A namespace: the same columns per source, then what each asked of its store.
    std::printf("%-20s %-14s %-14s %-8s %-8s %s\n", "SOURCE", "TOTAL SIZE", "CACHED", "CACHED%",
                "FILES", "REMOTE REQUESTS");
    for (const auto& s : j["sources"]) {
      const uint64_t b = s.value("bytes", uint64_t{0});
      const uint64_t c = std::min(s.value("cached_bytes", uint64_t{0}), b);
      std::printf("%-20s %-14s %-14s %-8s %-8llu %llu\n", s.value("path", "").c_str(),
                  FormatSize(b).c_str(), FormatSize(c).c_str(),
                  Percent(static_cast<double>(c), static_cast<double>(b)).c_str(),
                  static_cast<unsigned long long>(s.value("files", 0ULL)),
                  static_cast<unsigned long long>(s.value("remote_requests", 0ULL)));
    }
    std::printf("\n");
  }
  const uint64_t hits = j.value("block_hits", uint64_t{0}),
                 misses = j.value("block_misses", uint64_t{0});
  std::printf("source           %s\n", j.value("source", "").c_str());
  std::printf("files            %llu in %llu dirs\n",
              static_cast<unsigned long long>(j.value("files", 0ULL)),
              static_cast<unsigned long long>(j.value("dirs", 0ULL)));
  if (j.value("archives", 0ULL) > 0) {
    std::printf("archives         %llu, served as directories of %llu members\n",
                static_cast<unsigned long long>(j.value("archives", 0ULL)),
                static_cast<unsigned long long>(j.value("archive_members", 0ULL)));
  }
  std::printf("block hit ratio  %s (%llu hits, %llu misses)\n",
              Percent(static_cast<double>(hits), static_cast<double>(hits + misses)).c_str(),
              static_cast<unsigned long long>(hits), static_cast<unsigned long long>(misses));
  if (j.contains("tiers")) {
    for (const auto& [name, t] : j["tiers"].items()) {
      uint64_t th = t.value("hits", uint64_t{0}), tm = t.value("misses", uint64_t{0});
      std::printf(
          "%-5s tier       %s of %s, hit ratio %s, %llu evictions, %llu checksum failures, %llu "
          "errors\n",
          name.c_str(), FormatSize(t.value("used_bytes", uint64_t{0})).c_str(),
          FormatSize(t.value("capacity_bytes", uint64_t{0})).c_str(),
          Percent(static_cast<double>(th), static_cast<double>(th + tm)).c_str(),
          static_cast<unsigned long long>(t.value("evictions", 0ULL)),
          static_cast<unsigned long long>(t.value("checksum_failures", 0ULL)),
          static_cast<unsigned long long>(t.value("errors", 0ULL)));
    }
  }
  if (j.contains("passthrough")) {
    const auto& p = j["passthrough"];
    auto n = [&](const char* key) { return static_cast<unsigned long long>(p.value(key, 0ULL)); };
    std::printf(
        "passthrough      %s%s; %llu opens (%llu by the daemon), %llu of %llu cached objects "
        "eligible, %llu backing files open\n",
        p.value("state", "off").c_str(),
        p.contains("why_off") ? (" (" + p.value("why_off", "") + ")").c_str() : "", n("opens"),
        n("cached_opens"), n("objects_eligible"), n("objects"), n("backing_files"));
  }
  std::printf("remote           %llu requests, %s, %llu errors\n",
              static_cast<unsigned long long>(j.value("remote_reads", 0ULL)),
              FormatSize(j.value("remote_bytes", uint64_t{0})).c_str(),
              static_cast<unsigned long long>(j.value("remote_errors", 0ULL)));
  if (j.contains("block_sources")) {
    std::string line;
    for (const auto& [name, c] : j["block_sources"].items()) {
      const uint64_t blocks = c.value("blocks", uint64_t{0});
      if (blocks == 0 && name.rfind("cache", 0) == 0) continue;  // no cluster caches
      line += (line.empty() ? "" : ", ") + name + " " + std::to_string(blocks) + " (" +
              FormatSize(c.value("bytes", uint64_t{0})) + ")";
    }
    std::printf("blocks from      %s\n", line.c_str());
  }
  if (j.contains("routes")) {
    for (const auto& r : j["routes"]) {
      auto n = [&](const char* what, const char* result) {
        return static_cast<unsigned long long>(r[what].value(result, uint64_t{0}));
      };
      std::printf(
          "route %-30s %-4s hit %llu, miss %llu, answered %llu, refused %llu, errors %llu, "
          "went down %llu times\n",
          r.value("via", "").c_str(), r.value("up", false) ? "up" : "DOWN", n("requests", "hit"),
          n("requests", "miss"), n("requests", "answered"), n("requests", "refused"),
          n("requests", "error"), static_cast<unsigned long long>(r.value("downs", uint64_t{0})));
    }
  }
  if (j.contains("index")) {
    const auto& ix = j["index"];
    std::string id = ix.value("revision", "");
    if (id.size() == 64) id.resize(12);
    const int64_t now = ::time(nullptr);
    auto ago = [now](int64_t t) {
      return t <= 0 ? std::string("never")
                    : std::to_string(std::max<int64_t>(0, now - t)) + "s ago";
    };
    std::string line = id;
    if (ix.contains("url")) line += ", published " + ago(ix.value("published_at", int64_t{0}));
    line += ", built " + ago(ix.value("built_at", int64_t{0}));
    std::printf("index revision   %s\n", line.c_str());
    const int64_t checked = ix.value("last_check", int64_t{0});
    if (checked > 0 || ix.value("refresh_seconds", 0L) > 0) {
      std::string result = ix.value("last_check_result", "");
      std::string message = ix.value("last_check_message", "");
      std::printf("index check      %s: %s%s (every %lds)\n", ago(checked).c_str(), result.c_str(),
                  result == "failed" ? (" (" + message + ")").c_str() : "",
                  ix.value("refresh_seconds", 0L));
    }
  }
  std::printf("daemon           pid %lld, RSS %s\n", static_cast<long long>(j.value("pid", 0LL)),
              FormatSize(j.value("rss_bytes", uint64_t{0})).c_str());
}

}  // namespace

int RunStats(const std::string& mountpoint, bool json, bool watch) {
  std::error_code ec;
  const std::string mnt = fs::weakly_canonical(mountpoint, ec).string();
  do {
    nlohmann::json j;
    std::string error;
    if (!ReadStats(mnt, &j, &error)) return Fail(error);
    if (watch && ::isatty(STDOUT_FILENO)) std::printf("\033[H\033[2J");
    if (json) {
      std::printf("%s\n", j.dump(2).c_str());
    } else {
      PrintStats(j);
    }
    std::fflush(stdout);
    if (watch) std::this_thread::sleep_for(std::chrono::seconds(2));
  } while (watch);
  return 0;
}

namespace {

// The files `tierfs warm` pulls in: those listed in `list_file`, plus every regular file
// under `paths` (relative to the mount; the whole mount when neither is given). An error
// names the path that is not in the mount.
// A path the user named, as a path in the filesystem: one under the mountpoint as it is,
// any other taken inside the mount ("spark/x", and "/spark/x" as a Dataset names it).
std::string InMount(const std::string& mnt, const std::string& p) {
  const fs::path root = fs::absolute(mnt).lexically_normal();
  const fs::path given = fs::path(p).lexically_normal();
  if (given.is_absolute()) {
    auto [r, g] = std::mismatch(root.begin(), root.end(), given.begin(), given.end());
    if (r == root.end() || (std::next(r) == root.end() && r->empty())) return given.string();
  }
  return (root / given.relative_path()).string();
}

// What `tierfs warm` asks for: directories (each warmed by the daemon in one request) and
// single files (those of `list_file`, and file arguments); `files_in_dirs` counts the
// files under the directories, for the progress line.
struct WarmTargets {
  std::vector<std::string> dirs, files;
  size_t files_in_dirs = 0;
  size_t total() const { return files.size() + files_in_dirs; }
};

// Calls `fn` with every regular file under `dir` (symlinks not followed).
void ForEachFile(const fs::path& dir, const std::function<void(const fs::path&)>& fn) {
  std::error_code e;
  for (auto it = fs::recursive_directory_iterator(dir, e);
       !e && it != fs::recursive_directory_iterator(); it.increment(e)) {
    if (it->is_regular_file(e) && !it->is_symlink(e)) fn(it->path());
  }
}

Result<WarmTargets> WarmTargetsOf(const std::string& mnt, const std::vector<std::string>& paths,
                                  const std::string& list_file) {
  WarmTargets t;
  if (!list_file.empty()) {
    std::ifstream in(list_file);
    if (!in) return Status::Invalid("cannot read list file '" + list_file + "'");
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty()) t.files.push_back(InMount(mnt, line));
    }
  }
  std::vector<std::string> roots = paths;
  if (roots.empty() && list_file.empty()) roots.push_back(mnt);
  for (const auto& p : roots) {
    const std::string path = InMount(mnt, p);
    std::error_code e;
    const fs::file_status st = fs::symlink_status(path, e);
    if (fs::is_regular_file(st)) {
      t.files.push_back(path);
    } else if (fs::is_directory(st)) {
      t.dirs.push_back(path);
      ForEachFile(path, [&t](const fs::path&) { ++t.files_in_dirs; });
    } else {
      return Status::Invalid("'" + p + "' is not a file or directory in the mount");
    }
  }
  return t;
}

// What the warm workers have done so far (shared with the progress line).
struct WarmProgress {
  std::atomic<size_t> done{0};  // single files
  std::atomic<uint64_t> bytes{0};
  std::atomic<size_t> dir_files{0};  // directory warms that have answered
  std::atomic<uint64_t> dir_bytes{0};
  // Files and bytes of directory warms still running (the daemon's counters), if any.
  std::function<std::pair<uint64_t, uint64_t>()> daemon;
  const std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
};

// Tells the progress thread to stop at once, not at its next line.
struct ProgressStop {
  Mutex mu;
  std::condition_variable cv;
  bool done GUARDED_BY(mu) = false;
  void Stop() {
    {
      MutexLock lock(mu);
      done = true;
    }
    cv.notify_all();
  }
};

// Prints a progress line every 200 ms on a terminal (a bar, rewritten in place) or every
// 5 s otherwise (plain lines), until stopped.
void ShowProgress(const WarmProgress& p, size_t total, bool tty, ProgressStop* stop) {
  for (;;) {
    {
      MutexLock lock(stop->mu);
      if (stop->cv.wait_for(lock.native(), std::chrono::milliseconds(tty ? 200 : 5000),
                            [stop]() REQUIRES(stop->mu) { return stop->done; })) {
        return;
      }
    }
    const double secs = p.seconds();
    size_t d = p.done;
    uint64_t bytes = p.bytes;
    if (p.daemon) {
      const auto [files, dir_bytes] = p.daemon();
      d += std::max<size_t>(files, p.dir_files);
      bytes += std::max<uint64_t>(dir_bytes, p.dir_bytes);
    }
    d = std::min(d, total);
    const double rate = secs > 0 ? static_cast<double>(bytes) / secs : 0;
    const double eta = d > 0 ? secs * static_cast<double>(total - d) / static_cast<double>(d) : 0;
    const int width = 30, filled = total == 0 ? width : static_cast<int>(width * d / total);
    std::fprintf(stderr, "%s[%.*s%*s] %zu/%zu files, %s, %s/s, ETA %.0fs%s", tty ? "\r" : "",
                 filled, "##############################", width - filled, "", d, total,
                 FormatSize(bytes).c_str(), FormatSize(static_cast<uint64_t>(rate)).c_str(), eta,
                 tty ? "   " : "\n");
  }
}

// Asks the daemon to warm each file (the warm xattr: no bytes cross to us) on `threads`
// threads (the daemon answers each once its blocks are in, so these many are in flight);
// returns the files that failed, with why.
std::vector<std::string> WarmFiles(const std::vector<std::string>& files, unsigned threads,
                                   WarmProgress* progress) {
  std::atomic<size_t> next{0};
  Mutex failed_mu;  // serializes failed
  std::vector<std::string> failed;
  std::vector<std::thread> workers;
  const size_t n_threads =
      std::min<size_t>(std::max(1u, threads), std::max<size_t>(1, files.size()));
  for (size_t t = 0; t < n_threads; ++t) {
    workers.emplace_back([&] {
      char buf[64];
      for (size_t i = next++; i < files.size(); i = next++) {
        const ssize_t n = ::getxattr(files[i].c_str(), kWarmXattr, buf, sizeof buf - 1);
        if (n < 0) {
          MutexLock lock(failed_mu);
          failed.push_back(files[i] + ": " + std::strerror(errno));
        } else {
          buf[n] = '\0';
          progress->bytes += std::strtoull(buf, nullptr, 10);
        }
        ++progress->done;
      }
    });
  }
  for (auto& w : workers) w.join();
  return failed;
}

// Asks the daemon to warm a directory's whole tree in one request (it fetches with the
// mount's full budget); its answer names what failed. Appends failures to `failed`, adds
// what it warmed to `progress` once done; false if the daemon does not warm directories.
bool WarmDir(const std::string& dir, WarmProgress* progress, std::vector<std::string>* failed) {
  std::string buf(1 << 16, '\0');
  const ssize_t n = ::getxattr(dir.c_str(), kWarmXattr, buf.data(), buf.size());
  if (n < 0 && errno == ENODATA) return false;
  if (n < 0) {
    failed->push_back(dir + ": " + std::strerror(errno));
    return true;
  }
  buf.resize(static_cast<size_t>(n));
  const nlohmann::json j = nlohmann::json::parse(buf, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    failed->push_back(dir + ": the daemon's answer is not JSON");
    return true;
  }
  progress->dir_files += j.value("files", uint64_t{0}) + j.value("failed", uint64_t{0});
  progress->dir_bytes += j.value("bytes", uint64_t{0});
  const nlohmann::json named = j.value("failures", nlohmann::json::array());
  for (const auto& f : named) {
    if (f.is_string()) failed->push_back(dir + "/" + f.get<std::string>());
  }
  const uint64_t count = j.value("failed", uint64_t{0});
  if (count > named.size()) {
    failed->push_back(dir + ": " + std::to_string(count - named.size()) + " more files failed");
  }
  return true;
}

// The daemon's directory-warm counters (stats "warm"): files done (warmed or failed), bytes.
std::pair<uint64_t, uint64_t> DaemonWarmCounters(const std::string& mnt) {
  nlohmann::json j;
  std::string error;
  if (!ReadStats(mnt, &j, &error) || !j.contains("warm")) return {0, 0};
  const auto& w = j["warm"];
  return {w.value("files", uint64_t{0}) + w.value("failed", uint64_t{0}),
          w.value("bytes", uint64_t{0})};
}

}  // namespace

int RunWarm(const std::string& mountpoint, const std::vector<std::string>& paths,
            const std::string& list_file, unsigned threads) {
  std::error_code ec;
  const std::string mnt = fs::weakly_canonical(mountpoint, ec).string();
  if (!IsTierfsMount(mnt)) return Fail("'" + mountpoint + "' is not a tierfs mount");
  auto targets = WarmTargetsOf(mnt, paths, list_file);
  if (!targets.ok()) return Fail(targets.status());

  WarmProgress progress;
  const bool tty = ::isatty(STDERR_FILENO);
  ProgressStop stop;
  // Directory warms report through the daemon's counters (a delta from now); per-file
  // warms count themselves.
  const auto base = DaemonWarmCounters(mnt);
  progress.daemon = [&mnt, base] {
    auto now = DaemonWarmCounters(mnt);
    return std::pair<uint64_t, uint64_t>{now.first - std::min(now.first, base.first),
                                         now.second - std::min(now.second, base.second)};
  };
  if (targets->dirs.empty()) progress.daemon = nullptr;
  std::thread shown([&] { ShowProgress(progress, targets->total(), tty, &stop); });
  std::vector<std::string> failed;
  std::vector<std::string> files = targets->files;
  for (const std::string& dir : targets->dirs) {
    if (!WarmDir(dir, &progress, &failed)) {
      // A daemon from before directory warms: every file on its own.
      ForEachFile(dir, [&files](const fs::path& f) { files.push_back(f.string()); });
    }
  }
  std::vector<std::string> file_failures = WarmFiles(files, threads, &progress);
  failed.insert(failed.end(), file_failures.begin(), file_failures.end());
  stop.Stop();
  shown.join();

  const double secs = progress.seconds();
  const uint64_t bytes = progress.bytes + progress.dir_bytes;
  const size_t done = progress.done + progress.dir_files;
  if (tty) std::fprintf(stderr, "\n");
  std::printf(
      "warmed %zu files, %s in %.1fs (%s/s)", done - std::min(done, failed.size()),
      FormatSize(bytes).c_str(), secs,
      FormatSize(static_cast<uint64_t>(secs > 0 ? static_cast<double>(bytes) / secs : 0)).c_str());
  if (!failed.empty()) {
    std::printf(", %zu failed:\n", failed.size());
    for (const auto& f : failed) std::printf("  %s\n", f.c_str());
    return 1;
  }
  std::printf("\n");
  return 0;
}

namespace {
// True while `pid` runs. A zombie (exited, not yet reaped by its parent, e.g. a
// supervisor that is itself waiting for us) has finished its work: not running.
bool ProcessRunning(pid_t pid) {
  if (pid <= 0 || ::kill(pid, 0) != 0) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  size_t paren = line.rfind(')');
  return paren == std::string::npos || paren + 2 >= line.size() || line[paren + 2] != 'Z';
}
}  // namespace

int RunUnmount(const std::string& mountpoint) {
  std::error_code ec;
  const std::string mnt = fs::weakly_canonical(mountpoint, ec).string();
  nlohmann::json j;
  std::string error;
  if (!ReadStats(mnt, &j, &error)) return Fail(error);
  const pid_t pid = static_cast<pid_t>(j.value("pid", 0));
  if (!RunFusermount3("-u", mnt)) return Fail("fusermount3 -u '" + mnt + "' failed");
  // Wait for the daemon to finish (it flushes the NVMe tier's queue and seals a segment).
  for (int i = 0; i < 600 && ProcessRunning(pid); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (ProcessRunning(pid))
    return Fail("daemon " + std::to_string(pid) + " did not exit within 60 s");
  return 0;
}

}  // namespace tierfs
