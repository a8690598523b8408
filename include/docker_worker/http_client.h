// A small HTTP/1.1 client over libcurl, shared by every outbound caller: the Docker engine (over
// its unix socket), the Taskcluster queue, S3 uploads and artifact downloads.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "docker_worker/docker_engine.h"  // ByteSink
#include "docker_worker/status.h"

namespace docker_worker {

// ASCII case-insensitive equality (header names, HTTP tokens).
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// An ordered list of HTTP header fields with case-insensitive lookup. Names and values are kept
// as given (values trimmed of surrounding whitespace when parsed from a response). Duplicates are
// allowed; Get() returns the first. A plain value type: copy it, compare it, no thread safety.
class HttpHeaders {
 public:
  using Field = std::pair<std::string, std::string>;

  HttpHeaders() = default;
  HttpHeaders(std::initializer_list<Field> fields) : fields_(fields) {}

  // Appends a field (keeps any existing one with the same name).
  void Add(std::string name, std::string value);
  // Replaces every field named `name` by a single one.
  void Set(std::string name, std::string value);
  void Remove(std::string_view name);
  bool Has(std::string_view name) const;
  // The first value of `name`, compared case-insensitively; nullopt when absent.
  std::optional<std::string> Get(std::string_view name) const;
  std::vector<std::string> GetAll(std::string_view name) const;

  const std::vector<Field>& fields() const { return fields_; }
  bool empty() const { return fields_.empty(); }
  void clear() { fields_.clear(); }

 private:
  std::vector<Field> fields_;
};

// Supplies a streamed request body (a ByteSource): an error status aborts the request and is
// returned by Send().
using BodyReader = ByteSource;

struct HttpResponse;

// One request, described as a value. `body` is sent as is unless `body_reader` is set, in which
// case the body is streamed from it (`body_size` bytes, or chunked when negative) and
// `body_rewind` (optional) lets libcurl resend it on a retried connection. Timeouts of zero mean
// "none": `connect_timeout` bounds connection set-up, `total_timeout` the whole exchange, and
// `idle_timeout` aborts a transfer that moved no byte for that long. `stop` cancels the request
// promptly from any thread. Callbacks run on the thread that called Send(), in this order:
// `on_headers` once, when the final response's headers are complete and before any body byte
// (an error status aborts the transfer and is returned); then, for a 2xx response with a
// `body_sink`, every body byte in order (an error status aborts likewise). Bodies of non-2xx
// responses always go to HttpResponse::body (at most `max_error_body` bytes kept), so callers
// can report the peer's error message.
struct HttpRequest {
  std::string method = "GET";
  std::string url;  // with a unix socket, the host part is ignored: "http://docker/v1.41/_ping"
  HttpHeaders headers;
  std::string body;
  BodyReader body_reader;
  int64_t body_size = -1;
  std::function<bool()> body_rewind;  // restart the body from its first byte; false = cannot

  std::chrono::milliseconds connect_timeout{30000};
  std::chrono::milliseconds total_timeout{0};
  std::chrono::milliseconds idle_timeout{0};
  std::stop_token stop;
  bool follow_redirects = false;  // at most 10 hops; only the final response is reported
  bool decode_content = false;    // ask for and transparently decode gzip/deflate bodies

  std::function<Status(const HttpResponse& head)> on_headers;
  ByteSink body_sink;
  size_t max_body = 64u << 20;        // in-memory body limit when there is no sink (2xx)
  size_t max_error_body = 64u << 10;  // bytes of a non-2xx body kept in HttpResponse::body
};

// What came back. `body` holds the whole body when the request had no `body_sink` (or the
// status was not 2xx), and is empty otherwise. Any status code is a successful Send(): mapping
// 4xx/5xx to errors is the caller's business.
struct HttpResponse {
  long status = 0;
  HttpHeaders headers;
  std::string body;

  bool ok() const { return status >= 200 && status < 300; }
};

// Options fixed for the lifetime of a client.
struct HttpClientOptions {
  // Connect every request to this unix socket instead of the URL's host (e.g. the Docker engine).
  std::string unix_socket_path;
  // How errors name the peer: "cannot reach <peer_name> at <endpoint>: ...". Empty: just the
  // endpoint.
  std::string peer_name;
  std::string user_agent = "docker-worker";
  // Idle connections (one per pooled libcurl handle) kept for reuse between requests.
  size_t max_idle_handles = 8;
};

// Sends HTTP requests with libcurl, reusing keep-alive connections between sequential requests.
// Thread-safe: any number of threads may call Send() at once; each call borrows a pooled libcurl
// handle (with its own connection cache) for its duration and returns it afterwards, so a thread
// making sequential calls keeps hitting the same open connection. Never throws. Transport
// failures are kUnavailable with libcurl's message and the endpoint (the URL without its query
// string, or unix://PATH), timeouts are kDeadlineExceeded, a requested stop is kCancelled, a
// malformed URL is kInvalidArgument; errors from callbacks are returned unchanged. Nothing is
// logged, so header values (credentials) never leak.
class HttpClient {
 public:
  HttpClient() : HttpClient(HttpClientOptions{}) {}
  explicit HttpClient(HttpClientOptions options);
  // Shorthand for a client over a unix socket (empty: plain TCP).
  explicit HttpClient(std::string unix_socket_path);
  ~HttpClient();

  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  Result<HttpResponse> Send(const HttpRequest& request);

  // "unix:///path" for a socket client, else "" (requests name their own URL).
  std::string SocketEndpoint() const;
  const HttpClientOptions& options() const { return options_; }

 private:
  struct Handle;
  std::unique_ptr<Handle> Acquire();
  void Release(std::unique_ptr<Handle> handle);

  HttpClientOptions options_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Handle>> idle_;
};

// Percent-encodes every byte except RFC 3986 unreserved characters (for a query value or a single
// path segment).
std::string UrlEscape(std::string_view text);

// "scheme://host[:port]/path" of `url` without query or fragment (which may carry signatures),
// for error messages.
std::string RedactUrl(std::string_view url);

}  // namespace docker_worker
