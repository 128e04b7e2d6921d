#include "common/blocking.h"

namespace tierfs {

namespace {
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

}  // namespace tierfs
