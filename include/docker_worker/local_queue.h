// `docker-worker local-queue`: a single-process Taskcluster queue (plus the slices of auth and
// index a worker touches) for development, demos and our own tests. Not a production queue.
//
// LocalQueueServer listens on a TCP address and serves
//   /api/queue/v1/...  /api/auth/v1/...  /api/index/v1/...   (see LocalQueueApi)
//   PUT/GET/HEAD /_blob/<id>   the s3 artifacts' upload and download URLs it hands out
// Every API request is Hawk-verified (header or bewit; permanent clients from the options,
// temporary credentials from certificates, including the ones its claims issue); a request
// without credentials gets the anonymous scopes. Blob URLs need no Hawk: an unguessable id is the
// capability, as with a presigned S3 URL. Bodies over the limits get 413, a bad signature 401
// with `WWW-Authenticate: hawk`; no input crashes the server.
//
// State lives under `data_dir`: local-queue.db (SQLite) and blobs/ (artifact bytes, files named
// by random ids). Destroying the server and starting another on the same directory loses
// nothing: tasks, runs, artifacts, blobs and the issuer secret (so outstanding task credentials
// keep working) all persist.
//
// Each request is logged as one JSON line {"time","method","path","status","clientId","ms"}
// through `request_log` (blob requests add "artifact" and have their id redacted from "path");
// no line ever holds a secret.
//
// Thread-safety: Start/Stop/destruction from one owning thread; port(), root_url() and api()
// from any thread. Requests are served on a pool of up to `max_threads` threads.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "docker_worker/clock.h"
#include "docker_worker/local_queue_api.h"
#include "docker_worker/status.h"

namespace docker_worker {

// A permanent client local-queue accepts.
struct LocalQueueClient {
  std::string client_id;
  std::string access_token;
  std::vector<std::string> scopes;
};

// Reads a clients file: a JSON array of {clientId, accessToken, scopes}. Errors name the file
// and the entry, never a token.
Result<std::vector<LocalQueueClient>> LoadLocalQueueClients(const std::string& path);

// The clients in `path`; when the file does not exist, first writes it (mode 0600) with one
// client, "local-queue/root", a fresh random access token and scopes ["*"]. `*created` (optional)
// tells which happened.
Result<std::vector<LocalQueueClient>> EnsureLocalQueueClients(const std::string& path,
                                                              bool* created = nullptr);

struct LocalQueueOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: any free port (read it back with port())
  std::string data_dir;
  std::string root_url;  // "" -> http://<host>:<port>
  std::vector<LocalQueueClient> clients;
  // Scopes of requests without credentials (the "anonymous role"); authenticated callers hold
  // them too. Reading public/ artifacts and the index, and asking auth about one's own scopes.
  std::vector<std::string> anonymous_scopes = {"queue:get-artifact:public/*", "index:find-task:*",
                                               "auth:current-scopes", "auth:expand-scopes"};
  Clock* clock = nullptr;  // nullptr: the system clock. Must outlive the server.
  std::chrono::seconds claim_timeout{1200};
  std::chrono::milliseconds claim_poll_timeout{20000};
  std::chrono::milliseconds sweep_interval{1000};  // real time between expiry sweeps
  size_t max_request_bytes = 10u << 20;            // API request bodies
  int64_t max_blob_bytes = int64_t{8} << 30;       // one artifact upload
  int max_threads = 64;
  std::function<void(const std::string& line)> request_log;  // empty: no log
};

class LocalQueueServer {
 public:
  // Opens the state under options.data_dir (creating it), binds, and starts serving.
  static Result<std::unique_ptr<LocalQueueServer>> Start(LocalQueueOptions options);
  ~LocalQueueServer();  // Stop()s
  LocalQueueServer(const LocalQueueServer&) = delete;
  LocalQueueServer& operator=(const LocalQueueServer&) = delete;

  // Stops accepting, wakes long polls, waits for every request thread. Idempotent.
  void Stop();

  int port() const;
  const std::string& root_url() const;
  LocalQueueApi& api();

  struct Impl;

 private:
  explicit LocalQueueServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace docker_worker
