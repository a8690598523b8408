// The Taskcluster queue calls a worker (and our tools) make, typed, over a TaskclusterClient.
//
// Path parameters are percent-encoded (a taskQueueId "prov/wt" is sent as "prov%2Fwt", an
// artifact name's "/" as "%2F"), as the official clients do. Responses are checked for the
// fields the worker relies on; a malformed queue response is kInvalidArgument naming the field,
// never a crash. Thread-safe as the underlying client.
#pragma once

#include <memory>
#include <stop_token>
#include <string>
#include <vector>

#include "docker_worker/hawk.h"
#include "docker_worker/task_definition.h"
#include "docker_worker/taskcluster_client.h"

namespace docker_worker {

// One claimed run.
struct Claim {
  std::string task_id;
  int run_id = 0;
  TaskDefinition task;
  Credentials credentials;  // temporary, for every call about this run
  TimePoint taken_until;
};

struct ClaimRenewal {
  Credentials credentials;
  TimePoint taken_until;
};

class QueueClient {
 public:
  explicit QueueClient(TaskclusterClient& client) : client_(client) {}

  // Long-polls (the server may hold it ~20 s); `tasks` in 1..32.
  Result<std::vector<Claim>> ClaimWork(const std::string& task_queue_id,
                                       const std::string& worker_group,
                                       const std::string& worker_id, int tasks,
                                       std::stop_token stop);
  Result<ClaimRenewal> ReclaimTask(const std::string& task_id, int run_id,
                                   std::stop_token stop = {});
  Status ReportCompleted(const std::string& task_id, int run_id);
  Status ReportFailed(const std::string& task_id, int run_id);
  Status ReportException(const std::string& task_id, int run_id, const std::string& reason);
  // The createArtifact response body.
  Result<json::Document> CreateArtifact(const std::string& task_id, int run_id,
                                        const std::string& name, const json::Value& request);
  Result<json::Document> Task(const std::string& task_id);
  Result<json::Document> TaskStatus(const std::string& task_id);
  Result<json::Document> CreateTask(const std::string& task_id, const json::Value& definition);
  Result<json::Document> CancelTask(const std::string& task_id);
  // listLatestArtifacts, every page: {name, storageType} of each artifact of the latest run.
  Result<std::vector<std::pair<std::string, std::string>>> ListLatestArtifacts(
      const std::string& task_id);
  // The 303 target of getArtifact (run_id < 0: getLatestArtifact); `stop` cuts retries short.
  Result<std::string> ArtifactUrl(const std::string& task_id, int run_id,
                                  const std::string& name, std::stop_token stop = {});

  TaskclusterClient& client() { return client_; }

 private:
  TaskclusterClient& client_;
};

// One element of a claimWork answer, checked: slugid taskId, runId 0..1000, credentials,
// takenUntil, task definition. Errors are kInvalidArgument naming the field.
Result<Claim> ParseClaim(const json::Value& item);

// Reads the credentials object of a claim or reclaim response ({clientId, accessToken,
// certificate}); the certificate is kept as JSON text.
Result<Credentials> CredentialsFromJson(const json::Value& value);

}  // namespace docker_worker
