#include <chrono>
#include <filesystem>
#include <vector>

#include "common/checksum.h"
#include "common/log.h"
#include "common/names.h"
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
  // its parent, with an inode number derived from `key`.
  Status Add(Entry& e, std::string key, std::string_view name) {
    // Probe on the (astronomically rare) hash collision; 0 and 1 are reserved.
    uint64_t ino =
        InodeFor(key, e.type, e.type == ObjectType::kSymlink ? e.link_target : e.version);
    while (true) {
      if (ino > kRootIno) {
        auto taken = writer_.InodeTaken(ino);
        if (!taken.ok()) return taken.status();
        if (!*taken) break;
      }
      ++ino;
    }
    e.ino = ino;
    e.key = std::move(key);
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
        if (e.size >= kLargeFileBytes) meta_.large_bytes += static_cast<int64_t>(e.size);
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

  void Skip() { ++meta_.skipped; }

 private:
  IndexWriter& writer_;
  IndexMeta& meta_;
  const BuildOptions& options_;
  uint64_t seen_ = 0;
};

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
