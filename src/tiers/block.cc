#include "tiers/block.h"

#include <cstdlib>
#include <new>

namespace tierfs {

std::shared_ptr<Block> Block::Allocate(size_t capacity) { return AllocateWithOffset(capacity, 0); }

std::shared_ptr<Block> Block::AllocateWithOffset(size_t capacity, size_t offset) {
  size_t rounded = (capacity + kBlockAlign - 1) / kBlockAlign * kBlockAlign;
  if (rounded == 0) rounded = kBlockAlign;
  void* p = std::aligned_alloc(kBlockAlign, rounded);
  if (p == nullptr) throw std::bad_alloc();
  return std::shared_ptr<Block>(new Block(static_cast<char*>(p), rounded, offset));
}

Block::~Block() { std::free(storage_); }

BlockKey MakeBlockKey(const ObjectRef& ref, uint64_t index) {
  BlockKey k{ref.key, ref.version, index, {}};
  std::string id;
  id.reserve(ref.key.size() + ref.version.size() + 24);
  id.append(ref.key).push_back('\0');
  id.append(ref.version).push_back('\0');
  id.append(std::to_string(index));
  k.hash = Xxh3_128(id.data(), id.size());
  return k;
}

}  // namespace tierfs
