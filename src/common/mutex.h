// Mutex and MutexLock: std::mutex with clang's thread-safety annotations, so the compiler
// checks the locking rules a comment used to state. The lint build (tools/lint: clang-tidy
// with -Wthread-safety) fails when a field marked GUARDED_BY(mu_) is touched without mu_
// held, or a function marked REQUIRES(mu_) is called without it. Under GCC the
// annotations are empty; the types behave as std::mutex and std::unique_lock.
//
//   mutable Mutex mu_;
//   std::deque<Job> queue_ GUARDED_BY(mu_);
//   void DrainLocked() REQUIRES(mu_);
//
//   MutexLock lock(mu_);
//   cv_.wait(lock.native(), [&]() REQUIRES(mu_) { return !queue_.empty(); });
//
// A condition variable's predicate is a function of its own to the analysis: annotate it
// REQUIRES(mu_) as above (the wait calls it with the mutex held).
#pragma once

#include <mutex>

#if defined(__clang__)
#define TIERFS_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define TIERFS_THREAD_ANNOTATION(x)
#endif

#define CAPABILITY(x) TIERFS_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY TIERFS_THREAD_ANNOTATION(scoped_lockable)
#define GUARDED_BY(x) TIERFS_THREAD_ANNOTATION(guarded_by(x))
#define PT_GUARDED_BY(x) TIERFS_THREAD_ANNOTATION(pt_guarded_by(x))
#define REQUIRES(...) TIERFS_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define EXCLUDES(...) TIERFS_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define ACQUIRE(...) TIERFS_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) TIERFS_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) TIERFS_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define NO_THREAD_SAFETY_ANALYSIS TIERFS_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace tierfs {

class CAPABILITY("mutex") Mutex {
 public:
  void lock() ACQUIRE() { mu_.lock(); }
  void unlock() RELEASE() { mu_.unlock(); }
  bool try_lock() TRY_ACQUIRE(true) { return mu_.try_lock(); }

 private:
  friend class MutexLock;
  std::mutex mu_;
};

// Holds a Mutex for its scope (or until Unlock). native() is for std::condition_variable.
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ACQUIRE(mu) : lock_(mu.mu_) {}
  ~MutexLock() RELEASE() {}
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void Unlock() RELEASE() { lock_.unlock(); }
  void Lock() ACQUIRE() { lock_.lock(); }
  std::unique_lock<std::mutex>& native() { return lock_; }

 private:
  std::unique_lock<std::mutex> lock_;
};

}  // namespace tierfs
