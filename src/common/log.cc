#include "common/log.h"

#include <pthread.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <syslog.h>

namespace tierfs {

void InitLogging() {
  auto logger = spdlog::stderr_color_mt("tierfs");
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  spdlog::set_default_logger(logger);
}

Status SetLogLevel(const std::string& level) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") {
    return Status::Invalid("unknown log level '" + level +
                           "' (trace, debug, info, warn, error, off)");
  }
  spdlog::set_level(lvl);
  return Status::Ok();
}

void LogToSyslog() {
  auto level = spdlog::get_level();
  auto logger = spdlog::syslog_logger_mt("tierfs-syslog", "tierfs", LOG_PID, LOG_DAEMON);
  logger->set_pattern("%v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(level);
}

bool LogLimiter::Admit(uint64_t* suppressed) {
  MutexLock lock(mu_);
  auto now = std::chrono::steady_clock::now();
  if (now - window_start_ >= period_) {
    window_start_ = now;
    in_window_ = 0;
  }
  if (in_window_ >= burst_) {
    ++dropped_;
    return false;
  }
  ++in_window_;
  *suppressed = dropped_;
  dropped_ = 0;
  return true;
}

void SetThreadName(const char* name) { ::pthread_setname_np(::pthread_self(), name); }

}  // namespace tierfs
