// The extended attributes a tierfs mount answers: the admin interface between the CLI
// (tierfs stats, warm, index refresh) and the daemon.
#pragma once

namespace tierfs {

// On the root: the daemon's counters as JSON.
inline constexpr const char* kStatsXattr = "user.tierfs.stats";
// On a file: pulls it whole into the cache; the value is its size.
inline constexpr const char* kWarmXattr = "user.tierfs.warm";
// On the root: checks for a new index revision now and switches to it; the value is the
// outcome in one line ("failed: ..." if it failed).
inline constexpr const char* kRefreshXattr = "user.tierfs.refresh";

}  // namespace tierfs
