#include "metadata/index_diff.h"

#include <vector>

namespace tierfs {
namespace {

struct Child {
  std::string name;
  Entry entry;
};

Result<std::vector<Child>> Children(Index& index, uint64_t dir) {
  std::vector<Child> out;
  Status s = index.ReadDir(dir, 0, [&](std::string_view name, const Entry& e, uint64_t) {
    out.push_back(Child{std::string(name), e});
    return true;
  });
  if (!s.ok()) return s;
  return out;
}

bool SameAttrs(const Entry& a, const Entry& b) {
  return a.mode == b.mode && a.mtime_ns == b.mtime_ns && a.size == b.size &&
         a.version == b.version && a.link_target == b.link_target && a.key == b.key;
}

}  // namespace

Result<DiffCounts> DiffIndexes(Index& old_index, Index& new_index,
                               const std::function<void(const IndexChange&)>& sink) {
  using Kind = IndexChange::Kind;
  DiffCounts counts;
  auto old_root = old_index.GetAttr(kRootIno);
  if (!old_root.ok()) return old_root.status();
  auto new_root = new_index.GetAttr(kRootIno);
  if (!new_root.ok()) return new_root.status();
  if (!SameAttrs(*old_root, *new_root)) {
    ++counts.attrs;
    sink({Kind::kAttrs, kRootIno, {}});
  }
  std::vector<uint64_t> dirs{kRootIno};  // directories with the same inode in both
  while (!dirs.empty()) {
    const uint64_t dir = dirs.back();
    dirs.pop_back();
    auto a = Children(old_index, dir);
    if (!a.ok()) return a.status();
    auto b = Children(new_index, dir);
    if (!b.ok()) return b.status();
    bool listing_changed = false;
    size_t i = 0, j = 0;
    while (i < a->size() || j < b->size()) {
      const int order = i == a->size()   ? 1
                        : j == b->size() ? -1
                                         : (*a)[i].name.compare((*b)[j].name);
      if (order < 0) {
        ++counts.removed;
        sink({Kind::kRemoved, dir, (*a)[i++].name});
        listing_changed = true;
        continue;
      }
      if (order > 0) {
        ++counts.added;
        sink({Kind::kAdded, dir, (*b)[j++].name});
        listing_changed = true;
        continue;
      }
      const Entry& x = (*a)[i].entry;
      const Entry& y = (*b)[j].entry;
      if (x.ino != y.ino || x.type != y.type) {
        ++counts.replaced;
        sink({Kind::kReplaced, dir, (*a)[i].name});
        listing_changed = true;
      } else {
        if (!SameAttrs(x, y)) {
          ++counts.attrs;
          sink({Kind::kAttrs, x.ino, {}});
        }
        if (x.is_dir()) dirs.push_back(x.ino);
      }
      ++i;
      ++j;
    }
    if (listing_changed) sink({Kind::kListing, dir, {}});
  }
  return counts;
}

}  // namespace tierfs
