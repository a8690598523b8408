// The labels that mark Docker objects (task containers, proxy networks, volumes) as created by
// one worker for one run. They are how the worker finds its own leftovers (garbage_collector.h)
// and how it knows never to touch anything else: an object is this worker's exactly when its
// docker-worker.worker-id label equals the worker's id. `docker-worker run` labels its objects
// with an owner of its own (RunCommandLabelOwner).
#pragma once

#include <map>
#include <string>

namespace docker_worker {

inline constexpr const char* kWorkerIdLabel = "docker-worker.worker-id";
inline constexpr const char* kTaskIdLabel = "docker-worker.task-id";
inline constexpr const char* kRunIdLabel = "docker-worker.run-id";

// docker-worker.managed=true, worker-id, task-id and run-id.
std::map<std::string, std::string> RunLabels(const std::string& worker_id,
                                             const std::string& task_id, int run_id);

// The label filter selecting this worker's objects: "docker-worker.worker-id=<id>".
std::string WorkerLabelFilter(const std::string& worker_id);

// The docker-worker.worker-id label value of objects made by `docker-worker run` process `pid`
// with worker id `worker_id`: "<workerId>/run-<pid>". A daemon's id cannot contain '/'
// (start_command.cc), so no daemon's filter, not even one of the same worker id on the same
// host, selects them: a daemon never sweeps a running `run`'s container or network.
std::string RunCommandLabelOwner(const std::string& worker_id, long pid);

// "<taskId>/<runId>" of a run, and of an object from its labels ("" when it has none).
std::string RunKey(const std::string& task_id, int run_id);
std::string RunKeyOf(const std::map<std::string, std::string>& labels);

}  // namespace docker_worker
