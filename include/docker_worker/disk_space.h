// Free disk space, and how it limits claiming.
//
// The rule (upstream capacityManagement.diskspaceThreshold on the `dockerVolume` mount): each
// task about to be claimed must find `threshold` bytes free, i.e. the worker claims the largest
// n <= free slots with free bytes > threshold * n. With every slot free this is upstream's rule
// ("no claim while free <= threshold * free slots") for all n; where upstream then claimed
// nothing at all, this claims as many tasks as the space covers.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "docker_worker/status.h"

namespace docker_worker {

// Bytes available to unprivileged users on the filesystem holding `path` (statvfs f_bavail).
Result<uint64_t> FreeDiskBytes(const std::string& path);

// How the daemon reads free space (FreeDiskBytes unless a test substitutes one).
using DiskProbe = std::function<Result<uint64_t>(const std::string& path)>;

// How many of `free_slots` tasks may be claimed with `free_bytes` free. threshold 0: all.
int ClaimableTasks(uint64_t free_bytes, uint64_t threshold, int free_slots);

}  // namespace docker_worker
