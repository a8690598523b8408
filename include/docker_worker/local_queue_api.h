// The endpoints of `docker-worker local-queue` as functions of an authenticated call: queue
// (tasks, runs, claims, artifacts), auth (expandScopes, currentScopes) and index (insertTask,
// findTask, findArtifactFromTask), plus the blob store behind s3 artifacts' PUT and GET URLs.
//
// LocalQueueApi knows nothing of HTTP sockets or Hawk: LocalQueueServer verifies the caller and
// hands over an ApiCall whose client_id and scopes are already proven. The API checks scopes as
// the official API references state them, validates every input (a bad one is a 400 naming the
// field), applies the queue's rules (claims expire into exception/claim-expired and a retry run
// while retries remain; deadlines resolve pending/running runs exception/deadline-exceeded;
// report*/reclaim on a run that is not running is 409 unless idempotent) and answers with the
// official JSON shapes. Errors are {code, message, requestInfo} with lib-api's statuses. Task
// dependencies are stored but not enforced: every task is pending as soon as it is created.
//
// Time comes from the Clock given at construction; expiry and deadlines are applied lazily by
// Sweep(), which every call runs first and which LocalQueueServer also runs periodically.
//
// Thread-safety: every method may be called from any number of threads at once. State changes
// are serialised by one internal mutex and committed to the store in one transaction each.
// claimWork waits (up to `claim_poll_timeout`) on a condition variable without holding it and
// wakes as soon as a task for its queue becomes pending or Shutdown() is called.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "docker_worker/clock.h"
#include "docker_worker/hawk.h"
#include "docker_worker/local_queue_store.h"
#include "docker_worker/status.h"

namespace docker_worker {

// One request to an API endpoint, after authentication.
struct ApiCall {
  std::string service;  // "queue", "auth" or "index"
  std::string method;   // HTTP method, upper case
  std::string path;     // raw path after /api/<service>/v1/ (percent-encoding kept), no query
  std::string query;    // raw query string without "?", "" when none
  std::string body;
  std::string client_id;            // "" for anonymous callers
  std::vector<std::string> scopes;  // the caller's effective scopes
};

// What to answer. `body` is JSON text ("" for an empty body).
struct ApiReply {
  int status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string api_method;  // the API method name ("createTask"), "" when no route matched
};

// A stored blob, ready to be streamed to a client.
struct BlobFile {
  std::string path;  // the file under <data>/blobs/
  std::string content_type;
  std::string content_encoding;  // "" for none
  int64_t length = 0;
  std::string artifact;  // "<taskId>/<runId>/<name>", for the request log
};

struct LocalQueueApiOptions {
  std::string root_url;  // no trailing "/"; prefixes putUrls and blob URLs
  std::string blob_dir;  // <data>/blobs, must exist
  Credentials issuer;    // signs the claims' temporary credentials
  std::chrono::seconds claim_timeout{1200};
  std::chrono::milliseconds claim_poll_timeout{20000};
  std::chrono::minutes put_url_validity{45};
};

class LocalQueueApi {
 public:
  // `store` and `clock` must outlive the API.
  LocalQueueApi(LocalQueueStore& store, Clock& clock, LocalQueueApiOptions options);

  ApiReply Handle(const ApiCall& call);

  // Applies claim expiry and deadlines due at the clock's now; wakes claimWork waiters when a
  // retry run became pending.
  void Sweep();

  // Wakes every waiting claimWork (they answer {tasks: []}) and makes later ones return at once.
  void Shutdown();
  // How many claimWork calls are waiting for work right now (tests).
  int waiting_claims() const { return waiting_claims_.load(); }

  // PUT <rootUrl>/_blob/<token>: checks the token (known, not expired, Content-Type equal to the
  // declared one), then calls `write` with a fresh temporary path under blob_dir; `write` stores
  // the body there and returns its length (or an error reply). On success the file becomes the
  // artifact's blob and the reply is 200. `artifact` receives "<taskId>/<runId>/<name>" when the
  // token is known.
  using BlobWriter =
      std::function<std::optional<ApiReply>(const std::string& tmp_path, int64_t* length)>;
  ApiReply PutBlob(const std::string& token, const std::string& content_type,
                   const std::string& content_encoding, const BlobWriter& write,
                   std::string* artifact);
  // GET <rootUrl>/_blob/<blobId>: fills `out` and returns nullopt, or returns the error reply.
  std::optional<ApiReply> GetBlob(const std::string& blob_id, BlobFile* out);

  // The JSON error body lib-api sends ({code, message, requestInfo}).
  static ApiReply ErrorReply(int status, const std::string& code, const std::string& message,
                             const std::string& api_method = "");

  struct Route;
  struct Context;

 private:
  static const std::vector<Route>& Routes();

  // Endpoint handlers; each receives the matched route parameters in `ctx`.
  ApiReply Ping(Context& ctx);
  ApiReply CreateTask(Context& ctx);
  ApiReply GetTask(Context& ctx);
  ApiReply TaskStatus(Context& ctx);
  ApiReply CancelTask(Context& ctx);
  ApiReply ClaimWork(Context& ctx);
  ApiReply ReclaimTask(Context& ctx);
  ApiReply ReportCompleted(Context& ctx);
  ApiReply ReportFailed(Context& ctx);
  ApiReply ReportException(Context& ctx);
  ApiReply CreateArtifact(Context& ctx);
  ApiReply FinishArtifact(Context& ctx);
  ApiReply GetArtifact(Context& ctx);
  ApiReply ArtifactContent(Context& ctx);
  ApiReply ArtifactInfo(Context& ctx);
  ApiReply ListArtifacts(Context& ctx);
  ApiReply ExpandScopes(Context& ctx);
  ApiReply CurrentScopes(Context& ctx);
  ApiReply InsertIndex(Context& ctx);
  ApiReply FindIndex(Context& ctx);
  ApiReply FindArtifactFromTask(Context& ctx);

  ApiReply Resolve(Context& ctx, const std::string& state, const std::string& reason);
  // Resolves the (possibly latest) run and artifact named by ctx, following links; nullopt on
  // success with *out filled, else the error reply.
  std::optional<ApiReply> LookupArtifact(Context& ctx, ArtifactRow* out);
  // The run a request names (its runId) or, without one, the task's latest run: 404 for an
  // unknown task or run. Holds mu_.
  std::optional<ApiReply> ChooseRunLocked(Context& ctx, const std::string& task_id, int* run_id);
  // Claims up to `count` pending runs of `task_queue_id` (mu_ held): appends each claim object,
  // comma-separated, to *tasks_json and counts them in *claimed.
  Status ClaimLocked(const std::string& task_queue_id, const std::string& worker_group,
                     const std::string& worker_id, int count, std::string* tasks_json,
                     int* claimed);
  // (mu_ held) Resolves runs past their task's deadline, then expired claims (adding retry runs);
  // true when a run became pending.
  Result<bool> SweepLocked(int64_t now_ms);
  // Under mu_: sweeps, then loads the task and its runs into `task` / `runs`; when `run_id` >= 0
  // that run must exist. Returns the reply to send instead when anything is missing or fails.
  std::optional<ApiReply> LoadTaskLocked(Context& ctx, const std::string& task_id, int run_id,
                                         TaskRow* task, std::vector<RunRow>* runs);
  Result<Credentials> IssueCredentials(const std::string& task_id, int run_id,
                                       const std::string& worker_group,
                                       const std::string& worker_id, int64_t taken_until_ms,
                                       const std::vector<std::string>& task_scopes);
  std::string BlobUrl(const std::string& blob_id) const;
  int64_t NowMs() const;

  LocalQueueStore& store_;
  Clock& clock_;
  const LocalQueueApiOptions options_;

  std::mutex mu_;  // serialises every read-decide-write on the store
  std::condition_variable work_cv_;
  bool shutting_down_ = false;  // guarded by mu_
  std::atomic<int> waiting_claims_{0};
};

}  // namespace docker_worker
