// Retry delays: exponential backoff with uniform jitter, the shape every Taskcluster client and
// upstream's pulls and uploads use (each with its own numbers).
#pragma once

#include <limits>

#include "docker_worker/clock.h"

namespace docker_worker {

struct Backoff {
  double base_ms;       // delay at exponent 0, before jitter
  double factor;        // growth per step
  double jitter;        // +-fraction, uniform (0.25: between 75 % and 125 %)
  double min_ms = 0;    // the result is clamped to [min_ms, max_ms]
  double max_ms = std::numeric_limits<double>::infinity();

  // base * factor^exponent * (1 +- jitter), clamped.
  Millis Delay(int exponent) const;
};

}  // namespace docker_worker
