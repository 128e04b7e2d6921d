#include "tiers/block.h"

#include <sanitizer/asan_interface.h>

#include <cstdlib>
#include <new>

namespace tierfs {

std::shared_ptr<Block> Block::Allocate(size_t capacity) { return AllocateWithOffset(capacity, 0); }

namespace {

char* AlignedAlloc(size_t size) {
  void* p = std::aligned_alloc(kBlockAlign, size);
  if (p == nullptr) throw std::bad_alloc();
  return static_cast<char*>(p);
}

}  // namespace

BlockPool& BlockPool::Global() {
  static BlockPool* pool = new BlockPool;  // never destroyed: blocks may outlive statics
  return *pool;
}

BlockPool::~BlockPool() {
  MutexLock lock(mu_);
  DropIdle();
}

void BlockPool::Configure(size_t block_size, uint64_t max_idle_bytes) {
  MutexLock lock(mu_);
  DropIdle();
  slot_.store(block_size == 0 ? 0 : block_size + kBlockAlign, std::memory_order_relaxed);
  max_idle_ = max_idle_bytes;
}

void BlockPool::DropIdle() {
  const size_t slot = slot_.load(std::memory_order_relaxed);
  for (char* p : idle_) {
    ASAN_UNPOISON_MEMORY_REGION(p, slot);
    std::free(p);
  }
  idle_.clear();
}

BlockPool::Memory BlockPool::Take(size_t size) {
  const size_t slot = slot_.load(std::memory_order_relaxed);
  if (size > slot || size <= slot / 2) return {AlignedAlloc(size), size};  // not the class
  {
    MutexLock lock(mu_);
    if (!idle_.empty() && slot == slot_.load(std::memory_order_relaxed)) {
      char* p = idle_.back();
      idle_.pop_back();
      ++reuses_;
      ASAN_UNPOISON_MEMORY_REGION(p, slot);
      return {p, slot};
    }
  }
  return {AlignedAlloc(slot), slot};
}

void BlockPool::Give(Memory memory) {
  if (memory.capacity == slot_.load(std::memory_order_relaxed)) {
    MutexLock lock(mu_);
    const size_t slot = slot_.load(std::memory_order_relaxed);  // Configure may have run
    if (memory.capacity == slot && (idle_.size() + 1) * slot <= max_idle_) {
      // Poisoned while idle: under ASan a use after free of a pooled block still fails.
      ASAN_POISON_MEMORY_REGION(memory.data, slot);
      idle_.push_back(memory.data);
      return;
    }
  }
  std::free(memory.data);
}

uint64_t BlockPool::idle_bytes() const {
  MutexLock lock(mu_);
  return idle_.size() * slot_.load(std::memory_order_relaxed);
}

uint64_t BlockPool::reuses() const {
  MutexLock lock(mu_);
  return reuses_;
}

std::shared_ptr<Block> Block::AllocateWithOffset(size_t capacity, size_t offset) {
  size_t rounded = (capacity + kBlockAlign - 1) / kBlockAlign * kBlockAlign;
  if (rounded == 0) rounded = kBlockAlign;
  BlockPool::Memory memory = BlockPool::Global().Take(rounded);
  try {
    return std::shared_ptr<Block>(new Block(memory, offset));
  } catch (...) {
    BlockPool::Global().Give(memory);
    throw;
  }
}

Block::~Block() { BlockPool::Global().Give({storage_, capacity_}); }

BlockKey MakeBlockKey(const ObjectRef& ref, uint64_t index, uint64_t object_size, uint8_t tag) {
  BlockKey k{ref.key, ref.version, index, {}, object_size};
  std::string id;
  id.reserve(ref.key.size() + ref.version.size() + 24);
  id.append(ref.key).push_back('\0');
  id.append(ref.version).push_back('\0');
  id.append(std::to_string(index));
  k.hash = Xxh3_128(id.data(), id.size());
  if (tag != 0) k.hash.lo = (k.hash.lo & ~uint64_t{0xff}) | tag;
  return k;
}

Hash128 ObjectHash(const ObjectRef& ref) {
  std::string id;
  id.reserve(ref.key.size() + ref.version.size() + 8);
  id.append(ref.key).push_back('\0');
  id.append(ref.version).push_back('\0');
  id.append("object");  // never a block index
  return Xxh3_128(id.data(), id.size());
}

}  // namespace tierfs
