#include "cli/metrics_server.h"

#include <httplib.h>

#include <charconv>

#include "common/metrics.h"

namespace tierfs {

Result<ListenAddress> ParseListenAddress(const std::string& text) {
  ListenAddress a;
  std::string port;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Status::Invalid("--metrics '" + text + "': expected [ADDRESS]:PORT");
    }
    a.host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else if (size_t colon = text.rfind(':'); colon != std::string::npos) {
    a.host = text.substr(0, colon);
    port = text.substr(colon + 1);
  } else {
    port = text;
  }
  if (a.host.empty()) a.host = "127.0.0.1";
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), a.port);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || a.port < 1 ||
      a.port > 65535) {
    return Status::Invalid("--metrics '" + text + "': port must be a number from 1 to 65535");
  }
  return a;
}

MetricsServer::MetricsServer() = default;

MetricsServer::~MetricsServer() { Stop(); }

Status MetricsServer::Bind(const std::string& address) {
  auto a = ParseListenAddress(address);
  if (!a.ok()) return a.status();
  server_ = std::make_unique<httplib::Server>();
  server_->Get("/metrics", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(MetricsRegistry::Global().Render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  server_->Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("tierfs: metrics at /metrics\n", "text/plain");
  });
  // httplib's default also sets SO_REUSEPORT, which would let a second mount share a port.
  server_->set_socket_options([](int sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  if (!server_->bind_to_port(a->host, a->port)) {
    server_.reset();
    return Status(EADDRINUSE,
                  "--metrics: cannot listen on " + address + " (address in use or not local)");
  }
  port_ = a->port;
  return Status::Ok();
}

void MetricsServer::Start() {
  if (!server_ || thread_.joinable()) return;
  thread_ = std::thread([this] { server_->listen_after_bind(); });
}

void MetricsServer::Stop() {
  if (!server_) return;
  server_->stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
}

}  // namespace tierfs
