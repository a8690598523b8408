// gzip as upstream uploaded artifacts: default level, mtime 0, no file name, OS byte 3 (what
// zlib writes), so "xfoo\n" becomes exactly 1f8b0800000000000003ab48cbcfe70200a7e6f65005000000.
#pragma once

#include <string>
#include <vector>

#include "docker_worker/status.h"

namespace docker_worker {

// Compresses the file at `in` into a new file at `out`; returns the compressed size.
Result<int64_t> GzipFile(const std::string& in, const std::string& out);

// True unless `name` ends with one of `skip_extensions` (config
// artifacts.skipCompressionExtensions, compared case-sensitively as upstream did).
bool ShouldGzip(const std::string& name, const std::vector<std::string>& skip_extensions);

}  // namespace docker_worker
