// Backoff: the exponential shape, the jitter band and the clamps.
#include "docker_worker/backoff.h"

#include <catch2/catch.hpp>

#include "docker_worker/taskcluster_client.h"

namespace docker_worker {
namespace {

TEST_CASE("backoff: base * factor^n within the jitter band, clamped", "[unit]") {
  const Backoff b{.base_ms = 100, .factor = 2, .jitter = 0.25, .min_ms = 50, .max_ms = 30000};
  for (int i = 0; i < 200; ++i) {
    for (int n : {0, 1, 3}) {
      const double center = 100.0 * (1 << n);
      const auto d = b.Delay(n).count();
      CHECK(d >= static_cast<int64_t>(center * 0.75) - 1);
      CHECK(d <= static_cast<int64_t>(center * 1.25));
    }
    CHECK(b.Delay(20).count() == 30000);  // capped
    CHECK(Backoff{.base_ms = 1, .factor = 1, .jitter = 0, .min_ms = 50}.Delay(0).count() == 50);
  }
}

TEST_CASE("backoff: Taskcluster's client retry delays (100 ms * 2^n +-25 %, at most 30 s)",
          "[unit]") {
  for (int i = 0; i < 200; ++i) {
    CHECK(TaskclusterRetryDelay(1).count() >= 150);
    CHECK(TaskclusterRetryDelay(1).count() <= 250);
    CHECK(TaskclusterRetryDelay(5).count() >= 2400);
    CHECK(TaskclusterRetryDelay(5).count() <= 4000);
    CHECK(TaskclusterRetryDelay(12).count() == 30000);
  }
}

}  // namespace
}  // namespace docker_worker
