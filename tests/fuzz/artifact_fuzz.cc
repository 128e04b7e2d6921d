// Fuzzes the published-index formats: the input is unpacked as an artifact (which must
// leave either a directory of plain files or nothing at all, never anything outside it)
// and decoded as a pointer (which must accept only a digest that names its artifact).
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/sha256.h"
#include "metadata/artifact.h"

namespace fs = std::filesystem;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("tierfs-artifact-fuzz-" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d;
  }();
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  if (auto p = tierfs::DecodePointer(bytes); p.ok()) {
    if (!tierfs::IsSha256Hex(p->sha256)) std::abort();
  }
  const fs::path input = dir / "input", out = dir / "out";
  std::ofstream(input, std::ios::binary | std::ios::trunc) << bytes;
  std::error_code ec;
  fs::remove_all(out, ec);
  const bool ok = tierfs::UnpackIndex(input.string(), out.string()).ok();
  if (fs::exists(out.string() + ".unpacking")) std::abort();  // never left half-written
  if (ok) {
    for (const auto& e : fs::directory_iterator(out)) {
      if (!e.is_regular_file() || e.is_symlink()) std::abort();
    }
  } else if (fs::exists(out)) {
    std::abort();
  }
  // Nothing but the input and the output directory, ever.
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name != "input" && name != "out") std::abort();
  }
  return 0;
}
