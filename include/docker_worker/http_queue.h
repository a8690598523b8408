// Queue over HTTP: claimWork signed with the worker's credentials, each run's calls with that
// run's temporary credentials (swapped on reclaim). One HttpClient (keep-alive connections
// reused) serves every call. Thread-safe.
#pragma once

#include <string>
#include <vector>

#include "docker_worker/clock.h"
#include "docker_worker/http_client.h"
#include "docker_worker/queue.h"

namespace docker_worker {

struct HttpQueueOptions {
  std::string root_url;
  Credentials worker_credentials;
  std::string provisioner_id;
  std::string worker_type;
  std::string worker_group;
  std::string worker_id;
  std::vector<std::string> skip_compression_extensions;
};

class HttpQueue final : public Queue {
 public:
  HttpQueue(HttpQueueOptions options, HttpClient& http, Clock& clock);

  Result<std::vector<Claim>> ClaimWork(int tasks, std::stop_token stop) override;
  std::unique_ptr<ClaimedRunQueue> ForRun(const Claim& claim,
                                          const std::string& work_dir) override;

 private:
  HttpQueueOptions options_;
  HttpClient& http_;
  Clock& clock_;
  TaskclusterClient worker_client_;
  QueueClient worker_queue_;
};

}  // namespace docker_worker
