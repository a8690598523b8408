// `docker-worker run FILE [--output DIR] [--task-id ID] [--scope S]... [--config FILE]`:
// one task, no queue, the same TaskRun the daemon uses.
//
// The task log goes to stdout as it is written, diagnostics to stderr. DIR receives
// result.json, artifacts/<name> and logs/live_backing.log. Exit codes: 0 completed, 1 failed,
// 2 exception, 64 usage or unreadable input, 69 Docker engine unreachable. SIGINT/SIGTERM abort
// the task like a worker shutdown (exception worker-shutdown, container removed, result written).
#pragma once

#include <string>
#include <vector>

namespace docker_worker {

int RunCommand(const std::vector<std::string>& args);

}  // namespace docker_worker
