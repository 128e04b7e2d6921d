#include "tiers/hedger.h"

#include <algorithm>

#include "common/log.h"

namespace tierfs {
namespace {
constexpr size_t kSamples = 512;
}  // namespace

Hedger::Hedger(Options options) : options_(options) { samples_.reserve(kSamples); }

Hedger::~Hedger() { Stop(); }

void Hedger::Start() {
  MutexLock lock(mu_);
  if (watcher_.joinable()) return;
  stopping_ = false;
  watcher_ = std::thread([this] {
    SetThreadName("tierfs-hedge");
    Watch();
  });
}

void Hedger::Stop() {
  std::thread t;
  {
    MutexLock lock(mu_);
    stopping_ = true;
    t.swap(watcher_);
  }
  cv_.notify_all();
  if (t.joinable()) t.join();
}

uint64_t Hedger::Begin(std::function<void()> second) {
  MutexLock lock(mu_);
  const uint64_t id = next_id_++;
  in_flight_.emplace(id, Fetch{Clock::now(), std::move(second)});
  if (in_flight_.size() == 1) cv_.notify_all();  // the watcher sleeps while none are
  return id;
}

void Hedger::End(uint64_t id, bool ok) {
  std::function<void()> unused;  // destroyed outside the lock
  MutexLock lock(mu_);
  auto it = in_flight_.find(id);
  if (it == in_flight_.end()) return;
  // A straggler's own time stays out of the samples: counting it would raise the p99 until
  // stragglers no longer looked like stragglers (1 in 20 of them is already past a p99).
  const bool hedged = !it->second.second;
  if (ok && !hedged) {
    const int64_t took = (Clock::now() - it->second.started).count();
    if (samples_.size() < kSamples) {
      samples_.push_back(took);
    } else {
      samples_[next_sample_] = took;
    }
    next_sample_ = (next_sample_ + 1) % kSamples;
    const bool known = threshold_.count() != 0;
    if (++since_update_ >= 16 || samples_.size() == options_.min_samples) UpdateThresholdLocked();
    if (!known && threshold_.count() != 0) cv_.notify_all();
  }
  unused = std::move(it->second.second);
  in_flight_.erase(it);
}

void Hedger::UpdateThresholdLocked() {
  since_update_ = 0;
  if (samples_.size() < options_.min_samples) return;
  std::vector<int64_t> sorted = samples_;
  const size_t at = sorted.size() * 99 / 100;
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<ptrdiff_t>(at), sorted.end());
  const auto p99 = std::chrono::nanoseconds(sorted[at]);
  threshold_ = std::max<std::chrono::nanoseconds>(
      options_.floor, std::chrono::nanoseconds(static_cast<int64_t>(
                          static_cast<double>(p99.count()) * options_.multiple)));
}

std::chrono::nanoseconds Hedger::threshold() const {
  MutexLock lock(mu_);
  return threshold_;
}

uint64_t Hedger::hedged() const {
  MutexLock lock(mu_);
  return hedged_;
}

// Wakes a few times per threshold while fetches are in flight and starts the second
// request of each that has run past it.
void Hedger::Watch() {
  MutexLock lock(mu_);
  while (!stopping_) {
    if (in_flight_.empty() || threshold_.count() == 0) {
      // Asleep until there is something to watch: Begin wakes it for the first fetch in
      // flight, End when the threshold is first known (an idle mount never wakes).
      cv_.wait(lock.native(), [&]() REQUIRES(mu_) {
        return stopping_ || (!in_flight_.empty() && threshold_.count() != 0);
      });
      continue;
    }
    const auto now = Clock::now();
    std::vector<std::function<void()>> due;
    for (auto& [id, f] : in_flight_) {
      if (f.second && now - f.started > threshold_) due.push_back(std::move(f.second));
    }
    hedged_ += due.size();
    const auto tick =
        std::max<std::chrono::nanoseconds>(threshold_ / 4, std::chrono::milliseconds(2));
    lock.Unlock();
    for (auto& second : due) second();
    due.clear();
    lock.Lock();
    cv_.wait_for(lock.native(), tick);
  }
}

}  // namespace tierfs
