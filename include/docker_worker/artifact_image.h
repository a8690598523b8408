// Images from task artifacts (payload `task-image` / `indexed-image`): downloaded from the queue,
// decompressed, retagged and loaded into the engine in one stream, and reused afterwards.
//
// Ensure(task, path) makes the image of artifact `path` of the latest run of `task` available as
// "<md5 hex of task+path>:latest" (upstream's local name) and returns its image id and the
// artifact's hash ("sha256:<hex>" of the downloaded bytes, for the chain of trust).
//   - Reuse: when that name is present and was loaded by this worker from the same artifact (a
//     record in `state_dir` holds the image id and artifact hash, so it survives a restart), it
//     is used as is: no download, no load.
//   - Otherwise: getLatestArtifact with the run's credentials, then a GET of the answer's target
//     streamed through SHA-256, RetagImageArchive (decompression by content) and the engine's
//     image load, three threads joined by bounded pipes; never the whole artifact in memory or
//     on disk. A download that moves no byte for `idle_timeout` fails. Transient failures
//     (network, 5xx, 403 (an expired signature: each attempt fetches a fresh URL), idle timeout,
//     an engine unreachable or timing out during the load) are retried: `max_attempts` attempts,
//     `backoff` between them (slept on the Clock, cut short by `stop`); 401/404, format errors
//     and an archive the engine refuses fail at once. The whole artifact is read, bytes after the
//     tar's end-of-archive marker included, so the hash and the Content-Length check cover it.
//   - Concurrent Ensure calls for the same artifact are serialised: the second waits and then
//     reuses what the first loaded. Different artifacts proceed in parallel.
// Task log lines follow upstream: `Downloading artifact "<path>" from task ID: <id>.`,
// `Download Progress: NN.NN%` (at most every 5 s, when the size is known),
// `Downloaded artifact successfully.`, `Downloaded X.XXX mb over the wire`,
// `Image '<path>' from task '<id>' loaded.  Using image ID <id>.`. Errors come back as
// TaskFailed statuses with upstream's "Error loading docker image. <msg>"; no credential or
// signed URL query ever appears in them. Thread-safe; one instance per worker.
#pragma once

#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <string>

#include "docker_worker/backoff.h"
#include "docker_worker/clock.h"
#include "docker_worker/docker_engine.h"
#include "docker_worker/http_client.h"
#include "docker_worker/task_log.h"
#include "docker_worker/taskcluster_client.h"
#include "docker_worker/worker_config.h"

namespace docker_worker {

struct ArtifactImageOptions {
  std::string state_dir;  // records of loaded artifacts; "" = remembered in memory only
  Millis idle_timeout{60000};
  int max_attempts = 5;
  Backoff backoff{.base_ms = 15000, .factor = 2, .jitter = 0.25};

  // dockerConfig.maxAttempts / delayFactor / randomizationFactor / imageDownloadIdleTimeout.
  static ArtifactImageOptions FromConfig(const WorkerConfig& config, std::string state_dir);
};

struct ArtifactImage {
  std::string image_id;       // "sha256:..."
  std::string artifact_hash;  // "sha256:<hex>" of the artifact's bytes as downloaded
  bool reused = false;        // already loaded: nothing was downloaded
};

class ArtifactImages {
 public:
  ArtifactImages(DockerEngine& docker, Clock& clock, ArtifactImageOptions options);

  Result<ArtifactImage> Ensure(TaskclusterClient& tc, const std::string& task_id,
                               const std::string& path, TaskLog& log, std::stop_token stop);

  // md5 hex of task_id + path: the repository the image is loaded under (tag "latest").
  static std::string LocalName(const std::string& task_id, const std::string& path);

 private:
  struct Record {
    std::string image_id;
    std::string artifact_hash;
  };
  std::optional<Record> FindRecord(const std::string& name);
  void SaveRecord(const std::string& name, const std::string& task_id, const std::string& path,
                  const Record& record);
  // One download-and-load; `retryable` says whether another attempt may succeed.
  Result<std::string> Attempt(TaskclusterClient& tc, const std::string& task_id,
                              const std::string& path, const std::string& name, TaskLog& log,
                              std::stop_token stop, bool* retryable);
  Result<ArtifactImage> DownloadAndLoad(TaskclusterClient& tc, const std::string& task_id,
                                        const std::string& path, const std::string& name,
                                        TaskLog& log, std::stop_token stop);

  DockerEngine& docker_;
  Clock& clock_;
  const ArtifactImageOptions options_;
  HttpClient http_;

  std::mutex mu_;
  std::condition_variable_any cv_;
  std::set<std::string> busy_;              // names being ensured right now
  std::map<std::string, Record> records_;   // by name
};

// index.findTask(namespace) with the run's credentials: the indexed task id. Failure:
// `Could not find a task associated with "<ns>" namespace. <msg>`.
Result<std::string> FindIndexedTask(TaskclusterClient& tc, const std::string& ns,
                                    std::stop_token stop);

}  // namespace docker_worker
