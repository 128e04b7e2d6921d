// Fuzzes the manifest parser (text and JSON) and walks the tree it builds: every listed
// name must be a single path component.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "ufs/fake_store.h"
#include "ufs/manifest_store.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto store = tierfs::OpenManifestStore(std::make_unique<tierfs::FakeStore>(), text);
  if (!store.ok()) return 0;
  std::vector<std::string> dirs{""};
  size_t visited = 0;
  while (!dirs.empty() && visited++ < 10000) {
    std::string dir = dirs.back();
    dirs.pop_back();
    (void)(*store)->List(dir, [&](tierfs::ObjectInfo&& info) {
      if (info.name.empty() || info.name.find('/') != std::string::npos) std::abort();
      if (info.type == tierfs::ObjectType::kDirectory)
        dirs.push_back(tierfs::JoinKey(dir, info.name));
      return tierfs::Status::Ok();
    });
    (void)(*store)->Stat(dir);
  }
  return 0;
}
