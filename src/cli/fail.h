// How every command reports failure: one line on stderr, "tierfs: <what went wrong>".
#pragma once

#include <cstdio>
#include <string>

#include "common/status.h"

namespace tierfs {

// Prints the message and returns the exit code 1.
inline int Fail(const std::string& message) {
  std::fprintf(stderr, "tierfs: %s\n", message.c_str());
  return 1;
}
inline int Fail(const Status& s) { return Fail(s.message()); }

}  // namespace tierfs
