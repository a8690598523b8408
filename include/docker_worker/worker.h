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
//
// Housekeeping, on the poll loop's thread and the Clock's time (garbage_collector.h):
//  - before workerReady, the start-up sweep removes every container, network and volume
//    labelled as this worker's (no run is live yet);
//  - before each claimWork, the free space of `dockerVolume` decides how many tasks may be
//    claimed (disk_space.h). Too little for every free slot is disk pressure: a sweep under
//    pressure runs at once (unused images this worker used, unmounted cache instances) and the
//    space is read again; if no task fits, there is no claimWork and the loop waits
//    pollInterval. The worker log gets a "diskspace" event when the verdict changes, not at
//    every poll. A failing probe logs once and does not stop claiming;
//  - a full sweep at least every garbageCollection.interval while a slot is free.
// Thread-safe: Shutdown may be called from any thread (a signal thread).
#pragma once

#include <condition_variable>
#include <list>
#include <memory>
#include <mutex>
#include <set>
#include <stop_token>
#include <string>
#include <thread>

#include "docker_worker/cache_volumes.h"
#include "docker_worker/artifact_image.h"
#include "docker_worker/clock.h"
#include "docker_worker/disk_space.h"
#include "docker_worker/docker_engine.h"
#include "docker_worker/garbage_collector.h"
#include "docker_worker/queue.h"
#include "docker_worker/task_run.h"
#include "docker_worker/worker_config.h"
#include "docker_worker/worker_log.h"

namespace docker_worker {

class Worker {
 public:
  // `live_log` (may be null) serves every run's log while it runs. `env_decryptor` (may be
  // null: encryptedEnv tasks fail) is the worker's dockerWorkerPrivateKey. `caches` (may be
  // null: tasks asking for caches fail) outlives the worker. `disk_probe` reads free space
  // (empty: FreeDiskBytes).
  Worker(const WorkerConfig& config, Queue& queue, DockerEngine& docker, Clock& clock,
         WorkerLog& log, std::string work_root, LiveLogServer* live_log = nullptr,
         EnvDecryptor* env_decryptor = nullptr, CacheVolumes* caches = nullptr,
         DiskProbe disk_probe = {});
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
  // Run keys ("<taskId>/<runId>") of the runs not yet concluded; mu_ held.
  std::set<std::string> LiveRunsLocked() const;
  // How many of `free` slots may be claimed now (disk rule), sweeping first under pressure
  // and when the collection interval has passed. Poll-loop thread only.
  int Housekeeping(int free, const std::set<std::string>& live);
  void LogSweep(const char* kind, const GarbageCollector::Counts& n);

  const WorkerConfig& config_;
  Queue& queue_;
  DockerEngine& docker_;
  Clock& clock_;
  WorkerLog& log_;
  const std::string work_root_;
  LiveLogServer* const live_log_;
  EnvDecryptor* const env_decryptor_;
  CacheVolumes* const caches_;
  const DiskProbe disk_probe_;
  GarbageCollector gc_;

  // Poll-loop thread only.
  TimePoint next_sweep_{};
  int disk_verdict_ = -1;  // last logged: -1 none, 0 ok, 1 low, 2 probe failed
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
