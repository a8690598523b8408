#include "docker_worker/disk_space.h"

#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>

namespace docker_worker {

Result<uint64_t> FreeDiskBytes(const std::string& path) {
  struct statvfs st {};
  if (::statvfs(path.c_str(), &st) != 0) {
    return Status(Code::kUnavailable,
                  "cannot read the free space of " + path + ": " + std::strerror(errno));
  }
  return static_cast<uint64_t>(st.f_bavail) * static_cast<uint64_t>(st.f_frsize);
}

int ClaimableTasks(uint64_t free_bytes, uint64_t threshold, int free_slots) {
  if (free_slots <= 0) return 0;
  if (threshold == 0) return free_slots;
  uint64_t n = free_bytes / threshold;
  if (n * threshold == free_bytes && n > 0) --n;  // strictly more than threshold * n
  return n >= static_cast<uint64_t>(free_slots) ? free_slots : static_cast<int>(n);
}

}  // namespace docker_worker
