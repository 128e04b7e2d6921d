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

  uint64_t seen = 0;
  std::vector<PendingDir> stack{{"", kRootIno, 0}};
  while (!stack.empty()) {
    PendingDir dir = std::move(stack.back());
    stack.pop_back();
    Status listed = store.List(dir.key, [&](ObjectInfo&& info) -> Status {
      std::string key = JoinKey(dir.key, info.name);
      if (!IsSafeName(info.name)) {
        TLOG_WARN("index: skipping unsafe name in '{}' ({} bytes)", dir.key, info.name.size());
        ++meta.skipped;
        return Status::Ok();
      }
      if (info.type == ObjectType::kSymlink && !IsContainedSymlink(info.link_target, dir.depth)) {
        TLOG_WARN("index: skipping symlink '{}': its target leaves the tree", key);
        ++meta.skipped;
        return Status::Ok();
      }
      Entry e;
      e.parent = dir.ino;
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
      // Probe on the (astronomically rare) hash collision; 0 and 1 are reserved.
      uint64_t ino =
          InodeFor(key, e.type, e.type == ObjectType::kSymlink ? e.link_target : e.version);
      while (true) {
        if (ino > kRootIno) {
          auto taken = writer.InodeTaken(ino);
          if (!taken.ok()) return taken.status();
          if (!*taken) break;
        }
        ++ino;
      }
      e.ino = ino;
      e.key = key;
      TIERFS_RETURN_IF_ERROR(writer.Put(e, info.name));
      switch (e.type) {
        case ObjectType::kDirectory:
          ++meta.dirs;
          stack.push_back({std::move(key), e.ino, dir.depth + 1});
          break;
        case ObjectType::kSymlink:
          ++meta.symlinks;
          break;
        case ObjectType::kFile:
          ++meta.files;
          meta.bytes += e.size;
          break;
      }
      if (options.progress && ++seen % options.progress_every == 0) options.progress(meta);
      return Status::Ok();
    });
    if (!listed.ok()) {
      fs::remove_all(tmp, ec);
      return Status(listed.error(), "index build: " + listed.message());
    }
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
