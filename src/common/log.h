// Logging: spdlog behind a few functions, so only log.cc decides where lines go (stderr in
// the foreground, syslog once daemonized). Messages must never contain secrets.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

#include "common/status.h"

namespace tierfs {

// Sends log lines to stderr (the default; stdout is for command output).
void InitLogging();
// level: trace|debug|info|warn|error|off. Returns an error for an unknown level.
Status SetLogLevel(const std::string& level);
// Sends log lines to syslog (ident "tierfs") instead of stderr.
void LogToSyslog();

}  // namespace tierfs

#define TLOG_DEBUG(...) SPDLOG_DEBUG(__VA_ARGS__)
#define TLOG_INFO(...) spdlog::info(__VA_ARGS__)
#define TLOG_WARN(...) spdlog::warn(__VA_ARGS__)
#define TLOG_ERROR(...) spdlog::error(__VA_ARGS__)
