// The taskcluster proxy of one task (feature taskclusterProxy), served from the worker process.
//
// Code in the task calls Taskcluster without holding credentials: it sends plain HTTP to the
// proxy, which forwards each request to the root URL signed (Hawk) with the run's current
// temporary credentials — read from `client` per attempt, so the swap on reclaim is seen at
// once — and `authorizedScopes` narrowed to the task's scopes.
//
// Routes:
//   /api/<service>/<version>/<path>   -> <rootUrl>/api/<service>/<version>/<path>
//   /<service>/<version>/<path>       -> the same (upstream's legacy form; service has no dot)
//   POST /bewit  body: a URL under the root URL -> 303 to that URL with a 1-hour bewit
// Anything else is 404 with a message; PUT /credentials is 403 (the worker swaps credentials
// itself; a task may not). Query strings and percent-encoding are kept as sent; paths with "."
// or ".." segments are 400. Method, body (at most 16 MiB, else 413) and end-to-end headers are
// copied; Authorization and hop-by-hop headers are not. Redirects are passed back, not followed.
// Network errors and 5xx are retried (5 retries, Taskcluster's backoff); the last answer or a
// 502 with the error goes back. Responses carry X-Taskcluster-Endpoint, X-Taskcluster-Proxy-
// Version, X-Taskcluster-Proxy-(Temp|Perm)-ClientId and X-Taskcluster-Authorized-Scopes — never
// an access token.
//
// Only peers accepted by `allow_peer` are served (others get 403 and nothing is forwarded): the
// feature binds the proxy to its task network's gateway and admits only its task's container.
// Thread-safe; no Poco exception escapes. Stop() (or the destructor) closes the listener and
// waits for requests in flight.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "docker_worker/clock.h"
#include "docker_worker/http_server.h"
#include "docker_worker/status.h"
#include "docker_worker/taskcluster_client.h"

namespace docker_worker {

struct TaskclusterProxyOptions {
  std::string listen_address = "127.0.0.1";
  int port = 80;  // 0: any free port
  // Decides from the peer's IP address (dotted quad) whether to serve it. Must be thread-safe.
  std::function<bool(const std::string& peer)> allow_peer;
  std::vector<std::string> authorized_scopes;
  int max_threads = 8;
  std::chrono::milliseconds upstream_timeout{5 * 60 * 1000};
};

class TaskclusterProxy {
 public:
  // `client` (which also sends the forwarded requests) and `clock` must outlive the proxy.
  static Result<std::unique_ptr<TaskclusterProxy>> Start(TaskclusterClient& client, Clock& clock,
                                                         TaskclusterProxyOptions options);
  TaskclusterProxy(const TaskclusterProxy&) = delete;
  TaskclusterProxy& operator=(const TaskclusterProxy&) = delete;

  int port() const;
  void Stop();  // also run by the destructor (of the server)

  struct Core;  // shared with the request handlers

 private:
  TaskclusterProxy() = default;

  std::shared_ptr<Core> core_;
  std::unique_ptr<HttpServer> http_;
};

// Maps a request target ("/api/queue/v1/task/X?y=1") to the URL under `root_url`, or explains
// (kNotFound for unknown shapes, kInvalidArgument for dot segments). Exposed for tests.
Result<std::string> ProxyTargetUrl(const std::string& root_url, const std::string& target);

}  // namespace docker_worker
