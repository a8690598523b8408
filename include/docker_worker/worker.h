// The daemon's core: claims tasks for one worker pool and runs each claim as a TaskRun on its
// own thread, reclaiming it until it concludes.
//
// Run() loops until Shutdown(): while there is free capacity it asks the queue for
// min(free, 32) tasks (no claimWork call while full); after an empty answer or an error it waits
// taskQueue.pollInterval on the Clock (errors are logged, never fatal). Each run reclaims at
// (takenUntil - now) / task.reclaimDivisor; a 409 on reclaim cancels the run (no report), any
// other reclaim failure aborts it with internal-error. Shutdown(immediate) stops claiming; with
// `immediate`, running tasks are aborted with worker-shutdown (their logs are still uploaded and
// they are reported); claims answered after shutdown began are aborted the same way. Run()
// returns once every run has concluded. Events go to the worker log as JSON lines.
// Thread-safe: Shutdown may be called from any thread (a signal thread).
#pragma once

#include <condition_variable>
#include <list>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>

#include "docker_worker/artifact_image.h"
#include "docker_worker/clock.h"
#include "docker_worker/docker_engine.h"
#include "docker_worker/queue.h"
#include "docker_worker/task_run.h"
#include "docker_worker/worker_config.h"
#include "docker_worker/worker_log.h"

namespace docker_worker {

class Worker {
 public:
  // `live_log` (may be null) serves every run's log while it runs. `env_decryptor` (may be
  // null: encryptedEnv tasks fail) is the worker's dockerWorkerPrivateKey.
  Worker(const WorkerConfig& config, Queue& queue, DockerEngine& docker, Clock& clock,
         WorkerLog& log, std::string work_root, LiveLogServer* live_log = nullptr,
         EnvDecryptor* env_decryptor = nullptr);
  ~Worker();

  void Run();
  void Shutdown(bool immediate);
  int running() const;

 private:
  struct Slot;
  void StartRun(Claim claim);
  void Reclaim(Slot& slot, TimePoint taken_until, std::stop_token stop);
  // Joins and drops the slots of concluded runs (releases the lock while joining).
  void ReapFinished(std::unique_lock<std::mutex>& lock);
  int BusyLocked() const;  // runs not yet concluded; mu_ held
  void WaitForAllRuns();

  const WorkerConfig& config_;
  Queue& queue_;
  DockerEngine& docker_;
  Clock& clock_;
  WorkerLog& log_;
  const std::string work_root_;
  LiveLogServer* const live_log_;
  EnvDecryptor* const env_decryptor_;
  // Task/indexed images, shared by every run; records under <work_root>/image-artifacts.
  ArtifactImages artifact_images_;

  mutable std::mutex mu_;
  std::condition_variable_any cv_;
  std::stop_source shutdown_;  // wakes the poll-interval wait
  bool shutting_down_ = false;
  bool immediate_ = false;
  std::list<std::unique_ptr<Slot>> slots_;
};

}  // namespace docker_worker
