// Waits in fakes that a test relies on: bounded, so a bug fails the test within a minute with a
// message instead of hanging until ctest's timeout. The bound is a safety net, never a timing.
#pragma once

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace docker_worker::testing {

// cv.wait(lock, pred), or abort naming `what` after 60 s.
template <typename CV, typename Pred>
void BoundedWait(CV& cv, std::unique_lock<std::mutex>& lock, Pred pred, const char* what) {
  if (!cv.wait_for(lock, std::chrono::seconds(60), pred)) {
    std::fprintf(stderr, "test fake: gave up after 60 s waiting for %s\n", what);
    std::abort();
  }
}

}  // namespace docker_worker::testing
