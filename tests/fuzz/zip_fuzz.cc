// Fuzzes the zip listing (metadata/archive.h): any input is listed or refused, and what is
// listed stays inside the archive (archive_checks.h).
#include <cstdint>
#include <string>

#include "archive_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  auto listing = tierfs::ListZip(tierfs::MemoryReader(bytes), bytes.size());
  if (listing.ok()) tierfs::CheckListing(*listing, bytes);
  return 0;
}
