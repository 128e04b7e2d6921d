#include "metadata/entry.h"

namespace tierfs {
namespace {

constexpr uint8_t kEntryFormat = 1;
constexpr uint8_t kPackedEntryFormat = 2;  // format 1 followed by the Packed fields

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void PutString(std::string* out, std::string_view s) {
  PutVarint(out, s.size());
  out->append(s);
}

bool GetVarint(std::string_view* in, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift <= 63 && !in->empty(); shift += 7) {
    uint8_t byte = static_cast<uint8_t>(in->front());
    in->remove_prefix(1);
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}

bool GetString(std::string_view* in, std::string* s) {
  uint64_t n;
  if (!GetVarint(in, &n) || n > in->size()) return false;
  s->assign(in->data(), n);
  in->remove_prefix(n);
  return true;
}

}  // namespace

std::string EncodeEntry(const Entry& e) {
  std::string out;
  out.reserve(32 + e.key.size() + e.version.size() + e.link_target.size());
  out.push_back(static_cast<char>(e.packed ? kPackedEntryFormat : kEntryFormat));
  out.push_back(static_cast<char>(e.type));
  PutVarint(&out, e.parent);
  PutVarint(&out, e.mode);
  PutVarint(&out, e.size);
  PutVarint(&out, static_cast<uint64_t>(e.mtime_ns));
  PutString(&out, e.version);
  PutString(&out, e.key);
  PutString(&out, e.link_target);
  if (const auto& p = e.packed) {
    PutVarint(&out, p->offset);
    PutVarint(&out, p->archive_size);
    PutVarint(&out, p->packed_size);
    PutVarint(&out, p->method);
    PutVarint(&out, (p->zip_header ? 1u : 0u) | (p->encrypted ? 2u : 0u));
    PutVarint(&out, p->crc32);
  }
  return out;
}

Result<Entry> DecodeEntry(uint64_t ino, std::string_view in) {
  auto corrupt = [&] { return Status::Io("corrupt index entry for inode " + std::to_string(ino)); };
  if (in.size() < 2) return corrupt();
  const uint8_t format = static_cast<uint8_t>(in[0]);
  if (format != kEntryFormat && format != kPackedEntryFormat) return corrupt();
  Entry e;
  e.ino = ino;
  uint8_t type = static_cast<uint8_t>(in[1]);
  if (type < 1 || type > 3) return corrupt();
  e.type = static_cast<ObjectType>(type);
  in.remove_prefix(2);
  uint64_t mode, mtime;
  if (!GetVarint(&in, &e.parent) || !GetVarint(&in, &mode) || !GetVarint(&in, &e.size) ||
      !GetVarint(&in, &mtime) || !GetString(&in, &e.version) || !GetString(&in, &e.key) ||
      !GetString(&in, &e.link_target) || mode > 07777) {
    return corrupt();
  }
  e.mode = static_cast<uint32_t>(mode);
  e.mtime_ns = static_cast<int64_t>(mtime);
  if (format == kPackedEntryFormat) {
    Packed p;
    uint64_t method, flags, crc;
    if (e.type != ObjectType::kFile || !GetVarint(&in, &p.offset) ||
        !GetVarint(&in, &p.archive_size) || !GetVarint(&in, &p.packed_size) ||
        !GetVarint(&in, &method) || !GetVarint(&in, &flags) || !GetVarint(&in, &crc) ||
        method > 0xffff || crc > 0xffffffff || p.offset > p.archive_size ||
        p.packed_size > p.archive_size - p.offset) {
      return corrupt();
    }
    p.method = static_cast<uint16_t>(method);
    p.zip_header = flags & 1;
    p.encrypted = flags & 2;
    p.crc32 = static_cast<uint32_t>(crc);
    e.packed = p;
  }
  return e;
}

}  // namespace tierfs
