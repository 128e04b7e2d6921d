// RecentKeys: which block keys were fetched recently, in bounded memory (the "doorkeeper"
// of TinyLFU-style admission). Two generations of open-addressed 32-bit fingerprints: the
// current one takes new keys until half full, then becomes the previous one and an empty
// table takes over. A key is remembered for between `keys` and 2x`keys` later distinct
// keys; a false "seen" needs a 32-bit fingerprint collision (about keys / 2^32).
//
// The NVMe tier asks it one question when full: was this block fetched before? A block
// fetched for the first time (a one-time scan, the first epoch) evicts nothing; a block
// fetched again may.
#pragma once

#include <cstdint>
#include <vector>

#include "common/checksum.h"
#include "common/mutex.h"

namespace tierfs {

class RecentKeys {
 public:
  // Remembers at least `keys` keys (at least 2 Ki and at most 2 Mi: 16 MiB of tables).
  explicit RecentKeys(uint64_t keys);

  // Records `key`; returns whether it was already remembered.
  bool Insert(const Hash128& key);
  uint64_t remembered() const { return table_size() / 2; }  // the guaranteed horizon
  size_t table_size() const { return mask_ + 1; }           // both tables, fixed at construction

 private:
  static bool Contains(const std::vector<uint32_t>& table, uint64_t mask, const Hash128& key);

  Mutex mu_;
  std::vector<uint32_t> current_ GUARDED_BY(mu_), previous_ GUARDED_BY(mu_);
  uint64_t mask_;
  uint64_t count_ GUARDED_BY(mu_) = 0;  // keys in current_
};

}  // namespace tierfs
