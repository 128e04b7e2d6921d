// Internals shared by the object file tier's three files: object_file_tier.cc (lookups,
// puts, backing files, stats), object_file_recovery.cc (start-up: reading the maps),
// object_file_writer.cc (the writer thread: files, reservation and eviction, writes,
// verification). Not for other users.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/checksum.h"
#include "common/fd.h"
#include "tiers/block.h"
#include "tiers/object_file_tier.h"

namespace tierfs {

// What a block costs the disk budget: its bytes rounded up to the file system's unit.
inline uint64_t ObjectFileRounded(uint64_t n) {
  return (n + kBlockAlign - 1) / kBlockAlign * kBlockAlign;
}

// One object kept whole. The tier's mu_ protects every field but the ones set once before
// the object is shared (id, key, version, stem, size, nblocks).
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

}  // namespace tierfs
