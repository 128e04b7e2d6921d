// Fuzzes what users type: sizes, -o mount option lists, --metrics addresses and Fluid's
// config.json. Errors are fine; crashes, hangs and multi-line messages are not.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "cli/fluid.h"
#include "cli/metrics_server.h"
#include "cli/mount_options.h"
#include "common/size.h"

namespace {
void OneLine(const tierfs::Status& s) {
  if (!s.ok() && s.message().find('\n') != std::string::npos) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto n = tierfs::ParseSize(text);
  if (n.ok()) {
    // A size that parses formats back to something that parses.
    if (!tierfs::ParseSize(std::to_string(*n)).ok()) std::abort();
  }
  tierfs::MountConfig config;
  OneLine(tierfs::ApplyMountOptions(text, &config));
  OneLine(tierfs::ParseListenAddress(text).status());
  auto fluid = tierfs::FluidMountFromConfig(text);
  OneLine(fluid.status());
  if (fluid.ok() && fluid->config.mountpoint.empty()) std::abort();
  return 0;
}
