// What a feature sees of a task run: its inputs, the run's queue, engine, log and clock, and the
// places where features add to the task container. Never TaskRun internals.
//
// Owned by TaskRun, which outlives every use. Fields below "filled in as the run goes" are
// written by TaskRun on its own thread before the hook that needs them; features write the
// contribution fields only from Link. artifact_hashes may be written by any hook (lock mu).
#pragma once

#include <map>
#include <mutex>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

#include "docker_worker/clock.h"
#include "docker_worker/docker_engine.h"
#include "docker_worker/live_log_server.h"
#include "docker_worker/run_queue.h"
#include "docker_worker/task_definition.h"
#include "docker_worker/taskcluster_client.h"
#include "docker_worker/task_log.h"
#include "docker_worker/worker_config.h"

namespace docker_worker {

struct TaskContext {
  TaskContext(const WorkerConfig& config, const TaskDefinition& task, std::string task_id,
              int run_id, RunQueue& queue, DockerEngine& docker, TaskLog& log, Clock& clock,
              std::stop_token stop, std::string work_dir, std::string backing_log_path)
      : config(config),
        task(task),
        task_id(std::move(task_id)),
        run_id(run_id),
        queue(queue),
        docker(docker),
        log(log),
        clock(clock),
        stop(std::move(stop)),
        work_dir(std::move(work_dir)),
        backing_log_path(std::move(backing_log_path)) {}

  const WorkerConfig& config;
  const TaskDefinition& task;
  std::string task_id;
  int run_id = 0;
  RunQueue& queue;
  DockerEngine& docker;
  TaskLog& log;
  Clock& clock;
  std::stop_token stop;   // abort or cancel requested
  std::string work_dir;   // scratch folder of this run, removed afterwards
  std::string backing_log_path;  // the raw task log on disk
  LiveLogServer* live_log_server = nullptr;  // the daemon's; null for `run`
  // The docker-worker.worker-id label value for Docker objects of this run (worker_labels.h):
  // config.worker_id in the daemon, RunCommandLabelOwner() in `run`.
  std::string label_owner;
  // The run's Taskcluster client (root URL, temporary credentials swapped on reclaim); null for
  // `run`, which has no queue.
  TaskclusterClient* taskcluster = nullptr;

  // Filled in as the run goes.
  const Payload* payload = nullptr;  // after validation
  std::string image_id;              // after the image is ready ("sha256:...")
  std::string image_artifact_hash;   // "sha256:<hex>" of a task/indexed image artifact, else ""
  std::string container_id;          // after the container is created

  // Contributions to the task container, from Link.
  std::vector<std::pair<std::string, std::string>> env;  // lowest precedence
  std::vector<std::string> binds;
  std::vector<std::string> links;
  std::vector<std::string> cap_add;
  std::vector<std::string> extra_hosts;  // "name:ip"
  std::string network;                   // "" = the engine's default bridge

  // Uploaded artifact name -> hex SHA-256 of its uncompressed bytes.
  std::mutex mu;
  std::map<std::string, std::string> artifact_hashes;
};

}  // namespace docker_worker
