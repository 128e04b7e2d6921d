#include "cli/index_commands.h"

#include <fcntl.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "cli/fail.h"
#include "cli/mount_command.h"
#include "cli/mount_options.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/size.h"
#include "common/xattrs.h"
#include "metadata/archive.h"
#include "metadata/artifact.h"
#include "metadata/index.h"
#include "ufs/manifest_store.h"

namespace tierfs {
namespace fs = std::filesystem;
namespace {

std::string FormatTime(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  char buf[64];
  std::tm tm;
  gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

// Writes the files of an index as a manifest (the inverse of --manifest).
Status WriteManifestFile(const std::string& index_path, const std::string& out_path) {
  auto index = OpenIndex(index_path);
  if (!index.ok()) return index.status();
  std::ofstream out(out_path, std::ios::trunc);
  if (!out) return Status::FromErrno(errno, "cannot write '" + out_path + "'");
  std::vector<uint64_t> dirs{kRootIno};
  // An archive's members name it once, as the object it is; with --archive-names strip it
  // is a file of its own too. Only archives are remembered.
  std::set<std::string> archives;
  const unsigned any = ArchiveMask(ArchiveKind::kTar) | ArchiveMask(ArchiveKind::kZip);
  while (!dirs.empty()) {
    uint64_t dir = dirs.back();
    dirs.pop_back();
    TIERFS_RETURN_IF_ERROR(
        (*index)->ReadDir(dir, 0, [&](std::string_view, const Entry& e, uint64_t) {
          if (e.is_dir()) dirs.push_back(e.ino);
          if (e.type != ObjectType::kFile) return true;
          const bool archive = e.packed || ArchiveKindOf(e.key, any) != ArchiveKind::kNone;
          if (!archive || archives.insert(e.key).second) {
            WriteManifestLine(out, e.key, e.packed ? e.packed->archive_size : e.size, e.version);
          }
          return true;
        }));
  }
  out.close();
  if (!out) return Status::Io("error writing '" + out_path + "'");
  return Status::Ok();
}

}  // namespace

int RunIndexBuild(MountConfig sources, const std::string& index_path,
                  const std::string& write_manifest, ListMode mode) {
  if (Status s = ResolveSources(&sources); !s.ok()) return Fail(s);
  auto store = OpenSources(sources, /*unreachable=*/nullptr);
  if (!store.ok()) return Fail(store.status());
  const bool tty = ::isatty(STDERR_FILENO);
  BuildOptions options = IndexBuildOptions(sources);
  options.mode = mode;
  options.progress = [tty](const IndexMeta& m) {
    std::fprintf(stderr, "%s  %llu files, %llu dirs, %s%s", tty ? "\r" : "",
                 static_cast<unsigned long long>(m.files), static_cast<unsigned long long>(m.dirs),
                 FormatSize(m.bytes).c_str(), tty ? "" : "\n");
  };
  auto start = std::chrono::steady_clock::now();
  auto meta = BuildIndex(**store, index_path, options);
  if (tty) std::fprintf(stderr, "\n");
  if (!meta.ok()) return Fail(meta.status());
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const uint64_t entries = meta->files + meta->dirs + meta->symlinks;
  std::printf("indexed %s: %llu files, %llu dirs, %llu symlinks, %s in %.2fs (%.0f entries/s)",
              meta->source.c_str(), static_cast<unsigned long long>(meta->files),
              static_cast<unsigned long long>(meta->dirs),
              static_cast<unsigned long long>(meta->symlinks), FormatSize(meta->bytes).c_str(),
              secs, secs > 0 ? static_cast<double>(entries) / secs : 0.0);
  if (meta->archives > 0) {
    std::printf("; %llu archives opened, %llu members",
                static_cast<unsigned long long>(meta->archives),
                static_cast<unsigned long long>(meta->members));
  }
  if (meta->skipped)
    std::printf(" (%llu unsafe entries skipped)", static_cast<unsigned long long>(meta->skipped));
  std::printf("\n");
  if (!write_manifest.empty()) {
    if (Status s = WriteManifestFile(index_path, write_manifest); !s.ok()) return Fail(s);
    std::printf("manifest written to %s\n", write_manifest.c_str());
  }
  return 0;
}

int RunIndexStat(const std::string& index_path, bool json) {
  auto index = OpenIndex(index_path);
  if (!index.ok()) return Fail(index.status());
  const IndexMeta& m = (*index)->Meta();
  if (json) {
    nlohmann::json j = {{"source", m.source},
                        {"built_at", m.built_at},
                        {"files", m.files},
                        {"dirs", m.dirs},
                        {"symlinks", m.symlinks},
                        {"bytes", m.bytes},
                        {"skipped", m.skipped},
                        {"format_version", m.format_version},
                        {"archives", m.archives},
                        {"archive_members", m.members},
                        {"archive_options", m.archive_label}};
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("source:    %s\n", m.source.c_str());
  std::printf("built at:  %s\n", FormatTime(m.built_at).c_str());
  std::printf("files:     %llu\n", static_cast<unsigned long long>(m.files));
  std::printf("dirs:      %llu\n", static_cast<unsigned long long>(m.dirs));
  std::printf("symlinks:  %llu\n", static_cast<unsigned long long>(m.symlinks));
  std::printf("bytes:     %llu (%s)\n", static_cast<unsigned long long>(m.bytes),
              FormatSize(m.bytes).c_str());
  std::printf("skipped:   %llu\n", static_cast<unsigned long long>(m.skipped));
  if (!m.archive_label.empty()) {
    std::printf("archives:  %llu (%s), %llu members\n", static_cast<unsigned long long>(m.archives),
                m.archive_label.c_str(), static_cast<unsigned long long>(m.members));
  }
  std::printf("format:    %d\n", m.format_version);
  return 0;
}

namespace {

// The pointer a destination holds now, if any (an absent or unreadable one is none).
std::optional<IndexPointer> ReadPointer(Store* s3, const std::string& dir) {
  std::string text;
  if (s3 != nullptr) {
    auto fetched = s3->Fetch(kPointerName, "", 1 << 16);
    if (!fetched.ok()) return std::nullopt;
    text = std::move(fetched->body);
  } else {
    std::ifstream f(dir + "/" + kPointerName);
    text.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  auto p = DecodePointer(text);
  if (!p.ok()) return std::nullopt;
  return *p;
}

}  // namespace

int RunIndexPublish(const std::string& index_path, const std::string& dest,
                    const StoreOptions& so) {
  auto index = OpenIndex(index_path);
  if (!index.ok()) return Fail(index.status());
  const IndexMeta meta = (*index)->Meta();
  index->reset();
  const bool to_s3 = dest.rfind("s3://", 0) == 0;
  if (!to_s3 && dest.find("://") != std::string::npos) {
    return Fail(
        "publish to a local directory (served by any web server) or s3://bucket/prefix, "
        "not '" +
        dest + "'");
  }
  std::unique_ptr<Store> s3;
  std::string dir = dest;
  std::error_code ec;
  if (to_s3) {
    auto store = OpenStore(dest, so);
    if (!store.ok()) return Fail(store.status());
    s3 = std::move(*store);
    char tmpl[] = "/tmp/tierfs-publish-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr)
      return Fail(Status::FromErrno(errno, "cannot make a temporary directory"));
    dir = tmpl;
  } else {
    fs::create_directories(dir, ec);
    if (ec) return Fail("cannot create '" + dir + "': " + ec.message());
  }
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      if (!dir.empty()) fs::remove_all(dir, ec);
    }
  } cleanup{to_s3 ? dir : ""};

  auto packed = PackIndex(index_path, dir);
  if (!packed.ok()) return Fail(packed.status());
  const std::string where = to_s3 ? dest : fs::absolute(dest).lexically_normal().string();
  const std::string id = packed->sha256.substr(0, 12);
  if (auto held = ReadPointer(s3.get(), dir); held && held->sha256 == packed->sha256) {
    std::printf("revision %s is already published at %s/%s; nothing to do\n", id.c_str(),
                where.c_str(), kPointerName);
    return 0;
  }
  const std::string artifact = ArtifactName(packed->sha256);
  if (to_s3) {
    auto there = s3->Stat(artifact);
    if (!there.ok() || there->size != packed->size) {
      if (Status s = s3->PutFile(artifact, packed->path); !s.ok()) return Fail(s);
    }
  }
  IndexPointer pointer;
  pointer.sha256 = packed->sha256;
  pointer.size = packed->size;
  pointer.source = meta.source;
  pointer.built_at = meta.built_at;
  pointer.published_at = UnixNow();
  pointer.files = meta.files;
  pointer.dirs = meta.dirs;
  pointer.bytes = meta.bytes;
  const std::string pointer_path = dir + "/" + kPointerName;
  if (Status s = WriteFileAtomically(pointer_path, EncodePointer(pointer)); !s.ok()) {
    return Fail(s);
  }
  if (to_s3) {
    if (Status s = s3->PutFile(kPointerName, pointer_path); !s.ok()) return Fail(s);
  }
  std::printf("published revision %s of %s (%llu files, %s index) at %s/%s\n", id.c_str(),
              meta.source.c_str(), static_cast<unsigned long long>(meta.files),
              FormatSize(packed->size).c_str(), where.c_str(), artifact.c_str());
  std::printf("%s/%s names it; earlier artifacts stay until removed\n", where.c_str(),
              kPointerName);
  return 0;
}

int RunIndexRefresh(const std::string& mountpoint) {
  if (!IsTierfsMount(mountpoint)) return Fail("'" + mountpoint + "' is not a tierfs mount");
  std::string buf(4096, '\0');
  const ssize_t n = ::getxattr(mountpoint.c_str(), kRefreshXattr, buf.data(), buf.size());
  if (n < 0) {
    if (errno == EPERM)
      return Fail("only root or the user who mounted '" + mountpoint + "' may refresh it");
    return Fail("cannot refresh '" + mountpoint + "': " + std::strerror(errno));
  }
  buf.resize(static_cast<size_t>(n));
  if (buf.rfind("failed: ", 0) == 0) return Fail("index refresh " + buf);
  std::printf("%s\n", buf.c_str());
  return 0;
}

}  // namespace tierfs
