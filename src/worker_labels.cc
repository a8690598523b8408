#include "docker_worker/worker_labels.h"

namespace docker_worker {

std::map<std::string, std::string> RunLabels(const std::string& worker_id,
                                             const std::string& task_id, int run_id) {
  return {{"docker-worker.managed", "true"},
          {kWorkerIdLabel, worker_id},
          {kTaskIdLabel, task_id},
          {kRunIdLabel, std::to_string(run_id)}};
}

std::string WorkerLabelFilter(const std::string& worker_id) {
  return std::string(kWorkerIdLabel) + "=" + worker_id;
}

std::string RunCommandLabelOwner(const std::string& worker_id, long pid) {
  return worker_id + "/run-" + std::to_string(pid);
}

std::string RunKey(const std::string& task_id, int run_id) {
  return task_id + "/" + std::to_string(run_id);
}

std::string RunKeyOf(const std::map<std::string, std::string>& labels) {
  auto task = labels.find(kTaskIdLabel);
  auto run = labels.find(kRunIdLabel);
  if (task == labels.end() || run == labels.end()) return "";
  return task->second + "/" + run->second;
}

}  // namespace docker_worker
