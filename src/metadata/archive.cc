#include "metadata/archive.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "common/names.h"

namespace tierfs {
namespace {

constexpr size_t kTarBlock = 512;
constexpr size_t kTarWindow = 4 << 20;        // bytes read at a time while walking headers
constexpr size_t kMaxTarMetaBytes = 1 << 20;  // a PAX record or GNU long name
constexpr size_t kZipTailBytes = 65535 + 22;  // the end record and the longest comment
constexpr size_t kZipCentralSize = 46;

uint16_t Le16(const char* p) {
  return static_cast<uint16_t>(static_cast<uint8_t>(p[0]) | static_cast<uint8_t>(p[1]) << 8);
}
uint32_t Le32(const char* p) {
  return static_cast<uint32_t>(Le16(p)) | static_cast<uint32_t>(Le16(p + 2)) << 16;
}
uint64_t Le64(const char* p) {
  return static_cast<uint64_t>(Le32(p)) | static_cast<uint64_t>(Le32(p + 4)) << 32;
}

// Keeps the first reason members were refused, and their count.
struct Refusals {
  ArchiveListing& out;
  void Skip(const std::string& why) {
    if (out.skipped++ == 0) out.problem = why;
  }
};

// "a/./b/" -> "a/b" (and *dir when it ended in '/'); nullopt with `why` for a name that
// could leave the archive's directory or is not a name at all. "" for the archive's root.
std::optional<std::string> NormalizePath(std::string_view raw, bool* dir, std::string* why) {
  if (raw.find('\0') != std::string_view::npos) {
    *why = "a member name holds a NUL byte";
    return std::nullopt;
  }
  if (!raw.empty() && raw.front() == '/') {
    *why = "a member has an absolute path";
    return std::nullopt;
  }
  *dir = !raw.empty() && raw.back() == '/';
  std::string out;
  size_t pos = 0;
  while (pos <= raw.size()) {
    size_t slash = raw.find('/', pos);
    if (slash == std::string_view::npos) slash = raw.size();
    std::string_view part = raw.substr(pos, slash - pos);
    pos = slash + 1;
    if (part.empty() || part == ".") continue;
    if (!IsSafeName(part)) {
      *why = part == ".." ? "a member name holds '..'" : "a member name is too long";
      return std::nullopt;
    }
    if (!out.empty()) out.push_back('/');
    out.append(part);
  }
  return out;
}

int Depth(std::string_view path) {
  return static_cast<int>(std::count(path.begin(), path.end(), '/'));
}

// Drops earlier members of a path given again (last wins, as extracting does), and
// files or links whose path another member needs as a directory.
void Finish(ArchiveListing& out) {
  Refusals refuse{out};
  std::unordered_map<std::string_view, size_t> last;
  for (size_t i = 0; i < out.members.size(); ++i) last[out.members[i].path] = i;
  std::unordered_set<std::string_view> dirs;
  for (const ArchiveMember& m : out.members) {
    std::string_view p = m.path;
    for (size_t s = p.find('/'); s != std::string_view::npos; s = p.find('/', s + 1)) {
      dirs.insert(p.substr(0, s));
    }
  }
  std::vector<char> keep(out.members.size(), 1);
  for (size_t i = 0; i < out.members.size(); ++i) {
    const ArchiveMember& m = out.members[i];
    if (last[m.path] != i) {
      keep[i] = 0;
      refuse.Skip("'" + m.path + "' appears more than once (the last one is kept)");
    } else if (m.type != ObjectType::kDirectory && dirs.count(m.path)) {
      keep[i] = 0;
      refuse.Skip("'" + m.path + "' is both a file and a directory");
    }
  }
  size_t w = 0;
  for (size_t i = 0; i < out.members.size(); ++i) {
    if (keep[i]) {
      if (w != i) out.members[w] = std::move(out.members[i]);
      ++w;
    }
  }
  out.members.resize(w);
}

// A member that passed the name checks; links checked against what came before.
void AddMember(ArchiveListing& out, ArchiveMember m, std::string_view raw_name,
               std::unordered_map<std::string, size_t>& files, uint64_t archive_size) {
  Refusals refuse{out};
  bool dir = false;
  std::string why;
  auto path = NormalizePath(raw_name, &dir, &why);
  if (!path) return refuse.Skip(why);
  if (path->empty()) return;  // the archive's own root ("./")
  m.path = std::move(*path);
  if (m.type == ObjectType::kSymlink && !IsContainedSymlink(m.link_target, Depth(m.path))) {
    return refuse.Skip("symlink '" + m.path + "' points out of the archive");
  }
  if (m.type == ObjectType::kFile &&
      (m.offset > archive_size || m.packed_size > archive_size - m.offset)) {
    return refuse.Skip("'" + m.path + "' runs past the end of the archive");
  }
  if (out.members.size() >= kMaxArchiveMembers) {
    return refuse.Skip("more than " + std::to_string(kMaxArchiveMembers) + " members");
  }
  if (m.type == ObjectType::kFile) {
    files[m.path] = out.members.size();
  } else {
    files.erase(m.path);
  }
  out.members.push_back(std::move(m));
}

// --- tar ---

// The archive seen through a window of up to kTarWindow bytes, read when needed.
class Window {
 public:
  Window(const RangeReader& read, uint64_t size, uint64_t* requests)
      : read_(read), size_(size), requests_(requests) {}

  // [offset, offset + length) of the archive, or fewer bytes at its end.
  Result<std::string_view> Get(uint64_t offset, size_t length) {
    if (offset >= size_) return std::string_view();
    length = static_cast<size_t>(std::min<uint64_t>(length, size_ - offset));
    if (offset < start_ || offset + length > start_ + buf_.size()) {
      const size_t want =
          static_cast<size_t>(std::min<uint64_t>(std::max(length, kTarWindow), size_ - offset));
      buf_.resize(want);
      ++*requests_;
      auto n = read_(offset, want, buf_.data());
      if (!n.ok()) return n.status();
      buf_.resize(*n);
      start_ = offset;
      if (*n < length) length = *n;
    }
    return std::string_view(buf_).substr(static_cast<size_t>(offset - start_), length);
  }

 private:
  const RangeReader& read_;
  uint64_t size_;
  uint64_t* requests_;
  uint64_t start_ = 0;
  std::string buf_;
};

// An octal field (NUL/space padded), or GNU base-256 (high bit of the first byte set).
std::optional<uint64_t> TarNumber(std::string_view f) {
  if (!f.empty() && (static_cast<uint8_t>(f[0]) & 0x80)) {
    if (static_cast<uint8_t>(f[0]) & 0x40) return std::nullopt;  // negative
    uint64_t v = static_cast<uint8_t>(f[0]) & 0x3f;
    for (size_t i = 1; i < f.size(); ++i) {
      if (v >> 56) return std::nullopt;
      v = v << 8 | static_cast<uint8_t>(f[i]);
    }
    return v;
  }
  size_t i = 0;
  while (i < f.size() && f[i] == ' ') ++i;
  uint64_t v = 0;
  bool any = false;
  for (; i < f.size() && f[i] >= '0' && f[i] <= '7'; ++i) {
    if (v >> 60) return std::nullopt;
    v = v * 8 + static_cast<uint64_t>(f[i] - '0');
    any = true;
  }
  for (; i < f.size(); ++i) {
    if (f[i] != ' ' && f[i] != '\0') return std::nullopt;
  }
  if (!any) return 0;
  return v;
}

std::string_view CString(std::string_view f) { return f.substr(0, f.find('\0')); }

bool TarChecksumOk(std::string_view h) {
  auto stored = TarNumber(h.substr(148, 8));
  if (!stored) return false;
  uint64_t unsigned_sum = 0;
  int64_t signed_sum = 0;
  for (size_t i = 0; i < kTarBlock; ++i) {
    const char c = (i >= 148 && i < 156) ? ' ' : h[i];
    unsigned_sum += static_cast<uint8_t>(c);
    signed_sum += static_cast<signed char>(c);
  }
  return *stored == unsigned_sum || static_cast<int64_t>(*stored) == signed_sum;
}

// PAX records "LEN key=value\n" that tierfs uses.
struct Pax {
  std::optional<std::string> path, linkpath;
  std::optional<uint64_t> size;
  std::optional<int64_t> mtime_ns;
};

bool ParsePax(std::string_view data, Pax* pax) {
  while (!data.empty()) {
    const size_t sp = data.find(' ');
    if (sp == std::string_view::npos || sp == 0 || sp > 20) return false;
    uint64_t len = 0;
    for (size_t i = 0; i < sp; ++i) {
      if (data[i] < '0' || data[i] > '9') return false;
      len = len * 10 + static_cast<uint64_t>(data[i] - '0');
    }
    if (len <= sp + 1 || len > data.size() || data[len - 1] != '\n') return false;
    std::string_view rec = data.substr(sp + 1, len - sp - 2);
    data.remove_prefix(len);
    const size_t eq = rec.find('=');
    if (eq == std::string_view::npos) return false;
    std::string_view key = rec.substr(0, eq), value = rec.substr(eq + 1);
    if (key == "path") {
      pax->path = std::string(value);
    } else if (key == "linkpath") {
      pax->linkpath = std::string(value);
    } else if (key == "size" || key == "mtime") {
      uint64_t v = 0, frac_ns = 0, scale = 100000000;
      size_t i = 0;
      for (; i < value.size() && value[i] >= '0' && value[i] <= '9'; ++i) {
        if (v > (UINT64_MAX - 9) / 10) return false;
        v = v * 10 + static_cast<uint64_t>(value[i] - '0');
      }
      if (i < value.size() && value[i] == '.' && key == "mtime") {
        for (++i; i < value.size() && value[i] >= '0' && value[i] <= '9'; ++i, scale /= 10) {
          frac_ns += static_cast<uint64_t>(value[i] - '0') * scale;
        }
      }
      if (i != value.size() || i == 0) return false;
      if (key == "size") {
        pax->size = v;
      } else if (v < 1ULL << 33) {
        pax->mtime_ns = static_cast<int64_t>(v * 1000000000ULL + frac_ns);
      }
    }
  }
  return true;
}

}  // namespace

Result<ArchiveListing> ListTar(const RangeReader& read, uint64_t size) {
  ArchiveListing out;
  Refusals refuse{out};
  Window win(read, size, &out.requests);
  std::unordered_map<std::string, size_t> files;  // path -> member, for hard links
  std::optional<std::string> long_name, long_link;
  Pax pax;
  uint64_t pos = 0;
  bool first = true;
  while (true) {
    if (pos + kTarBlock > size) {
      if (pos < size || first) refuse.Skip("the archive is truncated (no end marker)");
      break;
    }
    auto h_or = win.Get(pos, kTarBlock);
    if (!h_or.ok()) return h_or.status();
    std::string_view h = *h_or;
    if (h.size() < kTarBlock) {
      refuse.Skip("the archive is truncated (no end marker)");
      break;
    }
    if (std::all_of(h.begin(), h.end(), [](char c) { return c == '\0'; })) break;  // the end
    if (!TarChecksumOk(h)) {
      if (first) return Status::Invalid("not a tar archive (bad header checksum)");
      refuse.Skip("bad header checksum at offset " + std::to_string(pos) + "; the rest is skipped");
      break;
    }
    first = false;
    const char type = h[156];
    auto header_size = TarNumber(h.substr(124, 12));
    auto mtime = TarNumber(h.substr(136, 12));
    auto mode = TarNumber(h.substr(100, 8));
    if (!header_size || !mtime || !mode) {
      refuse.Skip("a header at offset " + std::to_string(pos) +
                  " has a bad number; the rest is skipped");
      break;
    }
    const uint64_t data = pos + kTarBlock;
    uint64_t member_size = *header_size;
    const bool meta = type == 'L' || type == 'K' || type == 'x' || type == 'g';
    if (!meta && pax.size) member_size = *pax.size;
    if (member_size > size - std::min(size, data)) {
      refuse.Skip("the archive is truncated (a member runs past its end)");
      break;
    }
    const uint64_t next = data + (member_size + kTarBlock - 1) / kTarBlock * kTarBlock;
    if (meta) {
      if (member_size > kMaxTarMetaBytes) {
        refuse.Skip("a long name or PAX header of " + std::to_string(member_size) + " bytes");
        break;
      }
      auto body = win.Get(data, static_cast<size_t>(member_size));
      if (!body.ok()) return body.status();
      if (type == 'L') {
        long_name = std::string(CString(*body));
      } else if (type == 'K') {
        long_link = std::string(CString(*body));
      } else if (type == 'x' && !ParsePax(*body, &pax)) {
        refuse.Skip("a bad PAX header at offset " + std::to_string(pos));
        pax = Pax{};
      }
      pos = next;
      continue;
    }
    std::string name;
    if (pax.path) {
      name = *pax.path;
    } else if (long_name) {
      name = *long_name;
    } else {
      name = std::string(CString(h.substr(0, 100)));
      const std::string_view magic = h.substr(257, 6);
      const std::string_view prefix = CString(h.substr(345, 155));
      if (magic == std::string_view("ustar\0", 6) && !prefix.empty()) {
        name = std::string(prefix) + "/" + name;
      }
    }
    std::string link = pax.linkpath ? *pax.linkpath
                       : long_link  ? *long_link
                                    : std::string(CString(h.substr(157, 100)));
    ArchiveMember m;
    m.mode = static_cast<uint32_t>(*mode & 07777);
    m.mtime_ns = pax.mtime_ns
                     ? *pax.mtime_ns
                     : static_cast<int64_t>(std::min<uint64_t>(*mtime, 1ULL << 33)) * 1000000000;
    switch (type) {
      case '0':
      case '\0':
      case '7':
        m.type = ObjectType::kFile;
        m.offset = data;
        m.size = m.packed_size = member_size;
        AddMember(out, std::move(m), name, files, size);
        break;
      case '5':
        m.type = ObjectType::kDirectory;
        AddMember(out, std::move(m), name, files, size);
        break;
      case '2':
        m.type = ObjectType::kSymlink;
        m.link_target = std::move(link);
        AddMember(out, std::move(m), name, files, size);
        break;
      case '1': {
        bool dir = false;
        std::string why;
        auto target = NormalizePath(link, &dir, &why);
        auto it = target ? files.find(*target) : files.end();
        if (it == files.end()) {
          refuse.Skip("hard link '" + name.substr(0, 200) +
                      "' names no earlier file of the archive");
          break;
        }
        const ArchiveMember& t = out.members[it->second];
        m.type = ObjectType::kFile;
        m.offset = t.offset;
        m.size = t.size;
        m.packed_size = t.packed_size;
        AddMember(out, std::move(m), name, files, size);
        break;
      }
      default:
        refuse.Skip(std::string("a member of type '") + (type >= 32 && type < 127 ? type : '?') +
                    "' (device, fifo or sparse file) is not served");
        break;
    }
    long_name.reset();
    long_link.reset();
    pax = Pax{};
    pos = next;
  }
  Finish(out);
  return out;
}

// --- zip ---

namespace {

int64_t DosTimeNs(uint16_t time, uint16_t date) {
  std::tm tm = {};
  tm.tm_year = (date >> 9) + 80;
  tm.tm_mon = std::max(((date >> 5) & 15) - 1, 0);
  tm.tm_mday = std::max(date & 31, 1);
  tm.tm_hour = time >> 11;
  tm.tm_min = (time >> 5) & 63;
  tm.tm_sec = (time & 31) * 2;
  return static_cast<int64_t>(timegm(&tm)) * 1000000000;
}

// Reads [offset, offset + length) whole, from `tail` (which starts at `tail_at`) when it is
// there, else with one request.
Result<std::string> ReadExact(const RangeReader& read, std::string_view tail, uint64_t tail_at,
                              uint64_t offset, uint64_t length, uint64_t* requests) {
  if (offset >= tail_at && offset + length <= tail_at + tail.size()) {
    return std::string(tail.substr(static_cast<size_t>(offset - tail_at), length));
  }
  std::string buf(static_cast<size_t>(length), '\0');
  ++*requests;
  auto n = read(offset, buf.size(), buf.data());
  if (!n.ok()) return n.status();
  if (*n != buf.size()) return Status::Io("the archive is shorter than its directory says");
  return buf;
}

}  // namespace

Result<ArchiveListing> ListZip(const RangeReader& read, uint64_t size) {
  ArchiveListing out;
  Refusals refuse{out};
  if (size < 22) return Status::Invalid("not a zip archive (too short)");
  const uint64_t tail_at = size - std::min<uint64_t>(size, kZipTailBytes);
  std::string tail(static_cast<size_t>(size - tail_at), '\0');
  ++out.requests;
  auto n = read(tail_at, tail.size(), tail.data());
  if (!n.ok()) return n.status();
  if (*n != tail.size()) return Status::Io("short read of the archive's end");
  // The end record: the last "PK\5\6" whose comment ends the archive, else the last one.
  std::optional<size_t> eocd;
  for (size_t i = tail.size() - 22 + 1; i-- > 0;) {
    if (Le32(tail.data() + i) != 0x06054b50) continue;
    if (!eocd) eocd = i;
    if (i + 22 + Le16(tail.data() + i + 20) == tail.size()) {
      eocd = i;
      break;
    }
  }
  if (!eocd) return Status::Invalid("not a zip archive (no end of central directory)");
  const char* e = tail.data() + *eocd;
  const uint64_t eocd_at = tail_at + *eocd;
  uint64_t entries = Le16(e + 10), cd_size = Le32(e + 12), cd_offset = Le32(e + 16);
  uint64_t cd_end = eocd_at;
  if (Le16(e + 4) != 0 || (Le16(e + 6) != 0 && Le16(e + 6) != 0xffff)) {
    return Status::Invalid("a zip archive split over several disks is not supported");
  }
  if (entries == 0xffff || cd_size == 0xffffffff || cd_offset == 0xffffffff) {
    if (eocd_at < 20) return Status::Invalid("zip64 archive without its locator");
    auto loc = ReadExact(read, tail, tail_at, eocd_at - 20, 20, &out.requests);
    if (!loc.ok()) return loc.status();
    if (Le32(loc->data()) != 0x07064b50)
      return Status::Invalid("zip64 archive without its locator");
    const uint64_t z64_at = Le64(loc->data() + 8);
    if (z64_at > eocd_at - 20 || eocd_at - 20 - z64_at < 56) {
      return Status::Invalid("zip64 end record out of place");
    }
    auto z = ReadExact(read, tail, tail_at, z64_at, 56, &out.requests);
    if (!z.ok()) return z.status();
    if (Le32(z->data()) != 0x06064b50) return Status::Invalid("bad zip64 end record");
    entries = Le64(z->data() + 32);
    cd_size = Le64(z->data() + 40);
    cd_offset = Le64(z->data() + 48);
    cd_end = z64_at;
  }
  if (cd_size > cd_end)
    return Status::Invalid("the zip central directory is larger than the archive");
  if (cd_size > kMaxZipDirectoryBytes) {
    return Status::Invalid("a zip central directory of " + std::to_string(cd_size) +
                           " bytes (more than " + std::to_string(kMaxZipDirectoryBytes) + ")");
  }
  if (entries > cd_size / kZipCentralSize || entries > kMaxArchiveMembers) {
    return Status::Invalid("the zip directory claims " + std::to_string(entries) +
                           " members, more than it can hold");
  }
  // Data in front of the archive (a self-extracting stub) shifts every offset.
  const uint64_t cd_at = cd_end - cd_size;
  if (cd_offset > cd_at) return Status::Invalid("the zip central directory is out of place");
  const uint64_t shift = cd_at - cd_offset;
  auto cd_or = ReadExact(read, tail, tail_at, cd_at, cd_size, &out.requests);
  if (!cd_or.ok()) return cd_or.status();
  const std::string& cd = *cd_or;
  std::unordered_map<std::string, size_t> files;
  size_t p = 0;
  for (uint64_t i = 0; i < entries; ++i) {
    if (p + kZipCentralSize > cd.size() || Le32(cd.data() + p) != 0x02014b50) {
      refuse.Skip("the zip central directory is damaged after " + std::to_string(i) + " members");
      break;
    }
    const char* c = cd.data() + p;
    const uint16_t made_by = Le16(c + 4), flags = Le16(c + 8), method = Le16(c + 10);
    const uint16_t name_len = Le16(c + 28), extra_len = Le16(c + 30), comment_len = Le16(c + 32);
    const uint32_t external = Le32(c + 38);
    if (p + kZipCentralSize + name_len + extra_len + comment_len > cd.size()) {
      refuse.Skip("the zip central directory is damaged after " + std::to_string(i) + " members");
      break;
    }
    std::string_view name(c + kZipCentralSize, name_len);
    std::string_view extra(c + kZipCentralSize + name_len, extra_len);
    uint64_t usize = Le32(c + 24), csize = Le32(c + 20), lho = Le32(c + 42);
    ArchiveMember m;
    m.mtime_ns = DosTimeNs(Le16(c + 12), Le16(c + 14));
    for (size_t x = 0; x + 4 <= extra.size();) {
      const uint16_t id = Le16(extra.data() + x), len = Le16(extra.data() + x + 2);
      if (x + 4 + len > extra.size()) break;
      const char* d = extra.data() + x + 4;
      if (id == 0x0001) {  // zip64: the fields that overflowed, in this order
        size_t at = 0;
        auto take = [&](uint64_t* v) {
          if (*v == 0xffffffff && at + 8 <= len) {
            *v = Le64(d + at);
            at += 8;
          }
        };
        take(&usize);
        take(&csize);
        take(&lho);
      } else if (id == 0x5455 && len >= 5 && (d[0] & 1)) {  // extended timestamp (UTC)
        m.mtime_ns = static_cast<int64_t>(static_cast<int32_t>(Le32(d + 1))) * 1000000000;
      }
      x += 4 + len;
    }
    p += kZipCentralSize + name_len + extra_len + comment_len;
    const bool unix_attrs = (made_by >> 8) == 3;
    const uint32_t st_mode = unix_attrs ? external >> 16 : 0;
    m.mode = st_mode & 07777;
    if ((st_mode & 0170000) == 0120000) {
      refuse.Skip("zip symlinks are not served");
      continue;
    }
    m.type = (!name.empty() && name.back() == '/') || (st_mode & 0170000) == 0040000
                 ? ObjectType::kDirectory
                 : ObjectType::kFile;
    if (m.type == ObjectType::kFile) {
      m.size = usize;
      m.packed_size = csize;
      m.offset = lho + shift;
      m.method = method;
      m.encrypted = flags & 1;
      m.crc32 = Le32(c + 16);
      if (method == kZipStored && usize != csize && !m.encrypted) {
        refuse.Skip("'" + std::string(name.substr(0, 200)) + "' is stored with two sizes");
        continue;
      }
      if (method == kZipDeflated && usize / kMaxDeflateRatio > csize + 64) {
        refuse.Skip("'" + std::string(name.substr(0, 200)) + "' claims to inflate " +
                    std::to_string(usize) + " bytes from " + std::to_string(csize));
        continue;
      }
      if (m.offset > size || size - m.offset < kZipLocalHeaderSize) {
        refuse.Skip("'" + std::string(name.substr(0, 200)) + "' has its header past the end");
        continue;
      }
    }
    AddMember(out, std::move(m), name, files, size);
  }
  Finish(out);
  return out;
}

ArchiveKind ArchiveKindOf(std::string_view name, unsigned enabled) {
  auto ends = [&](std::string_view suffix) {
    return name.size() > suffix.size() &&
           std::equal(suffix.rbegin(), suffix.rend(), name.rbegin(), [](char a, char b) {
             return a == std::tolower(static_cast<unsigned char>(b));
           });
  };
  if ((enabled & ArchiveMask(ArchiveKind::kTar)) && ends(".tar")) return ArchiveKind::kTar;
  if ((enabled & ArchiveMask(ArchiveKind::kZip)) && ends(".zip")) return ArchiveKind::kZip;
  return ArchiveKind::kNone;
}

Result<ArchiveListing> ListArchive(ArchiveKind kind, const RangeReader& read, uint64_t size) {
  switch (kind) {
    case ArchiveKind::kTar:
      return ListTar(read, size);
    case ArchiveKind::kZip:
      return ListZip(read, size);
    case ArchiveKind::kNone:
      break;
  }
  return Status::Invalid("not an archive");
}

Result<uint64_t> ResolveZipData(std::string_view header, uint64_t header_offset,
                                uint64_t packed_size, uint64_t archive_size) {
  if (header.size() < kZipLocalHeaderSize || Le32(header.data()) != 0x04034b50) {
    return Status::Io("no zip local header at offset " + std::to_string(header_offset));
  }
  const uint64_t data =
      header_offset + kZipLocalHeaderSize + Le16(header.data() + 26) + Le16(header.data() + 28);
  if (data > archive_size || packed_size > archive_size - data) {
    return Status::Io("a zip member at offset " + std::to_string(header_offset) +
                      " runs past the end of its archive");
  }
  return data;
}

Status InflateRange(std::span<const iovec> in, uint64_t out_size, uint32_t crc, uint64_t from,
                    std::span<char> out) {
  if (from > out_size || out.size() > out_size - from) {
    return Status::Io("a read past the end of a deflated member");
  }
  const uint64_t stop = from + out.size();
  const bool whole = stop == out_size;  // the stream is checked to its end
  z_stream z = {};
  if (inflateInit2(&z, -MAX_WBITS) != Z_OK) return Status::Io("zlib: cannot start inflating");
  int ret = Z_OK;
  uint64_t produced = 0;
  uLong sum = crc32(0L, Z_NULL, 0);
  char scratch[64 << 10];
  auto fail = [&](std::string why) {
    inflateEnd(&z);
    return Status::Io(std::move(why));
  };
  for (const iovec& v : in) {
    z.next_in = static_cast<Bytef*>(v.iov_base);
    z.avail_in = static_cast<uInt>(v.iov_len);
    while (z.avail_in > 0 && ret != Z_STREAM_END && (whole || produced < stop)) {
      z.next_out = reinterpret_cast<Bytef*>(scratch);
      z.avail_out = sizeof scratch;
      ret = inflate(&z, Z_NO_FLUSH);
      if (ret != Z_OK && ret != Z_STREAM_END) {
        return fail(std::string("the deflated member is damaged (zlib: ") +
                    (z.msg != nullptr ? z.msg : "error") + ")");
      }
      const size_t got = sizeof scratch - z.avail_out;
      if (got > out_size - produced) return fail("the deflated member inflates past its size");
      sum = crc32(sum, reinterpret_cast<const Bytef*>(scratch), static_cast<uInt>(got));
      // The part of [produced, produced + got) inside [from, stop).
      const uint64_t lo = std::max(produced, from), hi = std::min(produced + got, stop);
      if (lo < hi) {
        std::memcpy(out.data() + (lo - from), scratch + (lo - produced),
                    static_cast<size_t>(hi - lo));
      }
      produced += got;
    }
    if (ret == Z_STREAM_END || (!whole && produced >= stop)) break;
  }
  inflateEnd(&z);
  if (produced < stop || (whole && (ret != Z_STREAM_END || produced != out_size))) {
    return Status::Io("the deflated member ends early (" + std::to_string(produced) + " of " +
                      std::to_string(out_size) + " bytes)");
  }
  if (whole && static_cast<uint32_t>(sum) != crc) {
    return Status::Io("the inflated member fails its CRC-32 check");
  }
  return Status::Ok();
}

}  // namespace tierfs
