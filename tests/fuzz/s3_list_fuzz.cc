// Fuzzes the S3 ListObjectsV2 parser: entries must be direct children of the prefix.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "ufs/s3_store.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view xml(reinterpret_cast<const char*>(data), size);
  for (const char* prefix : {"", "train/"}) {
    auto page = tierfs::ParseListObjectsV2(xml, prefix);
    if (!page.ok()) continue;
    for (const auto& e : page->entries) {
      if (e.name.empty()) std::abort();
      if (e.type == tierfs::ObjectType::kFile && e.size > (1ULL << 53)) std::abort();
    }
  }
  return 0;
}
