// A Clock that moves only when a test calls Advance() or Set(); sleepers wake as soon as the
// clock passes their deadline or their stop token fires. Thread-safe.
#pragma once

#include <condition_variable>
#include <mutex>

#include "fakes/bounded_wait.h"
#include "docker_worker/clock.h"

namespace docker_worker::testing {

class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimePoint start = FromEpochMillis(1767225600000))  // 2026-01-01
      : now_(start) {}

  TimePoint Now() const override {
    std::lock_guard lock(mu_);
    return now_;
  }

  bool SleepUntil(TimePoint deadline, std::stop_token stop) override {
    std::unique_lock lock(mu_);
    ++sleep_calls_;
    ++sleeping_;
    cv_.notify_all();
    bool reached = cv_.wait(lock, stop, [&] { return now_ >= deadline; });
    --sleeping_;
    cv_.notify_all();
    return reached;
  }

  void Advance(Millis d) {
    std::lock_guard lock(mu_);
    now_ += d;
    cv_.notify_all();
  }

  // Blocks until exactly `n` threads are inside SleepUntil.
  void WaitForSleepers(int n) {
    std::unique_lock lock(mu_);
    BoundedWait(cv_, lock, [&] { return sleeping_ == n; }, "sleeping threads");
  }

  int sleep_calls() const {
    std::lock_guard lock(mu_);
    return sleep_calls_;
  }

  // Blocks until SleepUntil has been entered `n` times in all since construction, so a test
  // can Advance exactly when the code under test is waiting.
  void WaitForSleepCalls(int n) {
    std::unique_lock lock(mu_);
    BoundedWait(cv_, lock, [&] { return sleep_calls_ >= n; }, "SleepUntil calls");
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable_any cv_;
  TimePoint now_;
  int sleep_calls_ = 0;
  int sleeping_ = 0;
};

}  // namespace docker_worker::testing
