// Status and Result<T>: how every layer of tierfs reports failure.
//
// A Status carries a POSIX errno (0 = OK) and a message for humans. The errno is what
// reaches a FUSE reader; the message is what reaches a log line or the CLI's one-line
// error. Neither throws. Both are cheap to move.
#pragma once

#include <cassert>
#include <cerrno>
#include <string>
#include <utility>
#include <variant>

namespace tierfs {

class [[nodiscard]] Status {
 public:
  Status() = default;
  // Control characters in `message` (a newline from a hostile name or a typo'd option) are
  // written as \xNN, so a message is always one line.
  Status(int err, std::string message) : errno_(err), message_(OneLine(std::move(message))) {}

  static Status Ok() { return Status(); }
  static Status NotFound(std::string m) { return {ENOENT, std::move(m)}; }
  static Status Io(std::string m) { return {EIO, std::move(m)}; }
  static Status Invalid(std::string m) { return {EINVAL, std::move(m)}; }
  static Status ReadOnly(std::string m) { return {EROFS, std::move(m)}; }
  static Status FromErrno(int err, const std::string& what);  // "what: strerror(err)"

  bool ok() const { return errno_ == 0; }
  int error() const { return errno_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

 private:
  int errno_ = 0;
  static std::string OneLine(std::string message);
  std::string message_;
};

// Result<T> holds either a value or a non-OK Status. Built from an OK status (a bug: there
// is no value to hand out) it holds EIO instead, so a caller that tests ok() never reads a
// missing value and never replies errno 0 to the kernel; debug builds stop there.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}                // NOLINT: implicit by design
  Result(Status status) : v_(NotOk(std::move(status))) {}  // NOLINT: implicit by design

  bool ok() const { return v_.index() == 0; }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<1>(v_);
  }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  static Status NotOk(Status s) {
    assert(!s.ok() && "Result built from an OK status");
    if (s.ok()) return Status::Io("internal error: a result without a value");
    return s;
  }
  std::variant<T, Status> v_;
};

}  // namespace tierfs

// Propagates a non-OK Status from an expression returning Status.
#define TIERFS_RETURN_IF_ERROR(expr) \
  do {                               \
    ::tierfs::Status _st = (expr);   \
    if (!_st.ok()) return _st;       \
  } while (0)
