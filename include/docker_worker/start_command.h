// `docker-worker start`: the daemon. Claims tasks for one worker pool from a Taskcluster queue
// and runs them until SIGTERM/SIGINT (then running tasks are aborted with worker-shutdown after
// their logs are uploaded, and it exits 0).
//
// Settings layer defaults < --config FILE < environment (TASKCLUSTER_ROOT_URL,
// TASKCLUSTER_CLIENT_ID, TASKCLUSTER_ACCESS_TOKEN, TASKCLUSTER_CERTIFICATE) < flags
// (--root-url --provisioner-id --worker-type --worker-group --worker-id --capacity). The worker's
// own log is JSON lines on stdout. Exit codes: 0 after a shutdown, 64 bad usage or settings,
// 69 Docker engine unreachable.
#pragma once

#include <string>
#include <vector>

namespace docker_worker {

int StartCommand(const std::vector<std::string>& args);

}  // namespace docker_worker
