// The object file tier's writer thread: files, reservation and eviction, block writes
// and verification (see object_file_internal.h for the split).
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
#include "common/log.h"
#include "tiers/block.h"
#include "tiers/object_file_internal.h"
#include "tiers/object_file_tier.h"
#include "tiers/object_map_format.h"

namespace tierfs {
namespace fs = std::filesystem;

void ObjectFileTier::Start() {
  MutexLock lock(queue_mu_);
  if (writer_.joinable()) return;
  stopping_ = false;
  writer_ = std::thread([this] { WriterLoop(); });
}

void ObjectFileTier::Stop() {
  {
    MutexLock lock(queue_mu_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
}

void ObjectFileTier::Flush() {
  MutexLock lock(queue_mu_);
  drained_cv_.wait(lock.native(), [&]() REQUIRES(queue_mu_) {
    return (queue_.empty() && !busy_) || !writer_.joinable();
  });
}

void ObjectFileTier::WriterLoop() {
  SetThreadName("tierfs-objects");
  while (true) {
    Job job;
    {
      MutexLock lock(queue_mu_);
      queue_cv_.wait(lock.native(),
                     [&]() REQUIRES(queue_mu_) { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) break;  // stopping, and everything queued is written
      job = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
    }
    if (job.block) {
      Write(job);
    } else {
      Verify(job.object);
    }
    {
      MutexLock lock(queue_mu_);
      if (job.block) queued_bytes_ -= job.block->size();
      busy_ = false;
    }
    space_cv_.notify_all();
    drained_cv_.notify_all();
  }
  drained_cv_.notify_all();
}

Status ObjectFileTier::CreateFiles(Object& object) {
  const std::string data = PathOf(object, ".data"), map = PathOf(object, ".map");
  UniqueFd fd(::open(data.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd.valid()) return Status::FromErrno(errno, "cannot create '" + data + "'");
  // Sparse: the file has the object's size from the start; blocks fill it in.
  if (::ftruncate(fd.get(), static_cast<off_t>(object.size)) != 0) {
    Status s = Status::FromErrno(errno, "cannot size '" + data + "'");
    ::unlink(data.c_str());
    return s;
  }
  UniqueFd map_fd(::open(map.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600));
  const std::string header = EncodeObjectMapHeader(
      object.size, static_cast<uint32_t>(options_.block_size), object.key, object.version);
  Status s = map_fd.valid() ? WriteFull(map_fd.get(), header.data(), header.size(), map)
                            : Status::FromErrno(errno, "cannot create '" + map + "'");
  if (!s.ok()) {
    ::unlink(data.c_str());
    ::unlink(map.c_str());
    return s;
  }
  MutexLock lock(mu_);
  object.fd = std::move(fd);
  object.map_fd = std::move(map_fd);
  return Status::Ok();
}

bool ObjectFileTier::Reserve(const std::shared_ptr<Object>& object, uint64_t bytes,
                             bool refetched) {
  if (options_.budget->TryReserve(bytes)) return true;
  {
    MutexLock lock(mu_);
    // Full. An object that holds nothing yet is new: it evicts others only if admission
    // lets its block (fetched before, the resident set not earning hits).
    if (object->reserved == 0 && !admission_.MayEvict(refetched)) return false;
  }
  // Least recently used objects go until the bytes fit. A victim leaves the map under mu_;
  // its files are unlinked after, so a lookup never waits behind the unlink (blocking.h).
  // Its room is released once its files are gone: the disk never holds more than the budget.
  do {
    std::shared_ptr<Object> victim;
    uint64_t freed = 0;
    {
      MutexLock lock(mu_);
      for (const auto& [id, o] : objects_) {
        if (o != object && o->reserved > 0 &&
            (victim == nullptr || o->last_use < victim->last_use)) {
          victim = o;
        }
      }
      if (victim == nullptr) return false;
      freed = TakeOutLocked(victim);
    }
    RemoveFiles(*victim);
    options_.budget->Release(freed);
  } while (!options_.budget->TryReserve(bytes));
  return true;
}

uint64_t ObjectFileTier::TakeOutLocked(const std::shared_ptr<Object>& victim) {
  objects_.erase(victim->id);
  victim->evicted = true;
  ++counters_.evictions;
  if (victim->pins == 0) return victim->reserved;
  evicted_pinned_bytes_ += victim->reserved;  // released by the last Unpin
  return 0;
}

void ObjectFileTier::RemoveFiles(const Object& object) const {
  for (const char* ext : {".data", ".map"}) {
    const std::string path = PathOf(object, ext);
    if (options_.remove_file) {
      options_.remove_file(path);
    } else {
      ::unlink(path.c_str());
    }
  }
}

void ObjectFileTier::Write(const Job& job) {
  Object& object = *job.object;
  auto unqueue = [&] {
    MutexLock lock(mu_);
    object.slots[job.index].queued = false;
    // An object that got nothing written is not kept as an empty entry.
    if (object.reserved == 0 && !object.fd.valid() && !object.evicted) objects_.erase(object.id);
  };
  bool reserved;
  {
    MutexLock lock(mu_);
    if (object.evicted) return;
    reserved = object.slots[job.index].reserved;
  }
  const uint32_t length = static_cast<uint32_t>(job.block->size());
  if (!reserved && !Reserve(job.object, ObjectFileRounded(length), job.refetched)) {
    ++dropped_;
    return unqueue();
  }
  if (!reserved) {
    MutexLock lock(mu_);
    if (object.evicted) {  // only the writer evicts, so this is defensive
      options_.budget->Release(ObjectFileRounded(length));
      return;
    }
    object.slots[job.index].reserved = true;
    object.reserved += ObjectFileRounded(length);
  }
  bool have_files;
  {
    MutexLock lock(mu_);
    have_files = object.fd.valid();
  }
  if (!have_files) {
    if (Status s = CreateFiles(object); !s.ok()) {
      ++counters_.errors;
      TLOG_WARN_LIMITED(io_error_log_, "object cache: {}", s.message());
      return unqueue();
    }
  }
  const ObjectMapRecord r{static_cast<uint32_t>(job.index), length,
                          Xxh3(job.block->data(), length)};
  Status written = PwriteFull(object.fd.get(), job.block->data(), length,
                              job.index * options_.block_size, PathOf(object, ".data"));
  if (written.ok()) written = WriteFull(object.map_fd.get(), &r, sizeof r, PathOf(object, ".map"));
  if (!written.ok()) {
    ++counters_.errors;
    TLOG_WARN_LIMITED(io_error_log_, "object cache: {}", written.message());
    return unqueue();
  }
  MutexLock lock(mu_);
  Object::Slot& slot = object.slots[job.index];
  if (slot.present && slot.from_disk) --object.from_disk;
  if (!slot.present) ++object.present;
  slot.sum = r.sum;
  slot.length = length;
  slot.present = true;
  slot.from_disk = false;
  slot.queued = false;
  ++counters_.inserts;
}

void ObjectFileTier::Verify(const std::shared_ptr<Object>& object) {
  ++verifications_;
  auto buffer = Block::Allocate(options_.block_size);
  for (uint32_t i = 0; i < object->nblocks; ++i) {
    Object::Slot slot;
    {
      MutexLock lock(mu_);
      if (object->evicted) break;
      slot = object->slots[i];
    }
    if (!slot.present || !slot.from_disk) continue;
    const bool read = PreadExact(object->fd.get(), buffer->mutable_data(), slot.length,
                                 i * options_.block_size, object->stem)
                          .ok();
    const bool good = read && Xxh3(buffer->data(), slot.length) == slot.sum;
    MutexLock lock(mu_);
    Object::Slot& now = object->slots[i];
    if (!now.present || !now.from_disk || now.sum != slot.sum) continue;  // rewritten meanwhile
    if (good) {
      now.from_disk = false;
      --object->from_disk;
      continue;
    }
    (read ? counters_.checksum_failures : counters_.errors)++;
    TLOG_WARN_LIMITED(io_error_log_, "object cache: block {} of {} failed verification; refetching",
                      i, object->key);
    Forget(*object, i);
  }
  MutexLock lock(mu_);
  object->verify_queued = false;
}

}  // namespace tierfs
