#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "common/checksum.h"
#include "common/log.h"
#include "common/mutex.h"
#include "common/names.h"
#include "metadata/archive.h"
#include "metadata/index.h"
#include "metadata/index_writer.h"
#include "ufs/store.h"

namespace tierfs {
namespace fs = std::filesystem;

uint64_t InodeForKey(std::string_view key) {
  if (key.empty()) return kRootIno;
  return Xxh3(key, /*seed=*/0x7469657266730001ULL);  // "tierfs" + 1
}

uint64_t InodeFor(std::string_view key, ObjectType type, std::string_view identity) {
  if (type == ObjectType::kDirectory || key.empty()) return InodeForKey(key);
  std::string k(key);
  k.push_back('\0');
  k.append(identity);
  return Xxh3(k, /*seed=*/0x7469657266730002ULL);
}

namespace {

// An existing path may only be replaced if it is an index (or nothing at all).
Status CheckReplaceable(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return Status::Ok();
  if (!fs::is_directory(path, ec)) {
    return Status(EEXIST, "index path '" + path + "' exists and is not a directory");
  }
  if (fs::is_empty(path, ec) || fs::exists(fs::path(path) / "CURRENT", ec)) return Status::Ok();
  return Status(
      EEXIST, "index path '" + path + "' exists and is not a tierfs index; refusing to replace it");
}

struct PendingDir {
  std::string key;
  uint64_t ino;
  int depth;
};

}  // namespace

namespace {

// Writes entries, choosing inode numbers and keeping the counts.
class EntrySink {
 public:
  EntrySink(IndexWriter& writer, IndexMeta& meta, const BuildOptions& options)
      : writer_(writer), meta_(meta), options_(options) {}

  // Records `e` (type, size, times, version, link target and parent set) as `name` under
  // its parent, with an inode number derived from `key`. An archive's file found while
  // walking is only noted, for AddArchives (and, with the suffix stripped, kept as a file).
  Status Add(Entry& e, std::string key, std::string_view name) {
    if (e.type == ObjectType::kFile && options_.archives) {
      const ArchiveOptions a = options_.archives(key);
      if (ArchiveKind kind = ArchiveKindOf(name, a.kinds); kind != ArchiveKind::kNone) {
        archives_.push_back({key, std::string(name), e, kind, a.strip_suffix});
        archives_.back().file.key = key;
        if (!a.strip_suffix) return Status::Ok();
      }
    }
    return Put(e, std::move(key), name);
  }

  // Lists every archive noted by Add (`options.archive_threads` at once) and writes each
  // as a directory of its members; one that cannot be listed stays a file, with one line.
  Status AddArchives(Store& store);

  void Skip() { ++meta_.skipped; }

 private:
  struct NotedArchive {
    std::string key, name;
    Entry file;
    ArchiveKind kind;
    bool strip_suffix;
  };

  Status WriteArchive(NotedArchive& a, Result<ArchiveListing>& listing);

  // Writes `e` under the inode derived from `key`; `object_key` (members: their archive's
  // key) is what reads fetch, `key` itself when empty.
  Status Put(Entry& e, std::string key, std::string_view name, std::string object_key = {}) {
    // Probe on the (astronomically rare) hash collision; 0 and 1 are reserved.
    std::string identity = e.type == ObjectType::kSymlink ? e.link_target : e.version;
    if (e.packed) identity += "@" + std::to_string(e.packed->offset);
    uint64_t ino = InodeFor(key, e.type, identity);
    while (true) {
      if (ino > kRootIno) {
        auto taken = writer_.InodeTaken(ino);
        if (!taken.ok()) return taken.status();
        if (!*taken) break;
      }
      ++ino;
    }
    e.ino = ino;
    e.key = object_key.empty() ? std::move(key) : std::move(object_key);
    TIERFS_RETURN_IF_ERROR(writer_.Put(e, name));
    switch (e.type) {
      case ObjectType::kDirectory:
        ++meta_.dirs;
        break;
      case ObjectType::kSymlink:
        ++meta_.symlinks;
        break;
      case ObjectType::kFile:
        ++meta_.files;
        meta_.bytes += e.size;
        // A member is never passed through (its backing file would be the archive's).
        if (e.size >= kLargeFileBytes && !e.packed)
          meta_.large_bytes += static_cast<int64_t>(e.size);
        for (IndexMeta::SourceCount& s : meta_.sources) {
          if (e.key.size() > s.prefix.size() && e.key.compare(0, s.prefix.size(), s.prefix) == 0 &&
              e.key[s.prefix.size()] == '/') {
            ++s.files;
            s.bytes += e.size;
            break;
          }
        }
        break;
    }
    if (options_.progress && ++seen_ % options_.progress_every == 0) options_.progress(meta_);
    return Status::Ok();
  }

  IndexWriter& writer_;
  IndexMeta& meta_;
  const BuildOptions& options_;
  uint64_t seen_ = 0;
  std::vector<NotedArchive> archives_;
};

Status EntrySink::AddArchives(Store& store) {
  if (archives_.empty()) return Status::Ok();
  Mutex mu;  // serializes the writer, meta_ and first_error (locals: not annotated)
  Status first_error;
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < archives_.size(); i = next++) {
      NotedArchive& a = archives_[i];
      const ObjectRef ref = a.file.ref();
      Result<ArchiveListing> listing = ListArchive(
          a.kind,
          [&](uint64_t offset, size_t length, char* buf) {
            return store.ReadRange(ref, offset, length, buf, nullptr);
          },
          a.file.size);
      MutexLock lock(mu);
      if (!first_error.ok()) return;
      if (Status s = WriteArchive(a, listing); !s.ok()) first_error = s;
    }
  };
  const size_t n = std::min<size_t>(std::max(1u, options_.archive_threads), archives_.size());
  std::vector<std::thread> threads;
  for (size_t t = 1; t < n; ++t) threads.emplace_back(work);
  work();
  for (std::thread& t : threads) t.join();
  archives_.clear();
  return first_error;
}

Status EntrySink::WriteArchive(NotedArchive& a, Result<ArchiveListing>& listing) {
  Entry& file = a.file;
  std::string dir_name = a.name;
  std::string dir_key = a.key;
  if (a.strip_suffix) {
    const size_t dot = dir_name.rfind('.');
    dir_key.resize(dir_key.size() - (dir_name.size() - dot));
    dir_name.resize(dot);
  }
  Status refused;
  if (!listing.ok()) {
    refused = listing.status();
  } else if (a.strip_suffix) {
    auto taken = writer_.NameTaken(file.parent, dir_name);
    if (!taken.ok()) return taken.status();
    if (*taken) refused = Status(EEXIST, "'" + dir_name + "' exists next to it");
  }
  if (!refused.ok()) {
    TLOG_WARN("index: archive '{}' is served as a file only: {}", a.key, refused.message());
    return a.strip_suffix ? Status::Ok() : Put(file, a.key, a.name);
  }
  ArchiveListing& l = *listing;
  if (l.skipped > 0) {
    TLOG_WARN("index: archive '{}': {} member(s) not served, first: {}", a.key, l.skipped,
              l.problem);
    meta_.skipped += l.skipped;
  }
  ++meta_.archives;
  meta_.members += l.members.size();
  // Directories by path in the archive ("" = the archive's own); explicit ones keep their
  // mode and time, implied ones get the archive's.
  std::map<std::string, const ArchiveMember*, std::less<>> explicit_dirs;
  for (const ArchiveMember& m : l.members) {
    if (m.type == ObjectType::kDirectory) explicit_dirs[m.path] = &m;
  }
  std::map<std::string, uint64_t, std::less<>> dirs;
  auto dir_entry = [&](const ArchiveMember* m, uint64_t parent) {
    Entry e;
    e.parent = parent;
    e.type = ObjectType::kDirectory;
    e.mode = m != nullptr && m->mode != 0 ? m->mode : 0555;
    e.mtime_ns = m != nullptr ? m->mtime_ns : file.mtime_ns;
    return e;
  };
  {
    Entry root = dir_entry(nullptr, file.parent);
    TIERFS_RETURN_IF_ERROR(Put(root, dir_key, dir_name));
    dirs[""] = root.ino;
  }
  // The inode of directory `path`, made (with its ancestors) when first needed.
  std::function<Result<uint64_t>(std::string_view)> ensure =
      [&](std::string_view path) -> Result<uint64_t> {
    if (auto it = dirs.find(path); it != dirs.end()) return it->second;
    const size_t slash = path.rfind('/');
    const std::string_view parent_path =
        slash == std::string_view::npos ? "" : path.substr(0, slash);
    auto parent = ensure(parent_path);
    if (!parent.ok()) return parent.status();
    auto it = explicit_dirs.find(path);
    Entry e = dir_entry(it == explicit_dirs.end() ? nullptr : it->second, *parent);
    TIERFS_RETURN_IF_ERROR(Put(e, dir_key + "/" + std::string(path), path.substr(slash + 1)));
    dirs.emplace(std::string(path), e.ino);
    return e.ino;
  };
  for (ArchiveMember& m : l.members) {
    if (m.type == ObjectType::kDirectory) {
      if (auto d = ensure(m.path); !d.ok()) return d.status();
      continue;
    }
    const size_t slash = m.path.rfind('/');
    auto parent =
        ensure(slash == std::string::npos ? "" : std::string_view(m.path).substr(0, slash));
    if (!parent.ok()) return parent.status();
    Entry e;
    e.parent = *parent;
    e.type = m.type;
    e.mtime_ns = m.mtime_ns;
    if (m.type == ObjectType::kSymlink) {
      e.mode = 0777;
      e.link_target = std::move(m.link_target);
    } else {
      e.mode = m.mode != 0 ? m.mode : 0444;
      e.size = m.size;
      e.version = file.version;
      Packed p;
      p.offset = m.offset;
      p.archive_size = file.size;
      p.packed_size = m.packed_size;
      p.method = m.method;
      p.zip_header = a.kind == ArchiveKind::kZip;
      p.encrypted = m.encrypted;
      p.crc32 = m.crc32;
      e.packed = p;
    }
    const std::string name = slash == std::string::npos ? m.path : m.path.substr(slash + 1);
    TIERFS_RETURN_IF_ERROR(Put(e, dir_key + "/" + m.path, name, a.key));
  }
  return Status::Ok();
}

Entry FromInfo(ObjectInfo& info, uint64_t parent) {
  Entry e;
  e.parent = parent;
  e.type = info.type;
  e.size = info.type == ObjectType::kDirectory ? 0 : info.size;
  e.mtime_ns = info.mtime_ns;
  e.version = std::move(info.version);
  e.link_target = std::move(info.link_target);
  switch (info.type) {
    case ObjectType::kDirectory:
      e.mode = info.mode ? info.mode : 0555;
      break;
    case ObjectType::kSymlink:
      e.mode = 0777;
      break;
    case ObjectType::kFile:
      e.mode = info.mode ? info.mode : 0444;
      break;
  }
  return e;
}

// One directory at a time, depth first: a List call per directory.
Status WalkTree(Store& store, EntrySink& out) {
  std::vector<PendingDir> stack{{"", kRootIno, 0}};
  while (!stack.empty()) {
    PendingDir dir = std::move(stack.back());
    stack.pop_back();
    Status listed = store.List(dir.key, [&](ObjectInfo&& info) -> Status {
      std::string key = JoinKey(dir.key, info.name);
      if (!IsSafeName(info.name)) {
        TLOG_WARN("index: skipping unsafe name in '{}' ({} bytes)", dir.key, info.name.size());
        out.Skip();
        return Status::Ok();
      }
      if (info.type == ObjectType::kSymlink && !IsContainedSymlink(info.link_target, dir.depth)) {
        TLOG_WARN("index: skipping symlink '{}': its target leaves the tree", key);
        out.Skip();
        return Status::Ok();
      }
      Entry e = FromInfo(info, dir.ino);
      TIERFS_RETURN_IF_ERROR(out.Add(e, key, info.name));
      if (e.is_dir()) stack.push_back({e.key, e.ino, dir.depth + 1});
      return Status::Ok();
    });
    if (!listed.ok()) return listed;
  }
  return Status::Ok();
}

// Every key in order from one flat listing; the directories are what the keys imply.
// Keys of one directory are contiguous in key order, so one path of open directories is
// all the state there is.
Status WalkFlat(Store& store, EntrySink& out) {
  struct Open {
    std::string name;
    uint64_t ino;
  };
  std::vector<Open> path;  // below the root
  std::string last;
  std::vector<std::string_view> parts;
  return store.ListFlat([&](ObjectInfo&& info) -> Status {
    const std::string key = std::move(info.name);
    if (!last.empty() && key <= last) {
      return Status::Io("the listing is not in key order ('" + key + "' after '" + last +
                        "'); build with --list-mode tree");
    }
    last = key;
    parts.clear();
    for (size_t start = 0;;) {
      const size_t slash = key.find('/', start);
      parts.push_back(std::string_view(key).substr(start, slash - start));
      if (slash == std::string::npos) break;
      start = slash + 1;
    }
    for (std::string_view part : parts) {
      if (!IsSafeName(part)) {
        TLOG_WARN("index: skipping key with an unsafe name ({} bytes)", key.size());
        out.Skip();
        return Status::Ok();
      }
    }
    size_t same = 0;
    while (same < path.size() && same + 1 < parts.size() && path[same].name == parts[same]) ++same;
    path.resize(same);
    for (size_t i = same; i + 1 < parts.size(); ++i) {
      ObjectInfo dir;
      dir.type = ObjectType::kDirectory;
      Entry e = FromInfo(dir, path.empty() ? kRootIno : path.back().ino);
      const size_t end = static_cast<size_t>(parts[i].data() + parts[i].size() - key.data());
      TIERFS_RETURN_IF_ERROR(out.Add(e, key.substr(0, end), parts[i]));
      path.push_back({std::string(parts[i]), e.ino});
    }
    info.name.clear();
    Entry e = FromInfo(info, path.empty() ? kRootIno : path.back().ino);
    return out.Add(e, key, parts.back());
  });
}

}  // namespace

Result<IndexMeta> BuildIndex(Store& store, const std::string& path, const BuildOptions& options) {
  TIERFS_RETURN_IF_ERROR(CheckReplaceable(path));
  auto root_info = store.Stat("");
  if (!root_info.ok()) return root_info.status();
  if (root_info->type != ObjectType::kDirectory) {
    return Status(ENOTDIR, "source " + store.Url() + " is not a directory");
  }

  const std::string tmp = path + ".building";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  if (fs::path parent = fs::path(path).parent_path(); !parent.empty()) {
    fs::create_directories(parent, ec);
  }
  auto writer_or = IndexWriter::Create(tmp);
  if (!writer_or.ok()) return writer_or.status();
  IndexWriter& writer = **writer_or;

  IndexMeta meta;
  meta.format_version = IndexFormatVersion();
  meta.source = store.Url();
  meta.archive_label = options.archive_label;
  meta.built_at = std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();

  Entry root;
  root.ino = kRootIno;
  root.parent = kRootIno;
  root.type = ObjectType::kDirectory;
  root.mode = root_info->mode ? root_info->mode : 0555;
  root.mtime_ns = root_info->mtime_ns;
  TIERFS_RETURN_IF_ERROR(writer.Put(root, ""));
  meta.dirs = 1;
  meta.large_bytes = 0;
  for (std::string& prefix : store.SourcePrefixes()) meta.sources.push_back({std::move(prefix)});

  EntrySink out(writer, meta, options);
  Status walked = Status(ENOTSUP, "");
  if (options.mode != ListMode::kTree) {
    walked = WalkFlat(store, out);
    if (walked.error() == ENOTSUP && options.mode == ListMode::kFlat) {
      walked = Status(ENOTSUP, store.Url() + " cannot be listed flat (only S3 can)");
    }
  }
  if (walked.error() == ENOTSUP && options.mode != ListMode::kFlat) walked = WalkTree(store, out);
  if (walked.ok()) walked = out.AddArchives(store);
  if (!walked.ok()) {
    fs::remove_all(tmp, ec);
    return Status(walked.error(), "index build: " + walked.message());
  }
  Status finished = writer.Finish(meta);
  if (!finished.ok()) {
    fs::remove_all(tmp, ec);
    return finished;
  }
  fs::remove_all(path, ec);
  fs::rename(tmp, path, ec);
  if (ec) return Status::FromErrno(ec.value(), "cannot move index into place at '" + path + "'");
  return meta;
}

}  // namespace tierfs
