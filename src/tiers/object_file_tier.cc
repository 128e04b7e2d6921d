#include "tiers/object_file_tier.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "common/blocking.h"
#include "common/checksum.h"
#include "common/fd.h"
#include "tiers/block.h"
#include "tiers/object_file_internal.h"
#include "tiers/object_map_format.h"

namespace tierfs {
namespace fs = std::filesystem;

ObjectFileTier::~ObjectFileTier() { Stop(); }

std::string ObjectFileTier::PathOf(const Object& object, const char* ext) const {
  return options_.dir + "/" + object.stem + ext;
}

void ObjectFileTier::Put(const BlockKey& key, const std::shared_ptr<const Block>& block) {
  if (!Accepts(key.object_size) || block == nullptr) return;
  const uint64_t size = key.object_size, bs = options_.block_size;
  const uint64_t nblocks = (size + bs - 1) / bs;
  if (key.index >= nblocks || block->size() != std::min<uint64_t>(bs, size - key.index * bs)) {
    return;
  }
  const Hash128 id = ObjectHash(ObjectRef{key.key, key.version});
  std::shared_ptr<Object> object;
  {
    MutexLock lock(mu_);
    auto& slot_ptr = objects_[id];
    if (slot_ptr == nullptr) {
      slot_ptr = std::make_shared<Object>();
      slot_ptr->id = id;
      slot_ptr->key = key.key;
      slot_ptr->version = key.version;
      slot_ptr->stem = fmt::format("{:016x}{:016x}", id.hi, id.lo);
      slot_ptr->size = size;
      slot_ptr->nblocks = static_cast<uint32_t>(nblocks);
      slot_ptr->slots.resize(nblocks);
      slot_ptr->last_use = ++tick_;
    }
    object = slot_ptr;
    if (object->size != size) return;  // another size under one identity: not ours to judge
    Object::Slot& slot = object->slots[key.index];
    if (slot.present || slot.queued) return;
    slot.queued = true;
  }
  const bool refetched = admission_.NoteFetch(key.hash);
  MutexLock lock(queue_mu_);
  // Backpressure as in the NVMe tier: a fast cold pass still reaches the disk.
  const bool room =
      space_cv_.wait_for(lock.native(), std::chrono::seconds(2), [&]() REQUIRES(queue_mu_) {
        return stopping_ || queued_bytes_ + block->size() <= options_.max_queue_bytes;
      });
  if (!room || stopping_ || !writer_.joinable()) {
    lock.Unlock();
    ++dropped_;
    MutexLock object_lock(mu_);
    object->slots[key.index].queued = false;
    return;
  }
  queued_bytes_ += block->size();
  queue_.push_back(Job{object, key.index, block, refetched});
  lock.Unlock();
  queue_cv_.notify_one();
}

void ObjectFileTier::Forget(Object& object, uint64_t index) {
  Object::Slot& slot = object.slots[index];
  if (!slot.present) return;
  slot.present = false;
  --object.present;
  if (slot.from_disk) --object.from_disk;
  slot.from_disk = false;
}

bool ObjectFileTier::Contains(const BlockKey& key) const {
  if (!Accepts(key.object_size)) return false;
  const Hash128 id = ObjectHash(ObjectRef{key.key, key.version});
  MutexLock lock(mu_);
  auto it = objects_.find(id);
  return it != objects_.end() && key.index < it->second->nblocks &&
         it->second->slots[key.index].present;
}

std::shared_ptr<const Block> ObjectFileTier::Get(const BlockKey& key) {
  if (!Accepts(key.object_size)) return nullptr;
  const Hash128 id = ObjectHash(ObjectRef{key.key, key.version});
  std::shared_ptr<Object> object;
  Object::Slot slot;
  {
    MutexLock lock(mu_);
    auto it = objects_.find(id);
    const bool found = it != objects_.end() && key.index < it->second->nblocks &&
                       it->second->slots[key.index].present;
    if (!found) {
      ++counters_.misses;  // a re-referenced one counts when it is fetched (Put)
      return nullptr;
    }
    object = it->second;
    slot = object->slots[key.index];
    object->last_use = ++tick_;
  }
  auto block = Block::Allocate(slot.length);
  AboutToBlock();  // a disk read when the page cache does not hold it
  const bool read = PreadExact(object->fd.get(), block->mutable_data(), slot.length,
                               key.index * options_.block_size, object->stem)
                        .ok();
  block->set_size(slot.length);
  const bool good = read && Xxh3(block->data(), slot.length) == slot.sum;
  MutexLock lock(mu_);
  if (!good) {
    (read ? counters_.checksum_failures : counters_.errors)++;
    Object::Slot& now = object->slots[key.index];
    if (now.sum == slot.sum) Forget(*object, key.index);
    ++counters_.misses;
    TLOG_WARN_LIMITED(io_error_log_,
                      "object cache: block {} of {} unreadable or corrupt; refetching", key.index,
                      key.key);
    return nullptr;
  }
  Object::Slot& now = object->slots[key.index];
  if (now.present && now.from_disk && now.sum == slot.sum) {
    now.from_disk = false;
    --object->from_disk;
  }
  ++counters_.hits;
  admission_.CountLookup(true);
  return block;
}

ObjectFileTier::Backing ObjectFileTier::GetBacking(const ObjectRef& ref, uint64_t size) {
  if (!Accepts(size)) return {};
  std::shared_ptr<Object> object;
  {
    MutexLock lock(mu_);
    auto it = objects_.find(ObjectHash(ref));
    if (it == objects_.end() || it->second->size != size || !it->second->complete()) return {};
    object = it->second;
    object->last_use = ++tick_;
    if (object->verified()) {
      ++object->pins;
      std::shared_ptr<void> pin(nullptr, [this, object](void*) { Unpin(object); });
      return {object->fd.get(), std::move(pin)};
    }
    if (object->verify_queued) return {};
    object->verify_queued = true;
  }
  {
    MutexLock lock(queue_mu_);
    if (stopping_ || !writer_.joinable()) return {};
    queue_.push_back(Job{object, 0, nullptr});
  }
  queue_cv_.notify_one();
  return {};
}

void ObjectFileTier::Unpin(const std::shared_ptr<Object>& object) {
  MutexLock lock(mu_);
  if (--object->pins == 0 && object->evicted) {
    options_.budget->Release(object->reserved);
    evicted_pinned_bytes_ -= object->reserved;
  }
}

void ObjectFileTier::AddBytesByTag(const TagOf& tag_of, std::span<uint64_t, 256> out) const {
  if (!tag_of) return;
  MutexLock lock(mu_);
  for (const auto& [id, o] : objects_) out[tag_of(o->key)] += o->reserved;
}

TierStats ObjectFileTier::Stats() const {
  TierStats s;
  s.capacity_bytes = options_.budget->capacity();
  {
    MutexLock lock(mu_);
    for (const auto& [id, o] : objects_) {
      s.used_bytes += o->reserved;
      s.blocks += o->present;
    }
  }
  counters_.Fill(&s);
  return s;
}

ObjectFileStats ObjectFileTier::ObjectStats() const {
  ObjectFileStats s;
  {
    MutexLock lock(mu_);
    for (const auto& [id, o] : objects_) {
      if (o->reserved == 0) continue;
      ++s.objects;
      s.complete += o->complete();
      s.verified += o->verified();
      s.pinned += o->pins > 0;
    }
  }
  s.evicted_pinned_bytes = evicted_pinned_bytes_;
  s.verifications = verifications_;
  s.admission_refused = admission_.refused();
  return s;
}

}  // namespace tierfs
