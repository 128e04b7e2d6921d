// Block: an immutable run of bytes of one object version, shared by tiers and readers.
// BlockKey: (object key, version, block index) — a changed object gets new keys, so no
// reader ever mixes bytes of two versions.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/checksum.h"
#include "common/mutex.h"
#include "ufs/store.h"

namespace tierfs {

inline constexpr size_t kBlockAlign = 4096;  // O_DIRECT alignment

// Memory for blocks. Buffers of one size class are kept when freed, as long as no more
// than `max_idle_bytes` of them sit idle, and handed out again: without it, every block
// of a steady churn (a full RAM tier evicting, no RAM tier, NVMe hits) was fresh memory
// from the kernel, a page fault and a zeroed page per 4 KiB (a 128 MiB read with the RAM
// tier off took 26,000 faults). The class is the block size plus one 4 KiB unit, so one
// buffer fits a whole block and a whole NVMe record (header + block); any request over
// half of it is served from the class. Other sizes (small files, tails) go to malloc.
class BlockPool {
 public:
  struct Memory {
    char* data = nullptr;
    size_t capacity = 0;
  };

  // The pool all blocks use; off (every request goes to malloc) until configured.
  static BlockPool& Global();

  // Sets the class to `block_size` + 4 KiB and the idle bound; drops idle buffers. Call
  // before blocks are in use (tests call it between cases).
  void Configure(size_t block_size, uint64_t max_idle_bytes);
  // At least `size` bytes (a multiple of 4 KiB), 4 KiB aligned. Throws std::bad_alloc.
  Memory Take(size_t size);
  // Returns memory from Take().
  void Give(Memory memory);

  uint64_t idle_bytes() const;
  uint64_t reuses() const;  // Take() calls served by an idle buffer

  BlockPool() = default;
  ~BlockPool();
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

 private:
  void DropIdle() REQUIRES(mu_);
  // The class's buffer size (0: off). Written under mu_; read without it to send other
  // sizes to malloc without taking the lock.
  std::atomic<size_t> slot_{0};
  mutable Mutex mu_;
  uint64_t max_idle_ GUARDED_BY(mu_) = 0;
  std::vector<char*> idle_ GUARDED_BY(mu_);
  uint64_t reuses_ GUARDED_BY(mu_) = 0;
};

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
  Block(BlockPool::Memory memory, size_t offset)
      : storage_(memory.data), capacity_(memory.capacity), offset_(offset) {}
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
  // Bytes of the whole object, when the caller knows them (0: unknown). Not part of the
  // identity; tiers that keep whole objects together (ObjectFileTier) need it.
  uint64_t object_size = 0;
};

// `tag` (0: none) names the block's source in a namespace of several (1 + its position):
// it replaces the hash's low byte, so tiers that keep only hashes can still count the
// bytes of each source (BlockTag). A single-source mount's hashes are untouched.
BlockKey MakeBlockKey(const ObjectRef& ref, uint64_t index, uint64_t object_size = 0,
                      uint8_t tag = 0);
inline uint8_t BlockTag(const Hash128& hash) { return static_cast<uint8_t>(hash.lo & 0xff); }
// The identity of a whole object version (no block index), for tiers that keep objects.
Hash128 ObjectHash(const ObjectRef& ref);

struct Hash128Hasher {
  size_t operator()(const Hash128& h) const { return static_cast<size_t>(h.lo); }
};

}  // namespace tierfs
