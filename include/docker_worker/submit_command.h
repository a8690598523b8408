// `docker-worker submit TASK.json [--output DIR] [--root-url URL] [--task-id ID]`: createTask on
// a queue, follow the live log to stdout, print the resolution, download the artifacts.
//
// TASK.json is a task definition (a bare payload is wrapped for local-provisioner/docker-worker);
// created, deadline (+1 day) and metadata are filled when absent. Payload problems are warned
// about on stderr but the task is still submitted (the worker resolves it malformed-payload).
// Credentials and root URL come from the environment like every Taskcluster tool
// (TASKCLUSTER_ROOT_URL, TASKCLUSTER_CLIENT_ID, TASKCLUSTER_ACCESS_TOKEN,
// TASKCLUSTER_CERTIFICATE). Artifacts of the final run go to DIR/<name>, with DIR/result.json.
// Exit codes as `run`: 0 completed, 1 failed, 2 exception, 64 usage, 69 queue unreachable.
#pragma once

#include <string>
#include <vector>

namespace docker_worker {

int SubmitCommand(const std::vector<std::string>& args);

}  // namespace docker_worker
