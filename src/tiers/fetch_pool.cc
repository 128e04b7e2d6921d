#include "tiers/fetch_pool.h"

#include <algorithm>

#include "common/log.h"

namespace tierfs {
namespace {
thread_local bool on_pool_thread = false;
}  // namespace

// A demand read keeps an eighth of the slots (at least one) to itself.
FetchPool::FetchPool(unsigned slots)
    : slots_(std::max(1u, slots)),
      non_demand_slots_(slots_ == 1 ? 1 : slots_ - std::max(1u, slots_ / 8)) {}

FetchPool::~FetchPool() { Stop(); }

bool FetchPool::OnPoolThread() { return on_pool_thread; }

void FetchPool::Start() {
  MutexLock lock(mu_);
  if (!threads_.empty()) return;
  stopping_ = false;
  for (unsigned i = 0; i < slots_; ++i) {
    threads_.emplace_back([this] {
      SetThreadName("tierfs-fetch");
      on_pool_thread = true;
      Loop();
    });
  }
  running_ = true;
}

void FetchPool::Stop() {
  std::vector<std::thread> threads;
  {
    MutexLock lock(mu_);
    running_ = false;
    stopping_ = true;
    threads.swap(threads_);
  }
  cv_.notify_all();
  for (auto& t : threads) t.join();
}

bool FetchPool::Submit(Class c, std::function<void()> job) {
  {
    MutexLock lock(mu_);
    if (!running_) return false;
    queues_[static_cast<int>(c)].push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

bool FetchPool::TakeLocked(std::function<void()>* job, Class* c) {
  for (int i = 0; i < 3; ++i) {
    if (queues_[i].empty()) continue;
    // Stopping: everything queued runs (and answers "unmounting") whatever its class.
    if (i != 0 && non_demand_busy_ >= non_demand_slots_ && !stopping_) return false;
    *job = std::move(queues_[i].front());
    queues_[i].pop_front();
    *c = static_cast<Class>(i);
    return true;
  }
  return false;
}

void FetchPool::Loop() {
  MutexLock lock(mu_);
  while (true) {
    std::function<void()> job;
    Class c = Class::kDemand;
    cv_.wait(lock.native(), [&]() REQUIRES(mu_) {
      return TakeLocked(&job, &c) ||
             (stopping_ && queues_[0].empty() && queues_[1].empty() && queues_[2].empty());
    });
    if (!job) return;  // stopping and nothing left
    ++busy_;
    if (c != Class::kDemand) ++non_demand_busy_;
    ++jobs_[static_cast<int>(c)];
    running_peak_ = std::max<uint64_t>(running_peak_, busy_);
    lock.Unlock();
    job();
    job = nullptr;  // captured state goes before the slot is given back
    lock.Lock();
    --busy_;
    if (c != Class::kDemand) --non_demand_busy_;
    // A slot freed may let a held-back warm or background job go.
    if (c != Class::kDemand) cv_.notify_one();
  }
}

uint64_t FetchPool::non_demand_pending() const {
  MutexLock lock(mu_);
  return queues_[1].size() + queues_[2].size() + non_demand_busy_;
}

FetchPool::Stats FetchPool::GetStats() const {
  MutexLock lock(mu_);
  Stats s;
  s.slots = slots_;
  for (int i = 0; i < 3; ++i) {
    s.jobs[i] = jobs_[i];
    s.queued += queues_[i].size();
  }
  s.running = busy_;
  s.running_peak = running_peak_;
  return s;
}

}  // namespace tierfs
