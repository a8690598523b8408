// The whole system on one machine for end-to-end tests: the built binary run as
// `docker-worker local-queue` and `docker-worker start` in a temp dir, plus a QueueClient with
// local-queue's root credentials to create tasks and read results. Processes are killed on
// destruction. Waits are bounded polls of external events (process output, queue state).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "docker_worker/http_client.h"
#include "docker_worker/queue_client.h"
#include "fakes/temp_dir.h"
#include "support/subprocess.h"

namespace docker_worker::testing {

class LocalSystem {
 public:
  struct Options {
    int capacity = 1;
    int claim_timeout_seconds = 1200;
    std::string worker_type = "e2e";
    // When set, the worker runs as its own client "worker" with this access token (scopes "*");
    // otherwise it shares the test's root client.
    std::string worker_access_token;
    // The worker's config file (JSON text), over test defaults: pollInterval 200 ms,
    // diskspaceThreshold 1 GB on the temp dir, caches in <temp dir>/caches.
    std::string worker_config;
  };
  static Options With(int capacity, int claim_timeout_seconds, std::string worker_type) {
    Options o;
    o.capacity = capacity;
    o.claim_timeout_seconds = claim_timeout_seconds;
    o.worker_type = std::move(worker_type);
    return o;
  }
  explicit LocalSystem(Options options);
  ~LocalSystem();

  // (Re)starts local-queue on the same data dir and port.
  void StartQueue();
  void StopQueue(int sig);
  void StartWorker();
  // Sends `sig` to the worker and waits for it to exit; returns its exit code.
  int StopWorker(int sig);

  // createTask for this pool with `payload` (JSON text); returns the task id.
  // `scopes` become the task's scopes; `task_id` "" picks a fresh one.
  std::string CreateTask(const std::string& payload, int retries = 0,
                         const std::vector<std::string>& scopes = {}, std::string task_id = "");
  // A completed task of another pool (the worker never claims it) whose run 0 holds one s3
  // artifact per `files` entry (name -> local file, uploaded streamed) and one reference
  // artifact per `references` entry (name -> URL). Returns its task id ("" on failure).
  std::string PublishArtifacts(const std::map<std::string, std::string>& files,
                               const std::map<std::string, std::string>& references = {});
  // index.insertTask: `ns` -> `task_id`.
  bool IndexTask(const std::string& ns, const std::string& task_id);

  // Polls status until the given run is resolved (or `seconds` pass); returns the run's
  // {state, reasonResolved}; {"timeout", ""} when it did not resolve in time.
  std::pair<std::string, std::string> WaitForRun(const std::string& task_id, int run_id,
                                                 int seconds = 60);
  // Polls until the run is running.
  bool WaitUntilRunning(const std::string& task_id, int seconds = 60);
  // The bytes of an artifact of the latest run, through getLatestArtifact (nullopt if absent).
  std::optional<std::string> Artifact(const std::string& task_id, const std::string& name);
  std::string WorkerLog() const;
  std::string QueueLog() const;

  QueueClient& queue() { return *queue_; }
  const std::string& worker_id() const { return worker_id_; }
  const std::string& root_url() const { return root_url_; }
  TempDir& dir() { return dir_; }

 private:
  std::string WorkerConfigText() const;
  std::string CreateTaskIn(const std::string& worker_type, const std::string& payload, int retries,
                           const std::vector<std::string>& scopes, std::string task_id);

  Options options_;
  TempDir dir_;
  int port_ = 0;
  std::string root_url_;
  Credentials root_;
  std::string worker_id_;
  int worker_starts_ = 0;
  std::unique_ptr<Subprocess> queue_proc_;
  std::unique_ptr<Subprocess> worker_proc_;
  SystemClock clock_;
  HttpClient http_;
  std::unique_ptr<TaskclusterClient> client_;
  std::unique_ptr<QueueClient> queue_;
};

// Writes a fresh chain-of-trust signing key (base64 of the 64-byte ed25519 secret key) into
// `dir`; returns its path (for the worker's ed25519SigningKeyLocation).
std::string WriteCotSigningKey(TempDir& dir);

}  // namespace docker_worker::testing
