#include "docker_worker/clock.h"

#include <condition_variable>
#include <mutex>

namespace docker_worker {

TimePoint SystemClock::Now() const { return std::chrono::system_clock::now(); }

bool SystemClock::SleepUntil(TimePoint deadline, std::stop_token stop) {
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock lock(mu);
  cv.wait_until(lock, stop, deadline, [] { return false; });
  return !stop.stop_requested() && Now() >= deadline;
}

int64_t ToEpochMillis(TimePoint t) {
  return std::chrono::duration_cast<Millis>(t.time_since_epoch()).count();
}

TimePoint FromEpochMillis(int64_t ms) { return TimePoint(Millis(ms)); }

}  // namespace docker_worker
