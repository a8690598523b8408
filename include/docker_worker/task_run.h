// One run of one task, from the claim to the resolution: the pipeline every verb drives.
//
// Run() executes, on the calling thread and exactly once:
//   select features -> header -> features Link+Start -> validate payload -> image
//   -> container spec (privileges, env, encryptedEnv) -> create (+ secret env upload), attach,
//   start, wait (maxRunTime)
//   -> features Finish (artifacts) -> footer -> remove container -> release caches (purged if
//   onExitStatus.purgeCaches lists the exit code of a failed run) -> features Stop (reverse)
//   -> resolve with the run's queue (unless canceled)
// With a collector (gc), the image is pinned under its HoldImages() lock only for a final
// look-up once the pull or download returned (never during it, so collections are not held
// off); an image removed in between is made ready again. If the container cannot be removed,
// it goes to the collector with the caches it mounted; without one (`run`), removal is tried
// three times (1 s, 2 s apart on the clock) and then the caches stay mounted, unpurged, until
// the process ends (reported to `warn`).
// and returns how it ended. Every failure is written to the task log with upstream's message
// and maps to upstream's resolution (failed, or exception with a reason); the container is
// removed whatever happened. Abort() and Cancel() may be called from any thread at any time:
// they kill the container (or stop the pull) and the run then takes upstream's abort/cancel
// path. Calls after the run began concluding are ignored.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "docker_worker/cache_volumes.h"
#include "docker_worker/artifact_image.h"
#include "docker_worker/clock.h"
#include "docker_worker/docker_engine.h"
#include "docker_worker/encrypted_env.h"
#include "docker_worker/feature.h"
#include "docker_worker/garbage_collector.h"
#include "docker_worker/run_queue.h"
#include "docker_worker/scopes.h"
#include "docker_worker/task_context.h"
#include "docker_worker/task_definition.h"
#include "docker_worker/task_log.h"
#include "docker_worker/worker_config.h"

namespace docker_worker {

struct RunResult {
  Resolution resolution;
  int64_t exit_code = -1;     // the container's, or -1 when it did not run to its end
  double duration_seconds = 0;
  bool canceled = false;      // resolved by someone else; not reported
};

class TaskRun {
 public:
  struct Inputs {
    const WorkerConfig& config;
    TaskDefinition task;
    std::string task_id;
    int run_id = 0;
    RunQueue& queue;
    DockerEngine& docker;
    Clock& clock;
    std::string work_dir;          // scratch folder: created by Run, removed afterwards
    std::string backing_log_path;  // the raw task log is written here (kept)
    std::vector<std::shared_ptr<LogSink>> log_sinks;  // e.g. the terminal
    // Called once, after the features stopped and right before the resolution is reported
    // (the daemon stops reclaiming there). May be empty.
    std::function<void()> before_resolve;
    LiveLogServer* live_log_server = nullptr;  // serves the log while the task runs
    // Role expansion for scope checks (auth.expandScopes with the run's credentials); empty:
    // only the scopes as written count (`run` without a queue).
    ScopeExpansion expand_scopes;
    // The run's Taskcluster client, for features acting with the run's credentials (the proxy).
    TaskclusterClient* taskcluster = nullptr;
    // The worker's key for payload.encryptedEnv; null: none configured (such tasks fail).
    EnvDecryptor* env_decryptor = nullptr;
    // Receives the worker-log detail of a secret data violation (entry index, failed check,
    // incident id; never a name or value). May be empty.
    std::function<void(const std::string& detail)> report_incident = {};
    // The host's cache volumes for payload.cache; null: tasks asking for a cache fail.
    CacheVolumes* caches = nullptr;
    // The daemon's collector: the run pins its image there, and hands over its container (with
    // the caches it mounted) if removing it fails. Null (`run`): nothing is recorded.
    GarbageCollector* gc = nullptr;
    // Worker-wide loader of task-image / indexed-image artifacts (shared so that concurrent
    // runs never download the same artifact twice); null: such images fail (no queue).
    ArtifactImages* artifact_images = nullptr;
    // The docker-worker.worker-id label of the Docker objects the run creates (its container,
    // the proxy's network): whose leftovers they are. Empty: config.worker_id (the daemon).
    // `run` passes RunCommandLabelOwner() so that a daemon with the same worker id never
    // sweeps its objects. The log header and chain of trust still name config.worker_id.
    std::string label_owner = {};
    // Receives problems the closed task log cannot hold (e.g. a container that could not be
    // removed and keeps its caches). May be empty.
    std::function<void(const std::string& message)> warn = {};
  };

  explicit TaskRun(Inputs inputs);
  ~TaskRun();
  TaskRun(const TaskRun&) = delete;
  TaskRun& operator=(const TaskRun&) = delete;

  RunResult Run();
  // Internal stop with an exception reason ("worker-shutdown", "internal-error").
  void Abort(const std::string& reason);
  // Resolved by someone else (reclaim answered 409): stop, upload nothing, do not resolve.
  void Cancel();

  TaskLog& log() { return log_; }

 private:
  enum class StopKind { kNone, kAborted, kCanceled, kTimedOut };

  Status StartFeatures();
  Status ValidatePayload();
  // ReadyImage, then the pin under the collector's lock (see the top).
  Status PrepareImage();
  // Pulls or loads the payload's image; sets ctx_.image_id.
  Status ReadyImage();
  // task-image / indexed-image: scope gate, index lookup, download and load; the image id.
  Result<std::string> PrepareArtifactImage();
  Status BuildContainerSpec(ContainerSpec& spec);
  Status RunContainer(const ContainerSpec& spec);
  Status FinishFeatures();
  RunResult Conclude(const Status& status);
  // Removes the container and releases (or hands over, or keeps) the cache leases.
  void ReleaseContainer(const std::string& container);

  void WriteHeader();
  void OnTimeout();
  // Records the stop (first one wins) and kills the container if there is one.
  void RequestStop(StopKind kind, const std::string& reason, const std::string& log_line);
  StopKind stop_kind() const;
  Status StoppedStatus() const;

  Inputs in_;
  TaskLog log_;
  std::stop_source stop_source_;  // before ctx_, which holds its token
  TaskContext ctx_;
  ScopeChecker scopes_;  // the task's scopes, roles expanded at most once per run
  Status setup_error_;  // the backing log could not be created
  std::optional<Payload> payload_;
  std::vector<std::unique_ptr<Feature>> features_;
  bool features_selected_ = false;  // header written; the footer follows
  TimePoint started_;
  int64_t exit_code_ = -1;
  bool container_exited_ = false;
  std::string secret_env_archive_;
  std::optional<ImageInfo> image_info_;  // the task's image as last inspected  // uploaded into the created container (secret_env.h)
  std::vector<CacheLease> cache_leases_;  // released once the container is gone
  ImagePin image_pin_;

  mutable std::mutex mu_;
  StopKind stop_ = StopKind::kNone;
  std::string abort_reason_;
  std::string container_id_;
  bool concluding_ = false;
};

}  // namespace docker_worker
