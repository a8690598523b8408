// A task log sink that keeps everything written, for tests that read the log back.
#pragma once

#include <mutex>
#include <string>
#include <string_view>

#include "docker_worker/task_log.h"

namespace docker_worker::testing {

class StringSink final : public LogSink {
 public:
  bool Write(std::string_view bytes) override {
    std::lock_guard lock(mu_);
    text_.append(bytes);
    return true;
  }
  std::string text() const {
    std::lock_guard lock(mu_);
    return text_;
  }

 private:
  mutable std::mutex mu_;
  std::string text_;
};

}  // namespace docker_worker::testing
