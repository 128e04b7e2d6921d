#include "tiers/segment_format.h"

#include <cstring>

namespace tierfs {

RecordHeader MakeRecordHeader(const Hash128& key, uint64_t index, uint32_t generation,
                              const char* data, uint32_t length) {
  RecordHeader h = {};
  h.magic = kRecordMagic;
  h.key_lo = key.lo;
  h.key_hi = key.hi;
  h.index = index;
  h.length = length;
  h.generation = generation;
  h.data_xxh3 = Xxh3(data, length);
  h.header_xxh3 = Xxh3(&h, offsetof(RecordHeader, header_xxh3));
  return h;
}

bool HeaderIntact(const RecordHeader& h) {
  return h.magic == kRecordMagic && h.header_xxh3 == Xxh3(&h, offsetof(RecordHeader, header_xxh3));
}

bool RecordValid(const RecordHeader& h, const Hash128& key, uint64_t index, const char* data,
                 size_t available) {
  return HeaderIntact(h) && h.key_lo == key.lo && h.key_hi == key.hi && h.index == index &&
         h.length <= available && h.data_xxh3 == Xxh3(data, h.length);
}

void EncodeDirectory(uint32_t generation, const std::vector<DirEntry>& entries,
                     std::vector<char>* out) {
  size_t entry_bytes = entries.size() * sizeof(DirEntry);
  out->assign(RoundUp(kUnit + entry_bytes, kUnit), '\0');
  DirHeader h = {};
  h.magic = kDirMagic;
  h.generation = generation;
  h.count = static_cast<uint32_t>(entries.size());
  h.entries_xxh3 = Xxh3(entries.data(), entry_bytes);
  h.header_xxh3 = Xxh3(&h, offsetof(DirHeader, header_xxh3));
  std::memcpy(out->data(), &h, sizeof h);
  if (entry_bytes) std::memcpy(out->data() + kUnit, entries.data(), entry_bytes);
}

bool DecodeDirHeader(const char* buf, DirHeader* out) {
  std::memcpy(out, buf, sizeof *out);
  return out->magic == kDirMagic && out->header_xxh3 == Xxh3(out, offsetof(DirHeader, header_xxh3));
}

bool DirEntriesValid(const DirHeader& h, const DirEntry* entries) {
  return h.entries_xxh3 == Xxh3(entries, static_cast<size_t>(h.count) * sizeof(DirEntry));
}

}  // namespace tierfs
