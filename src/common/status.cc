#include "common/status.h"

#include <cstdio>
#include <cstring>

namespace tierfs {

Status Status::FromErrno(int err, const std::string& what) {
  return Status(err == 0 ? EIO : err, what + ": " + std::strerror(err));
}

std::string Status::OneLine(std::string message) {
  bool clean = true;
  for (unsigned char c : message) clean = clean && c >= 0x20 && c != 0x7f;
  if (clean) return message;
  std::string out;
  out.reserve(message.size() + 8);
  for (unsigned char c : message) {
    if (c >= 0x20 && c != 0x7f) {
      out += static_cast<char>(c);
    } else {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return message_;
}

}  // namespace tierfs
