#include "common/blocking.h"

#include <atomic>

namespace tierfs {

namespace {
std::atomic<bool> shutdown_requested{false};
thread_local BlockingHook tls_hook = nullptr;
thread_local void* tls_arg = nullptr;
}  // namespace

void SetBlockingHook(BlockingHook hook, void* arg) {
  tls_hook = hook;
  tls_arg = arg;
}

void AboutToBlock() {
  if (tls_hook != nullptr) tls_hook(tls_arg);
}

void RequestShutdown() { shutdown_requested.store(true, std::memory_order_release); }
bool ShutdownRequested() { return shutdown_requested.load(std::memory_order_acquire); }

}  // namespace tierfs
