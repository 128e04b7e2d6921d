// AboutToBlock: a hint from code that is about to wait (a remote fetch, a disk read, a
// long copy) to whoever runs it. The FUSE loop serves short requests on the thread that
// holds the device and gives the device to another worker only when a request is going
// to take long; this is how it learns that. A thread without a hook ignores the hint.
#pragma once

namespace tierfs {

using BlockingHook = void (*)(void* arg);

// Installs `hook(arg)` for the calling thread (nullptr removes it).
void SetBlockingHook(BlockingHook hook, void* arg);

// Calls the calling thread's hook, if any.
void AboutToBlock();

// Process-wide: the daemon is shutting down. Code that may wait without bound (a read
// waiting for an unreachable source to come back) checks it and gives up.
void RequestShutdown();
bool ShutdownRequested();

}  // namespace tierfs
