#include "docker_worker/http_queue.h"

#include "docker_worker/http_run_queue.h"

namespace docker_worker {
namespace {

// One claimed run: its own client (the claim's credentials), the artifact/resolve calls of
// HttpRunQueue, and reclaim.
class HttpClaimedRun final : public ClaimedRunQueue {
 public:
  HttpClaimedRun(const HttpQueueOptions& options, HttpClient& http, Clock& clock,
                 const Claim& claim, const std::string& work_dir)
      : client_(http, clock, options.root_url, claim.credentials),
        queue_(client_),
        run_(queue_, http, clock, claim.task_id, claim.run_id, work_dir,
             options.skip_compression_extensions),
        task_id_(claim.task_id),
        run_id_(claim.run_id) {}

  Status CreateArtifact(const Artifact& artifact) override { return run_.CreateArtifact(artifact); }
  Status Resolve(const Resolution& resolution) override { return run_.Resolve(resolution); }

  Result<TimePoint> Reclaim(std::stop_token stop) override {
    auto renewal = queue_.ReclaimTask(task_id_, run_id_, stop);
    if (!renewal.ok()) return renewal.status();
    client_.SetCredentials(renewal->credentials);
    return renewal->taken_until;
  }

  TaskclusterClient* Client() override { return &client_; }

 private:
  TaskclusterClient client_;
  QueueClient queue_;
  HttpRunQueue run_;
  const std::string task_id_;
  const int run_id_;
};

}  // namespace

HttpQueue::HttpQueue(HttpQueueOptions options, HttpClient& http, Clock& clock)
    : options_(std::move(options)),
      http_(http),
      clock_(clock),
      worker_client_(http, clock, options_.root_url, options_.worker_credentials),
      worker_queue_(worker_client_) {}

Result<std::vector<Claim>> HttpQueue::ClaimWork(int tasks, std::stop_token stop) {
  return worker_queue_.ClaimWork(options_.provisioner_id + "/" + options_.worker_type,
                                 options_.worker_group, options_.worker_id, tasks, stop);
}

std::unique_ptr<ClaimedRunQueue> HttpQueue::ForRun(const Claim& claim,
                                                   const std::string& work_dir) {
  return std::make_unique<HttpClaimedRun>(options_, http_, clock_, claim, work_dir);
}

}  // namespace docker_worker
