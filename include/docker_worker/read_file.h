// Reading a whole (small) file into memory: keys, payloads, config, downloaded documents.
#pragma once

#include <cstddef>
#include <limits>
#include <string>

#include "docker_worker/status.h"

namespace docker_worker {

struct ReadFileOptions {
  // Longer files are refused (kInvalidArgument "cannot read P: larger than N bytes").
  size_t max_bytes = std::numeric_limits<size_t>::max();
  // Key material: every buffer that held file bytes is wiped on failure.
  bool secret = false;
};

// The bytes of the file at `path`. Errors: "cannot read P: <system reason>", kNotFound when the
// file does not exist, kUnavailable for other system errors.
Result<std::string> ReadWholeFile(const std::string& path, const ReadFileOptions& options = {});

}  // namespace docker_worker
