#include "metadata/artifact.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "common/fd.h"
#include "common/mutex.h"
#include "common/sha256.h"
#include "ufs/store.h"

namespace tierfs {
namespace fs = std::filesystem;
namespace {

constexpr std::string_view kMagic = "TIERFS-INDEX 1\n";
constexpr uint32_t kMaxFiles = 1 << 16;

bool IsPlainFileName(std::string_view name) {
  if (name.empty() || name.size() > 255 || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

// Files of a RocksDB directory that are not part of the index itself.
bool IsRuntimeFile(const std::string& name) {
  return name == "LOCK" || name == "LOG" || name.rfind("LOG.old", 0) == 0;
}

template <typename T>
void PutBe(std::string* out, T v) {
  for (int i = sizeof(T) - 1; i >= 0; --i) out->push_back(static_cast<char>((v >> (i * 8)) & 0xff));
}

}  // namespace

Status WriteFileAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) return Status::FromErrno(errno, "cannot write '" + tmp + "'");
  TIERFS_RETURN_IF_ERROR(WriteFull(fd.get(), text.data(), text.size(), tmp));
  if (::fsync(fd.get()) != 0) return Status::FromErrno(errno, "cannot sync '" + tmp + "'");
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return Status::FromErrno(errno, "cannot write '" + path + "'");
  }
  return Status::Ok();
}

std::string ArtifactName(const std::string& sha256) { return sha256 + kArtifactSuffix; }

std::string EncodePointer(const IndexPointer& p) {
  nlohmann::json j = {{"tierfs_index", 1},
                      {"artifact", ArtifactName(p.sha256)},
                      {"sha256", p.sha256},
                      {"size", p.size},
                      {"source", p.source},
                      {"built_at", p.built_at},
                      {"published_at", p.published_at},
                      {"files", p.files},
                      {"dirs", p.dirs},
                      {"bytes", p.bytes}};
  return j.dump(2) + "\n";
}

Result<IndexPointer> DecodePointer(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Status::Io("index pointer is not JSON");
  IndexPointer p;
  try {
    if (j.at("tierfs_index").get<int>() != 1) {
      return Status::Invalid("index pointer has format " + j.at("tierfs_index").dump() +
                             ", this tierfs reads 1");
    }
    p.sha256 = j.at("sha256").get<std::string>();
    p.size = j.at("size").get<uint64_t>();
    p.source = j.at("source").get<std::string>();
    p.built_at = j.value("built_at", int64_t{0});
    p.published_at = j.value("published_at", int64_t{0});
    p.files = j.value("files", uint64_t{0});
    p.dirs = j.value("dirs", uint64_t{0});
    p.bytes = j.value("bytes", uint64_t{0});
    if (j.at("artifact").get<std::string>() != ArtifactName(p.sha256)) {
      return Status::Io("index pointer names an artifact that is not its digest");
    }
  } catch (const std::exception&) {
    return Status::Io("index pointer lacks a field or has one of the wrong type");
  }
  if (!IsSha256Hex(p.sha256)) return Status::Io("index pointer has no valid sha256");
  return p;
}

Result<PackedIndex> PackIndex(const std::string& index_dir, const std::string& out_dir) {
  std::error_code ec;
  if (!fs::exists(fs::path(index_dir) / "CURRENT", ec)) {
    return Status::Invalid("'" + index_dir + "' is not an index directory");
  }
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(index_dir, ec)) {
    std::string name = e.path().filename().string();
    if (!e.is_regular_file(ec) || IsRuntimeFile(name)) continue;
    if (!IsPlainFileName(name)) return Status::Invalid("unexpected file '" + name + "' in index");
    names.push_back(std::move(name));
  }
  if (ec) return Status(ec.value(), "cannot list '" + index_dir + "': " + ec.message());
  std::sort(names.begin(), names.end());

  const std::string tmp = out_dir + "/.packing-" + std::to_string(::getpid());
  UniqueFd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (out.get() < 0) return Status::FromErrno(errno, "cannot create '" + tmp + "'");
  Sha256 sha;
  uint64_t total = 0;
  auto emit = [&](const char* p, size_t n) -> Status {
    sha.Update(p, n);
    total += n;
    return WriteFull(out.get(), p, n, tmp);
  };
  auto fail = [&](Status s) {
    fs::remove(tmp, ec);
    return s;
  };
  std::string header(kMagic);
  PutBe<uint32_t>(&header, static_cast<uint32_t>(names.size()));
  if (Status s = emit(header.data(), header.size()); !s.ok()) return fail(s);
  std::vector<char> buf(1 << 20);
  for (const std::string& name : names) {
    const std::string path = index_dir + "/" + name;
    UniqueFd in(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (in.get() < 0) return fail(Status::FromErrno(errno, "cannot open '" + path + "'"));
    const uint64_t size = fs::file_size(path, ec);
    if (ec) return fail(Status(ec.value(), "cannot stat '" + path + "'"));
    std::string rec;
    PutBe<uint16_t>(&rec, static_cast<uint16_t>(name.size()));
    rec += name;
    PutBe<uint64_t>(&rec, size);
    if (Status s = emit(rec.data(), rec.size()); !s.ok()) return fail(s);
    for (uint64_t left = size; left > 0;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(left, buf.size()));
      if (Status s = ReadExact(in.get(), buf.data(), n, path); !s.ok()) return fail(s);
      if (Status s = emit(buf.data(), n); !s.ok()) return fail(s);
      left -= n;
    }
  }
  if (::fsync(out.get()) != 0) return fail(Status::FromErrno(errno, "cannot sync '" + tmp + "'"));
  PackedIndex packed;
  packed.sha256 = sha.HexDigest();
  packed.size = total;
  packed.path = out_dir + "/" + ArtifactName(packed.sha256);
  // An artifact there already is kept only if it is whole (not one damaged in place).
  if (fs::exists(packed.path, ec) && fs::file_size(packed.path, ec) == total) {
    if (auto there = Sha256OfFile(packed.path); there.ok() && *there == packed.sha256) {
      packed.existed = true;
      fs::remove(tmp, ec);
      return packed;
    }
  }
  fs::rename(tmp, packed.path, ec);
  if (ec) return fail(Status(ec.value(), "cannot rename to '" + packed.path + "'"));
  return packed;
}

Status UnpackIndex(const std::string& artifact_path, const std::string& dest_dir) {
  std::error_code ec;
  if (fs::exists(dest_dir, ec)) return Status(EEXIST, "'" + dest_dir + "' exists");
  const std::string tmp = dest_dir + ".unpacking";
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) return Status(ec.value(), "cannot create '" + tmp + "': " + ec.message());
  auto fail = [&](Status s) {
    fs::remove_all(tmp, ec);
    return s;
  };
  UniqueFd in(::open(artifact_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.get() < 0) return fail(Status::FromErrno(errno, "cannot open '" + artifact_path + "'"));
  const uint64_t artifact_size = fs::file_size(artifact_path, ec);
  auto corrupt = [&](const std::string& why) {
    return fail(Status::Io("index artifact '" + artifact_path + "' is corrupt: " + why));
  };
  char head[kMagic.size() + 4];
  if (Status s = ReadExact(in.get(), head, sizeof head, artifact_path); !s.ok()) return fail(s);
  if (std::string_view(head, kMagic.size()) != kMagic) return corrupt("not a tierfs index");
  uint32_t count = 0;
  for (size_t i = 0; i < 4; ++i)
    count = (count << 8) | static_cast<uint8_t>(head[kMagic.size() + i]);
  if (count == 0 || count > kMaxFiles) return corrupt("bad file count");
  uint64_t pos = sizeof head;
  std::vector<char> buf(1 << 20);
  for (uint32_t f = 0; f < count; ++f) {
    char len_be[2];
    if (Status s = ReadExact(in.get(), len_be, 2, artifact_path); !s.ok()) return fail(s);
    const size_t name_len =
        (static_cast<uint8_t>(len_be[0]) << 8) | static_cast<uint8_t>(len_be[1]);
    std::string name(name_len, '\0');
    if (Status s = ReadExact(in.get(), name.data(), name_len, artifact_path); !s.ok())
      return fail(s);
    if (!IsPlainFileName(name) || IsRuntimeFile(name)) return corrupt("bad file name");
    char size_be[8];
    if (Status s = ReadExact(in.get(), size_be, 8, artifact_path); !s.ok()) return fail(s);
    uint64_t size = 0;
    for (char c : size_be) size = (size << 8) | static_cast<uint8_t>(c);
    pos += 2 + name_len + 8;
    if (size > artifact_size - std::min(pos, artifact_size)) return corrupt("size past the end");
    const std::string path = tmp + "/" + name;
    UniqueFd out(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644));
    if (out.get() < 0) {
      if (errno == EEXIST) return corrupt("file '" + name + "' twice");
      return fail(Status::FromErrno(errno, "cannot create '" + path + "'"));
    }
    for (uint64_t left = size; left > 0;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(left, buf.size()));
      if (Status s = ReadExact(in.get(), buf.data(), n, artifact_path); !s.ok()) return fail(s);
      if (Status s = WriteFull(out.get(), buf.data(), n, path); !s.ok()) return fail(s);
      left -= n;
    }
    pos += size;
    if (::fsync(out.get()) != 0)
      return fail(Status::FromErrno(errno, "cannot sync '" + path + "'"));
  }
  if (pos != artifact_size) return corrupt("trailing bytes");
  fs::rename(tmp, dest_dir, ec);
  if (ec) return fail(Status(ec.value(), "cannot rename to '" + dest_dir + "': " + ec.message()));
  return Status::Ok();
}

Status DownloadArtifact(Store& store, const IndexPointer& pointer, uint64_t chunk,
                        const std::string& dest_dir) {
  constexpr int kStreams = 4;
  const std::string name = ArtifactName(pointer.sha256);
  const std::string download = dest_dir + ".download";
  std::error_code ec;
  auto drop = [&](Status s) {
    fs::remove(download, ec);
    return s;
  };
  UniqueFd fd(::open(download.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd.valid()) return Status::FromErrno(errno, "cannot create '" + download + "'");
  const uint64_t chunks = (pointer.size + chunk - 1) / chunk;
  std::atomic<uint64_t> next{0};
  Mutex error_mu;
  Status error = Status::Ok();
  auto worker = [&] {
    std::vector<char> buf(chunk);
    for (uint64_t c = next++; c < chunks; c = next++) {
      const uint64_t off = c * chunk;
      const size_t len = static_cast<size_t>(std::min<uint64_t>(chunk, pointer.size - off));
      // No HEAD first and no version to match: the name is the content's digest, checked
      // below, and the pointer gave the size.
      auto n = store.ReadRange(ObjectRef{name, ""}, off, len, buf.data(), nullptr);
      Status s = !n.ok()     ? n.status()
                 : *n != len ? Status::Io("artifact " + name + " ended early")
                             : PwriteFull(fd.get(), buf.data(), len, off, download);
      if (!s.ok()) {
        MutexLock lock(error_mu);
        if (error.ok()) error = s;
        next = chunks;  // the others stop too
        return;
      }
    }
  };
  std::vector<std::thread> threads;
  threads.reserve(kStreams);
  for (int i = 0; i < kStreams; ++i) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  if (!error.ok()) return drop(error);
  if (::fsync(fd.get()) != 0) {
    return drop(Status::FromErrno(errno, "cannot sync '" + download + "'"));
  }
  fd.reset();
  auto digest = Sha256OfFile(download);
  if (!digest.ok()) return drop(digest.status());
  if (*digest != pointer.sha256) {
    return drop(Status::Io("artifact " + name + " is corrupt: its sha256 is " + *digest));
  }
  return drop(UnpackIndex(download, dest_dir));
}

}  // namespace tierfs
