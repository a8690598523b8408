// Calls Taskcluster REST APIs under a root URL: JSON in and out, Hawk-signed with the current
// credentials, retried the way the official clients retry.
//
// URL: <rootUrl>/api/<service>/v1/<path>, where `path` is already percent-encoded segment by
// segment (what is sent is what is signed). Every attempt gets a fresh Hawk header. Retries:
// network errors and 5xx only, at most 5 retries, delay 100 ms * 2^attempt +-25 %, capped at
// 30 s, slept on the Clock and cut short by `stop`. Statuses map to codes: 400 kInvalidArgument,
// 401/403 kPermissionDenied, 404/410 kNotFound, 409 kConflict, other 4xx kInvalidArgument, 5xx
// and network failures kUnavailable; the message is "<METHOD> <service>/<path>: <status>
// <server message>", never a credential. 2xx and 303 are success (redirects are not followed).
// Thread-safe; SetCredentials swaps the credentials used by later attempts (reclaim).
#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "docker_worker/clock.h"
#include "docker_worker/hawk.h"
#include "docker_worker/http_client.h"
#include "docker_worker/json.h"

namespace docker_worker {

struct TcCallOptions {
  std::optional<std::vector<std::string>> authorized_scopes;
  std::chrono::milliseconds timeout{30000};
  std::stop_token stop;
  int max_retries = 5;
};

struct TcResponse {
  long status = 0;
  HttpHeaders headers;
  json::Document body;  // null when the body was empty or not JSON
};

class TaskclusterClient {
 public:
  TaskclusterClient(HttpClient& http, Clock& clock, std::string root_url, Credentials credentials);

  void SetCredentials(Credentials credentials);
  Credentials credentials() const;
  const std::string& root_url() const { return root_url_; }

  std::string Url(std::string_view service, std::string_view path) const;
  // Sends `request` (its URL under any root) Hawk-signed with the current credentials, fresh for
  // every attempt, with options.authorized_scopes; retried as above on network errors and 5xx.
  // Returns the last response whatever its status (a 5xx once retries are spent), or the
  // transport error. The proxy forwards through this; Call builds on it.
  Result<HttpResponse> Send(HttpRequest request, const TcCallOptions& options);
  // `body` null: no request body.
  Result<TcResponse> Call(std::string_view method, std::string_view service,
                          std::string_view path, const json::Value* body,
                          const TcCallOptions& options = {});

 private:
  HttpClient& http_;
  Clock& clock_;
  const std::string root_url_;
  mutable std::mutex mu_;
  Credentials credentials_;
};

// Delay before retry number `attempt` (1-based): 100 ms * 2^attempt, +-25 %, at most 30 s.
Millis TaskclusterRetryDelay(int attempt);

}  // namespace docker_worker
