// The worker's own log: one JSON object a line, {"time": ISO, "type": <event>, ...fields}.
//
// Written to a FILE* it does not own (stdout for the daemon, stderr for `run`); a null FILE*
// discards everything. Thread-safe; each line is written and flushed whole. Never pass
// secrets as fields.
#pragma once

#include <cstdio>
#include <initializer_list>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace docker_worker {

class WorkerLog {
 public:
  explicit WorkerLog(FILE* out) : out_(out) {}

  using Fields = std::initializer_list<std::pair<std::string_view, std::string_view>>;
  void Event(std::string_view type, Fields fields = {});

 private:
  FILE* out_;
  std::mutex mu_;
};

}  // namespace docker_worker
