// The RunQueue of a claimed run on a real (or local-queue) Taskcluster queue.
//
// Every call uses the run's temporary credentials through `queue`'s client, which the reclaim
// loop swaps (so a long upload uses the newest ones). kFile artifacts: createArtifact with
// storageType s3, then an HTTP PUT of the bytes to the returned putUrl with Content-Type and
// exact Content-Length, gzipped with Content-Encoding: gzip unless the name ends with a
// skipped extension; the PUT is retried (11 attempts, backoff factor 1.311 from 1 s, at most
// 30 s, 5 minutes per attempt) on network errors, 5xx and 400, with a fresh createArtifact each
// time (put URLs expire). reference, link and error artifacts are one createArtifact call.
// Resolve maps to reportCompleted / reportFailed / reportException(reason).
#pragma once

#include <string>
#include <vector>

#include "docker_worker/clock.h"
#include "docker_worker/http_client.h"
#include "docker_worker/queue_client.h"
#include "docker_worker/run_queue.h"

namespace docker_worker {

class HttpRunQueue final : public RunQueue {
 public:
  HttpRunQueue(QueueClient& queue, HttpClient& http, Clock& clock, std::string task_id,
               int run_id, std::string work_dir, std::vector<std::string> skip_compression);

  Status CreateArtifact(const Artifact& artifact) override;
  Status Resolve(const Resolution& resolution) override;

 private:
  Status UploadFile(const Artifact& artifact);

  QueueClient& queue_;
  HttpClient& http_;
  Clock& clock_;
  const std::string task_id_;
  const int run_id_;
  const std::string work_dir_;
  const std::vector<std::string> skip_compression_;
};

}  // namespace docker_worker
