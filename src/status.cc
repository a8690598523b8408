#include "docker_worker/status.h"

namespace docker_worker {

const char* RunStateName(RunState state) {
  switch (state) {
    case RunState::kCompleted:
      return "completed";
    case RunState::kFailed:
      return "failed";
    case RunState::kException:
      return "exception";
  }
  return "exception";
}

Status Status::TaskFailed(std::string message) {
  return Status(Code::kInternal, std::move(message)).WithResolution(Resolution::Failed());
}

Status Status::TaskException(std::string reason, std::string message) {
  return Status(Code::kInternal, std::move(message))
      .WithResolution(Resolution::Exception(std::move(reason)));
}

Status Status::WithResolution(Resolution resolution) const {
  Status copy = *this;
  copy.resolution_ = std::move(resolution);
  return copy;
}

Status Status::Prefixed(const std::string& prefix) const {
  Status copy = *this;
  copy.message_ = prefix + message_;
  return copy;
}

}  // namespace docker_worker
