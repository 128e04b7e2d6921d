// Logging: spdlog behind a few functions, so only log.cc decides where lines go (stderr in
// the foreground, syslog once daemonized). Messages must never contain secrets.
#pragma once

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

#include "common/mutex.h"
#include "common/status.h"

namespace tierfs {

// Sends log lines to stderr (the default; stdout is for command output).
void InitLogging();
// level: trace|debug|info|warn|error|off. Returns an error for an unknown level.
Status SetLogLevel(const std::string& level);
// Sends log lines to syslog (ident "tierfs") instead of stderr.
void LogToSyslog();

// Names the calling thread (at most 15 characters show), for top -H, perf and gdb.
void SetThreadName(const char* name);

// Bounds how often one kind of log line is written, so a remote that fails every request
// cannot flood the log: at most `burst` lines per `period`. The first line admitted after
// some were dropped is told how many. Thread-safe.
class LogLimiter {
 public:
  LogLimiter(int burst, std::chrono::milliseconds period) : burst_(burst), period_(period) {}
  // True if a line may be written now; `*suppressed` gets the number dropped since the
  // last line written.
  bool Admit(uint64_t* suppressed);

 private:
  const int burst_;
  const std::chrono::milliseconds period_;
  Mutex mu_;
  std::chrono::steady_clock::time_point window_start_ GUARDED_BY(mu_){};
  int in_window_ GUARDED_BY(mu_) = 0;
  uint64_t dropped_ GUARDED_BY(mu_) = 0;
};

}  // namespace tierfs

// Checked at run time (--log-level debug works in release builds). A debug line's
// arguments are not even evaluated when the level is off: some build strings on hot paths.
#define TLOG_DEBUG(...)                                                       \
  do {                                                                        \
    if (spdlog::should_log(spdlog::level::debug)) spdlog::debug(__VA_ARGS__); \
  } while (0)
#define TLOG_INFO(...) spdlog::info(__VA_ARGS__)
#define TLOG_WARN(...) spdlog::warn(__VA_ARGS__)
#define TLOG_ERROR(...) spdlog::error(__VA_ARGS__)
// A warning through a LogLimiter; `format` must be a string literal.
#define TLOG_WARN_LIMITED(limiter, format, ...)                                               \
  do {                                                                                        \
    uint64_t tlog_suppressed_ = 0;                                                            \
    if ((limiter).Admit(&tlog_suppressed_)) {                                                 \
      if (tlog_suppressed_) {                                                                 \
        spdlog::warn(format " ({} similar lines suppressed)", __VA_ARGS__, tlog_suppressed_); \
      } else {                                                                                \
        spdlog::warn(format, __VA_ARGS__);                                                    \
      }                                                                                       \
    }                                                                                         \
  } while (0)
