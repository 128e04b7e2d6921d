#include "fuse/packed_files.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <vector>

#include "metadata/archive.h"

namespace tierfs {
namespace {

constexpr uint64_t kRememberMax = 16 << 20;      // inflated members kept: each at most
constexpr uint64_t kRememberTotal = 64 << 20;    // and all together
constexpr uint64_t kZipHeaderSlack = 2 * 65535;  // a local header's name and extra field

// The version of an inflated member's object: NUL first (BlockCache::IsMade), then the
// fields, then the archive's own version (last: it is the only field that is text).
struct Inflated {
  uint64_t header = 0, packed_size = 0, size = 0, archive_size = 0;
  uint32_t crc32 = 0;
  std::string archive_version;
};

std::string InflatedVersion(const std::string& archive_version, const Packed& p, uint64_t size) {
  std::string v(1, '\0');
  for (uint64_t n : {p.offset, p.packed_size, size, p.archive_size, uint64_t{p.crc32}}) {
    v += std::to_string(n);
    v.push_back(' ');
  }
  return v + archive_version;
}

std::optional<Inflated> ParseInflated(std::string_view v) {
  if (v.empty() || v[0] != '\0') return std::nullopt;
  v.remove_prefix(1);
  uint64_t n[5];
  for (uint64_t& x : n) {
    const size_t sp = v.find(' ');
    if (sp == std::string_view::npos) return std::nullopt;
    auto r = std::from_chars(v.data(), v.data() + sp, x);
    if (r.ec != std::errc() || r.ptr != v.data() + sp) return std::nullopt;
    v.remove_prefix(sp + 1);
  }
  if (n[3] < n[0] || n[1] > n[3] - n[0] || n[4] > 0xffffffff) return std::nullopt;
  return Inflated{n[0], n[1], n[2], n[3], static_cast<uint32_t>(n[4]), std::string(v)};
}

}  // namespace

FileExtent ExtentOf(const Entry& e) {
  FileExtent x;
  x.size = e.size;
  if (!e.packed) {
    x.ref = e.ref();
    x.object_size = e.size;
    x.whole_object = true;
    return x;
  }
  const Packed& p = *e.packed;
  if (p.encrypted) {
    x.unreadable = "it is encrypted";
  } else if (p.method != kZipStored && p.method != kZipDeflated) {
    x.unreadable = "its compression method (" + std::to_string(p.method) + ") is not supported";
  }
  if (p.method == kZipDeflated && x.unreadable.empty()) {
    x.ref = ObjectRef{e.key, InflatedVersion(e.version, p, e.size)};
    x.object_size = e.size;
    x.whole_object = true;
    return x;
  }
  x.ref = e.ref();
  x.object_size = p.archive_size;
  if (p.zip_header) {
    x.zip_header = p.offset;
  } else {
    x.offset = p.offset;
  }
  return x;
}

WarmRange WarmRangeOf(const FileExtent& x) {
  if (x.zip_header) {
    return {*x.zip_header, kZipLocalHeaderSize + kZipHeaderSlack + x.size};
  }
  return {x.offset, x.size};
}

Result<size_t> MemberInflater::Read(const ObjectRef& ref, uint64_t offset, size_t length, char* buf,
                                    ReadVia* via) {
  auto m = ParseInflated(ref.version);
  if (!m) return Status::Io("not an inflated member's version");
  if (offset >= m->size) return size_t{0};
  length = static_cast<size_t>(std::min<uint64_t>(length, m->size - offset));
  {
    MutexLock lock(mu_);
    for (const Recent& r : recent_) {
      if (r.version == ref.version) {
        std::memcpy(buf, r.bytes->data() + offset, length);
        return length;
      }
    }
  }
  // The header and the data in one request; a second if the header's fields are longer.
  const ObjectRef archive{ref.key, m->archive_version};
  const uint64_t want =
      std::min<uint64_t>(m->archive_size - m->header, kZipLocalHeaderSize + 1024 + m->packed_size);
  std::string raw(static_cast<size_t>(want), '\0');
  auto n = store_.ReadRange(archive, m->header, raw.size(), raw.data(), via);
  if (!n.ok()) return n.status();
  raw.resize(*n);
  auto data = ResolveZipData(raw, m->header, m->packed_size, m->archive_size);
  if (!data.ok()) return data.status();
  uint64_t from = *data - m->header;
  if (from + m->packed_size > raw.size()) {
    std::string rest(static_cast<size_t>(m->packed_size), '\0');
    auto r = store_.ReadRange(archive, *data, rest.size(), rest.data(), via);
    if (!r.ok()) return r.status();
    if (*r != rest.size()) return Status::Io("short read of a zip member");
    raw = std::move(rest);
    from = 0;
  }
  const iovec in{raw.data() + from, static_cast<size_t>(m->packed_size)};
  if (m->size > kRememberMax) {  // only this block: a big member is inflated per block
    Status s = InflateRange({&in, 1}, m->size, m->crc32, offset, {buf, length});
    if (!s.ok()) return s;
    return length;
  }
  auto whole = std::make_shared<std::string>(static_cast<size_t>(m->size), '\0');
  Status s = InflateRange({&in, 1}, m->size, m->crc32, 0, {whole->data(), whole->size()});
  if (!s.ok()) return s;
  std::memcpy(buf, whole->data() + offset, length);
  MutexLock lock(mu_);
  recent_.push_back({ref.version, std::move(whole)});
  recent_bytes_ += m->size;
  while (recent_bytes_ > kRememberTotal) {
    recent_bytes_ -= recent_.front().bytes->size();
    recent_.erase(recent_.begin());
  }
  return length;
}

}  // namespace tierfs
