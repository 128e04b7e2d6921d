// Rules for names that come from a remote listing. A remote store may hand us anything;
// only names that are safe as one POSIX path component are ever exposed.
#pragma once

#include <string>
#include <string_view>

namespace tierfs {

// True if `name` can be one component of a POSIX path: non-empty, at most 255 bytes, no
// '/', no NUL, and not "." or "..".
bool IsSafeName(std::string_view name);

// True if a symlink target stays inside the tree when resolved from a link at `depth`
// directories below the root (depth 0 = link in the root). Absolute targets are unsafe.
bool IsContainedSymlink(std::string_view target, int depth);

// `s` without leading and trailing blanks (spaces, tabs, CR, LF): for values read from
// config files and lists.
std::string TrimBlanks(std::string_view s);

}  // namespace tierfs
