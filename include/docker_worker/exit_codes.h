// Exit codes shared by every verb: a task's resolution (run, submit), and sysexits-style codes
// for usage errors and unreachable services.
#pragma once

#include "docker_worker/status.h"

namespace docker_worker {

inline constexpr int kExitUsage = 64;        // bad arguments, unreadable input or settings
inline constexpr int kExitUnavailable = 69;  // Docker engine, queue or port not available

// 0 completed, 1 failed, 2 exception.
inline int ExitCodeFor(RunState state) {
  switch (state) {
    case RunState::kCompleted:
      return 0;
    case RunState::kFailed:
      return 1;
    case RunState::kException:
      return 2;
  }
  return 2;
}

}  // namespace docker_worker
