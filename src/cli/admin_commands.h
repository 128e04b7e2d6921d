// Commands that talk to a running mount through its extended attributes:
//   tierfs stats MOUNTPOINT [--json] [--watch]
//   tierfs warm MOUNTPOINT [PATH...] [--threads N] [--list FILE]
//   tierfs unmount MOUNTPOINT
// Each returns the process exit code and prints one clear line on failure.
#pragma once

#include <string>
#include <vector>

namespace tierfs {

int RunStats(const std::string& mountpoint, bool json, bool watch);
int RunWarm(const std::string& mountpoint, const std::vector<std::string>& paths,
            const std::string& list_file, unsigned threads);
int RunUnmount(const std::string& mountpoint);

}  // namespace tierfs
