#include "docker_worker/backoff.h"

#include <sodium.h>

#include <algorithm>
#include <cmath>

namespace docker_worker {

Millis Backoff::Delay(int exponent) const {
  const double unit = randombytes_uniform(1000001) / 1000000.0;  // [0, 1]
  const double ms = base_ms * std::pow(factor, exponent) * (1.0 + jitter * (2.0 * unit - 1.0));
  return Millis(static_cast<int64_t>(std::clamp(ms, min_ms, max_ms)));
}

}  // namespace docker_worker
