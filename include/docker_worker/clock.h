// Time, behind one interface so tests never sleep.
//
// Now() is wall-clock time (log timestamps, expiry checks, durations). SleepUntil() blocks the
// calling thread until Now() >= deadline or until `stop` is requested, whichever comes first;
// it returns true when the deadline was reached. Both are safe to call from any thread.
// SystemClock uses std::chrono::system_clock; ManualClock (test/fakes) moves only when told.
#pragma once

#include <chrono>
#include <stop_token>

namespace docker_worker {

using TimePoint = std::chrono::system_clock::time_point;
using Millis = std::chrono::milliseconds;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
  virtual bool SleepUntil(TimePoint deadline, std::stop_token stop) = 0;
};

class SystemClock final : public Clock {
 public:
  TimePoint Now() const override;
  bool SleepUntil(TimePoint deadline, std::stop_token stop) override;
};

// Milliseconds since the Unix epoch.
int64_t ToEpochMillis(TimePoint t);
TimePoint FromEpochMillis(int64_t ms);

}  // namespace docker_worker
