#include "common/status.h"

#include <cstring>

namespace tierfs {

Status Status::FromErrno(int err, const std::string& what) {
  return Status(err == 0 ? EIO : err, what + ": " + std::strerror(err));
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return message_;
}

}  // namespace tierfs
