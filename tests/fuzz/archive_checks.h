// What a listing of any input must hold (tar_fuzz, zip_fuzz): names that stay inside the
// archive's directory, ranges inside the archive, links that stay inside it; and reading a
// member (a zip member's header, inflating it) never runs past its bytes.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/names.h"
#include "metadata/archive.h"

namespace tierfs {

inline RangeReader MemoryReader(const std::string& bytes) {
  return [&bytes](uint64_t offset, size_t length, char* buf) -> Result<size_t> {
    if (offset >= bytes.size()) return size_t{0};
    const size_t n = std::min<size_t>(length, bytes.size() - offset);
    std::memcpy(buf, bytes.data() + offset, n);
    return n;
  };
}

inline void CheckListing(const ArchiveListing& l, const std::string& bytes) {
  if (l.members.size() > kMaxArchiveMembers) std::abort();
  for (const ArchiveMember& m : l.members) {
    if (m.path.empty() || m.path.front() == '/' || m.path.back() == '/') std::abort();
    int depth = -1;
    for (size_t at = 0; at <= m.path.size();) {
      const size_t slash = std::min(m.path.find('/', at), m.path.size());
      if (!IsSafeName(std::string_view(m.path).substr(at, slash - at))) std::abort();
      ++depth;
      at = slash + 1;
    }
    if (m.type == ObjectType::kSymlink && !IsContainedSymlink(m.link_target, depth)) std::abort();
    if (m.type != ObjectType::kFile) continue;
    if (m.offset > bytes.size() || m.packed_size > bytes.size() - m.offset) std::abort();
    if (m.method != kZipDeflated || m.encrypted) continue;
    // A zip member: its header gives a data range inside the archive, and inflating it
    // (small ones) either yields exactly its size or fails.
    auto data = ResolveZipData(std::string_view(bytes).substr(m.offset, kZipLocalHeaderSize),
                               m.offset, m.packed_size, bytes.size());
    if (!data.ok()) continue;
    if (*data + m.packed_size > bytes.size()) std::abort();
    if (m.size > (1 << 20)) continue;
    iovec in{const_cast<char*>(bytes.data() + *data), static_cast<size_t>(m.packed_size)};
    std::string out(static_cast<size_t>(m.size), '\0');
    (void)InflateRange({&in, 1}, m.size, m.crc32, 0, {out.data(), out.size()});
  }
}

}  // namespace tierfs
