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
#include "tiers/object_map_format.h"

namespace tierfs {
namespace fs = std::filesystem;

namespace {

uint64_t Rounded(uint64_t n) { return (n + kBlockAlign - 1) / kBlockAlign * kBlockAlign; }

}  // namespace

struct ObjectFileTier::Object {
  Hash128 id;
  std::string key, version, stem;
  uint64_t size = 0;
  uint32_t nblocks = 0;
  UniqueFd fd, map_fd;  // set once (writer or load), closed with the object
  struct Slot {
    uint64_t sum = 0;
    uint32_t length = 0;
    bool present = false;
    bool queued = false;     // a write is pending
    bool reserved = false;   // its bytes are counted in the budget
    bool from_disk = false;  // present since start-up, not yet read back and checked
  };
  std::vector<Slot> slots;
  uint32_t present = 0, from_disk = 0;
  uint64_t reserved = 0;
  uint64_t last_use = 0;
  uint32_t pins = 0;
  bool evicted = false, verify_queued = false;

  bool complete() const { return present == nblocks; }
  bool verified() const { return complete() && from_disk == 0; }
};

Result<std::unique_ptr<ObjectFileTier>> ObjectFileTier::Open(const ObjectFileTierOptions& options) {
  if (options.budget == nullptr) return Status::Invalid("object file tier needs a disk budget");
  std::unique_ptr<ObjectFileTier> tier(new ObjectFileTier(options));
  TIERFS_RETURN_IF_ERROR(tier->Load());
  return tier;
}

ObjectFileTier::~ObjectFileTier() { Stop(); }

std::string ObjectFileTier::PathOf(const Object& object, const char* ext) const {
  return options_.dir + "/" + object.stem + ext;
}

Status ObjectFileTier::Load() {
  std::error_code ec;
  fs::create_directories(options_.dir, ec);
  if (ec) return Status(ec.value(), "cannot create '" + options_.dir + "': " + ec.message());
  ::chmod(options_.dir.c_str(), 0700);
  std::vector<std::pair<fs::file_time_type, std::shared_ptr<Object>>> found;
  std::vector<fs::path> strays;
  for (const auto& e : fs::directory_iterator(options_.dir, ec)) {
    const fs::path& p = e.path();
    if (p.extension() == ".map") {
      if (auto object = LoadOne(p.stem().string())) {
        found.emplace_back(fs::last_write_time(p, ec), std::move(object));
        continue;
      }
      strays.push_back(p);
      strays.push_back(fs::path(p).replace_extension(".data"));
    } else if (p.extension() != ".data" || !fs::exists(fs::path(p).replace_extension(".map"), ec)) {
      strays.push_back(p);
    }
  }
  for (const auto& p : strays) fs::remove(p, ec);
  // Newest first: what does not fit in the budget (a smaller --cache-size) is the oldest.
  std::sort(found.begin(), found.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  uint64_t tick = found.size();
  for (auto& [time, object] : found) {
    object->last_use = tick--;
    if (!options_.budget->TryReserve(object->reserved)) {
      RemoveFiles(*object);
      continue;
    }
    objects_.emplace(object->id, object);
  }
  tick_ = found.size();
  return Status::Ok();
}

std::shared_ptr<ObjectFileTier::Object> ObjectFileTier::LoadOne(const std::string& stem) {
  auto object = std::make_shared<Object>();
  object->stem = stem;
  object->map_fd.reset(::open(PathOf(*object, ".map").c_str(), O_RDWR | O_APPEND | O_CLOEXEC));
  object->fd.reset(::open(PathOf(*object, ".data").c_str(), O_RDWR | O_CLOEXEC));
  if (!object->map_fd.valid() || !object->fd.valid()) return nullptr;
  struct stat st {};
  if (::fstat(object->map_fd.get(), &st) != 0) return nullptr;
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  if (!PreadExact(object->map_fd.get(), bytes.data(), bytes.size(), 0, stem).ok()) return nullptr;
  auto map = DecodeObjectMap(bytes);
  if (!map.ok() || map->block_size != options_.block_size || map->size < options_.min_object_size) {
    return nullptr;
  }
  object->key = std::move(map->key);
  object->version = std::move(map->version);
  object->id = ObjectHash(ObjectRef{object->key, object->version});
  if (fmt::format("{:016x}{:016x}", object->id.hi, object->id.lo) != stem) return nullptr;
  object->size = map->size;
  object->nblocks = map->nblocks();
  object->slots.resize(object->nblocks);
  for (const ObjectMapRecord& r : map->blocks) {
    ++object->present;
    ++object->from_disk;
    object->reserved += Rounded(r.length);
    object->slots[r.index] = {r.sum, r.length, true, false, true, true};
  }
  return object;
}

void ObjectFileTier::Start() {
  std::lock_guard lock(queue_mu_);
  if (writer_.joinable()) return;
  stopping_ = false;
  writer_ = std::thread([this] { WriterLoop(); });
}

void ObjectFileTier::Stop() {
  {
    std::lock_guard lock(queue_mu_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
}

void ObjectFileTier::Flush() {
  std::unique_lock lock(queue_mu_);
  drained_cv_.wait(lock, [&] { return (queue_.empty() && !busy_) || !writer_.joinable(); });
}

void ObjectFileTier::WriterLoop() {
  SetThreadName("tierfs-objects");
  while (true) {
    Job job;
    {
      std::unique_lock lock(queue_mu_);
      queue_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
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
      std::lock_guard lock(queue_mu_);
      if (job.block) queued_bytes_ -= job.block->size();
      busy_ = false;
    }
    space_cv_.notify_all();
    drained_cv_.notify_all();
  }
  drained_cv_.notify_all();
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
    std::lock_guard lock(mu_);
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
    if (seen_.size() >= kMaxSeen) seen_.clear();
    seen_.insert(id);
    if (object->size != size) return;  // another size under one identity: not ours to judge
    Object::Slot& slot = object->slots[key.index];
    if (slot.present || slot.queued) return;
    slot.queued = true;
  }
  std::unique_lock lock(queue_mu_);
  // Backpressure as in the NVMe tier: a fast cold pass still reaches the disk.
  const bool room = space_cv_.wait_for(lock, std::chrono::seconds(2), [&] {
    return stopping_ || queued_bytes_ + block->size() <= options_.max_queue_bytes;
  });
  if (!room || stopping_ || !writer_.joinable()) {
    lock.unlock();
    ++dropped_;
    std::lock_guard object_lock(mu_);
    object->slots[key.index].queued = false;
    return;
  }
  queued_bytes_ += block->size();
  queue_.push_back(Job{object, key.index, block});
  lock.unlock();
  queue_cv_.notify_one();
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
  std::lock_guard lock(mu_);
  object.fd = std::move(fd);
  object.map_fd = std::move(map_fd);
  return Status::Ok();
}

bool ObjectFileTier::Reserve(const std::shared_ptr<Object>& object, uint64_t bytes) {
  if (options_.budget->TryReserve(bytes)) return true;
  {
    std::lock_guard lock(mu_);
    // Full. An object that holds nothing yet is new: it may evict others only while the
    // resident set is not earning hits.
    if (object->reserved == 0 &&
        last_ratio_permille_.load() >= static_cast<uint64_t>(options_.min_hit_ratio * 1000)) {
      ++admission_refused_;
      return false;
    }
  }
  // Least recently used objects go until the bytes fit. A victim leaves the map under mu_;
  // its files are unlinked after, so a lookup never waits behind the unlink (blocking.h).
  // Its room is released once its files are gone: the disk never holds more than the budget.
  do {
    std::shared_ptr<Object> victim;
    uint64_t freed = 0;
    {
      std::lock_guard lock(mu_);
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
    std::lock_guard lock(mu_);
    object.slots[job.index].queued = false;
    // An object that got nothing written is not kept as an empty entry.
    if (object.reserved == 0 && !object.fd.valid() && !object.evicted) objects_.erase(object.id);
  };
  bool reserved;
  {
    std::lock_guard lock(mu_);
    if (object.evicted) return;
    reserved = object.slots[job.index].reserved;
  }
  const uint32_t length = static_cast<uint32_t>(job.block->size());
  if (!reserved && !Reserve(job.object, Rounded(length))) {
    ++dropped_;
    return unqueue();
  }
  if (!reserved) {
    std::lock_guard lock(mu_);
    if (object.evicted) {  // only the writer evicts, so this is defensive
      options_.budget->Release(Rounded(length));
      return;
    }
    object.slots[job.index].reserved = true;
    object.reserved += Rounded(length);
  }
  bool have_files;
  {
    std::lock_guard lock(mu_);
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
  std::lock_guard lock(mu_);
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
      std::lock_guard lock(mu_);
      if (object->evicted) break;
      slot = object->slots[i];
    }
    if (!slot.present || !slot.from_disk) continue;
    const bool read = PreadExact(object->fd.get(), buffer->mutable_data(), slot.length,
                                 i * options_.block_size, object->stem)
                          .ok();
    const bool good = read && Xxh3(buffer->data(), slot.length) == slot.sum;
    std::lock_guard lock(mu_);
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
  std::lock_guard lock(mu_);
  object->verify_queued = false;
}

void ObjectFileTier::Forget(Object& object, uint64_t index) {
  Object::Slot& slot = object.slots[index];
  if (!slot.present) return;
  slot.present = false;
  --object.present;
  if (slot.from_disk) --object.from_disk;
  slot.from_disk = false;
}

void ObjectFileTier::CountLookup(bool hit) {
  const uint64_t n = window_lookups_.fetch_add(1) + 1;
  const uint64_t h = hit ? window_hits_.fetch_add(1) + 1 : window_hits_.load();
  if (n >= 256) {
    last_ratio_permille_ = h * 1000 / n;
    window_lookups_ = 0;
    window_hits_ = 0;
  }
}

std::shared_ptr<const Block> ObjectFileTier::Get(const BlockKey& key) {
  if (!Accepts(key.object_size)) return nullptr;
  const Hash128 id = ObjectHash(ObjectRef{key.key, key.version});
  std::shared_ptr<Object> object;
  Object::Slot slot;
  {
    std::lock_guard lock(mu_);
    auto it = objects_.find(id);
    const bool found = it != objects_.end() && key.index < it->second->nblocks &&
                       it->second->slots[key.index].present;
    if (!found) {
      ++counters_.misses;
      if (seen_.count(id) > 0) CountLookup(false);  // a re-reference
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
  std::lock_guard lock(mu_);
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
  CountLookup(true);
  return block;
}

ObjectFileTier::Backing ObjectFileTier::GetBacking(const ObjectRef& ref, uint64_t size) {
  if (!Accepts(size)) return {};
  std::shared_ptr<Object> object;
  {
    std::lock_guard lock(mu_);
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
    std::lock_guard lock(queue_mu_);
    if (stopping_ || !writer_.joinable()) return {};
    queue_.push_back(Job{object, 0, nullptr});
  }
  queue_cv_.notify_one();
  return {};
}

void ObjectFileTier::Unpin(const std::shared_ptr<Object>& object) {
  std::lock_guard lock(mu_);
  if (--object->pins == 0 && object->evicted) {
    options_.budget->Release(object->reserved);
    evicted_pinned_bytes_ -= object->reserved;
  }
}

void ObjectFileTier::AddBytesByTag(const TagOf& tag_of, std::span<uint64_t, 256> out) const {
  if (!tag_of) return;
  std::lock_guard lock(mu_);
  for (const auto& [id, o] : objects_) out[tag_of(o->key)] += o->reserved;
}

TierStats ObjectFileTier::Stats() const {
  TierStats s;
  s.capacity_bytes = options_.budget->capacity();
  {
    std::lock_guard lock(mu_);
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
    std::lock_guard lock(mu_);
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
  s.admission_refused = admission_refused_;
  return s;
}

}  // namespace tierfs
