// FuseServer: binds a Filesystem to the kernel through libfuse's low-level API.
//
// The only code that talks to libfuse. Construction does nothing; Mount() creates the
// session and mounts; Run() serves requests on a multithreaded loop until unmounted or
// signalled (SIGTERM/SIGINT/SIGHUP), then unmounts. No exception crosses into libfuse:
// every entry point catches and replies EIO.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "common/status.h"
#include "fuse/device_channel.h"
#include "fuse/filesystem.h"

struct fuse_session;

namespace tierfs {

struct FuseContext;  // lowlevel.cc: what the op functions need of a mount

struct FuseServerOptions {
  std::string fsname;         // shown in /proc/mounts (must hold no secrets)
  std::string extra_options;  // user's -o options, comma-separated
  unsigned max_threads = 0;   // 0 = a default sized to the machine
  unsigned spin_us = 200;     // an idle worker polls the device this long before sleeping
  bool debug = false;
  // Ask the kernel for FUSE passthrough (see fuse/device_channel.h); opens of files whose
  // objects are fully cached then read their backing files without the daemon.
  bool passthrough = false;
  int stack_depth = 1;  // max_stack_depth for passthrough (StackDepthFor the cache dir)
  // Serve requests over io_uring where the kernel allows it (see fuse/uring_transport.h),
  // with this many workers per CPU queue.
  bool fuse_uring = false;
  unsigned uring_threads_per_queue = 4;
  // The kernel's read-ahead for the mount; its blocks land in the RAM tier, so a small
  // RAM tier gets less (RunMount: a quarter of it, 32 MiB at most).
  unsigned read_ahead_kb = 32768;
};

class FuseServer {
 public:
  FuseServer(Filesystem& fs, FuseServerOptions options);
  ~FuseServer();
  FuseServer(const FuseServer&) = delete;
  FuseServer& operator=(const FuseServer&) = delete;

  // Checks mount options the way Mount() will, without mounting: an unknown option is a
  // clear error before any work is done.
  static Status ValidateOptions(const std::string& extra_options);

  // Creates the session and mounts at `mountpoint`. On failure nothing stays mounted.
  Status Mount(const std::string& mountpoint);
  // Serves until unmounted or signalled, then unmounts. Blocks.
  Status Run();
  // Asks a running loop to exit (async-signal-safe enough for handlers: sets a flag).
  void Exit();
  // The passthrough channel, when asked for and mounted (null otherwise).
  const DeviceChannel* passthrough() const;
  // The request transport in use and what it served, as a JSON object (for stats).
  nlohmann::json TransportJson() const;

 private:
  Filesystem& fs_;
  FuseServerOptions options_;
  fuse_session* session_ = nullptr;
  std::string mountpoint_;
  bool mounted_ = false;
  std::unique_ptr<FuseContext> context_;  // the libfuse userdata, once mounting starts
};

// Raises the kernel read-ahead of the mount at `mountpoint` to `kb` KiB (best effort).
void RaiseReadAhead(const std::string& mountpoint, unsigned kb);

}  // namespace tierfs
