#include "docker_worker/read_file.h"

#include <sodium.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace docker_worker {

Result<std::string> ReadWholeFile(const std::string& path, const ReadFileOptions& options) {
  auto fail = [&](Code code, const std::string& reason) {
    return Status(code, "cannot read " + path + ": " + reason);
  };
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return fail(errno == ENOENT ? Code::kNotFound : Code::kUnavailable, std::strerror(errno));
  std::string data;
  char buf[16384];
  size_t n;
  bool too_large = false;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
    if (n > options.max_bytes - data.size()) {
      too_large = true;
      break;
    }
    data.append(buf, n);
  }
  const bool failed = std::ferror(f) != 0;
  const int saved = errno;
  std::fclose(f);
  if (options.secret) sodium_memzero(buf, sizeof buf);
  if (failed || too_large) {
    if (options.secret) sodium_memzero(data.data(), data.size());
    if (too_large) {
      return fail(Code::kInvalidArgument,
                  "larger than " + std::to_string(options.max_bytes) + " bytes");
    }
    return fail(Code::kUnavailable, std::strerror(saved));
  }
  return data;
}

}  // namespace docker_worker
