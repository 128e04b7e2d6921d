// MetricsServer: serves MetricsRegistry::Global() as Prometheus text at /metrics over
// HTTP (cpp-httplib), for `tierfs mount --metrics ADDR`.
//
// Bind() opens the socket (so a bad or busy address fails the mount at once, before it
// detaches) and starts no thread; Start() serves from background threads; Stop() (or the
// destructor) closes it. Not copyable.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "common/status.h"

namespace httplib {
class Server;
}

namespace tierfs {

struct ListenAddress {
  std::string host;
  int port = 0;
};

// Parses "HOST:PORT", "[V6]:PORT" or "PORT" (loopback).
Result<ListenAddress> ParseListenAddress(const std::string& text);

class MetricsServer {
 public:
  MetricsServer();
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  Status Bind(const std::string& address);
  void Start();
  void Stop();
  int port() const { return port_; }

 private:
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace tierfs
