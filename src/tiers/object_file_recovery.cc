// The object file tier at start-up: the maps found on disk become objects (see
// object_file_internal.h for the split).
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

ObjectFileTier::ObjectFileTier(const ObjectFileTierOptions& options)
    : options_(options),
      admission_(options.budget->capacity() / std::max<size_t>(options.block_size, 1),
                 options.epoch_aware, options.min_hit_ratio) {}

Result<std::unique_ptr<ObjectFileTier>> ObjectFileTier::Open(const ObjectFileTierOptions& options) {
  if (options.budget == nullptr) return Status::Invalid("object file tier needs a disk budget");
  std::unique_ptr<ObjectFileTier> tier(new ObjectFileTier(options));
  TIERFS_RETURN_IF_ERROR(tier->Load());
  return tier;
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
  std::vector<std::shared_ptr<Object>> over_budget;
  {
    MutexLock lock(mu_);  // no other thread yet; taken for the rule's sake (it costs nothing)
    for (auto& [time, object] : found) {
      object->last_use = tick--;
      if (options_.budget->TryReserve(object->reserved)) {
        objects_.emplace(object->id, object);
      } else {
        over_budget.push_back(object);
      }
    }
    tick_ = found.size();
  }
  for (const auto& object : over_budget) RemoveFiles(*object);
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
    object->reserved += ObjectFileRounded(r.length);
    object->slots[r.index] = {r.sum, r.length, true, false, true, true};
  }
  return object;
}

}  // namespace tierfs
