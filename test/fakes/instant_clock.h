// A Clock whose sleeps return at once after moving time to the deadline, for code that retries
// with backoff: the test sees how long it would have waited (slept()) without waiting.
#pragma once

#include <mutex>

#include "docker_worker/clock.h"

namespace docker_worker::testing {

class InstantClock final : public Clock {
 public:
  TimePoint Now() const override {
    std::lock_guard lock(mu_);
    return now_;
  }
  bool SleepUntil(TimePoint deadline, std::stop_token stop) override {
    if (stop.stop_requested()) return false;
    std::lock_guard lock(mu_);
    if (deadline > now_) {
      slept_ += deadline - now_;
      now_ = deadline;
    }
    ++sleeps_;
    return true;
  }
  Millis slept() const {
    std::lock_guard lock(mu_);
    return std::chrono::duration_cast<Millis>(slept_);
  }
  int sleeps() const {
    std::lock_guard lock(mu_);
    return sleeps_;
  }

 private:
  mutable std::mutex mu_;
  TimePoint now_ = FromEpochMillis(1735689600000);  // 2025-01-01
  TimePoint::duration slept_{};
  int sleeps_ = 0;
};

}  // namespace docker_worker::testing
