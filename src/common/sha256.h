// SHA-256 (OpenSSL), for content-addressed artifacts such as published indexes.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace tierfs {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(const void* data, size_t size);
  void Update(std::string_view s) { Update(s.data(), s.size()); }
  // The digest as 64 lower-case hex digits. Ends the hash: call once.
  std::string HexDigest();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

// The SHA-256 of a whole file, as hex.
Result<std::string> Sha256OfFile(const std::string& path);

// True if `s` looks like a SHA-256 hex digest (64 lower-case hex digits).
bool IsSha256Hex(std::string_view s);

}  // namespace tierfs
