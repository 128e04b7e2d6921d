// Block: an immutable run of bytes of one object version, shared by tiers and readers.
// BlockKey: (object key, version, block index) — a changed object gets new keys, so no
// reader ever mixes bytes of two versions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "common/checksum.h"
#include "ufs/store.h"

namespace tierfs {

inline constexpr size_t kBlockAlign = 4096;  // O_DIRECT alignment

class Block {
 public:
  // A block whose storage holds `capacity` bytes starting at a 4 KiB-aligned address.
  static std::shared_ptr<Block> Allocate(size_t capacity);
  // A block whose bytes start `offset` bytes into aligned storage of `capacity` bytes
  // (used by the NVMe tier, which reads header and data in one aligned I/O).
  static std::shared_ptr<Block> AllocateWithOffset(size_t capacity, size_t offset);
  ~Block();
  Block(const Block&) = delete;
  Block& operator=(const Block&) = delete;

  const char* data() const { return storage_ + offset_; }
  char* mutable_data() { return storage_ + offset_; }
  char* storage() { return storage_; }
  size_t size() const { return size_; }
  void set_size(size_t size) { size_ = size; }
  // Bytes of memory this block pins (what quotas count).
  size_t footprint() const { return capacity_; }

 private:
  Block(char* storage, size_t capacity, size_t offset)
      : storage_(storage), capacity_(capacity), offset_(offset) {}
  char* storage_;
  size_t capacity_;
  size_t offset_;
  size_t size_ = 0;
};

struct BlockKey {
  std::string key;
  std::string version;
  uint64_t index = 0;
  Hash128 hash;  // of (key, version, index): the identity tiers use
};

BlockKey MakeBlockKey(const ObjectRef& ref, uint64_t index);

struct Hash128Hasher {
  size_t operator()(const Hash128& h) const { return static_cast<size_t>(h.lo); }
};

}  // namespace tierfs
