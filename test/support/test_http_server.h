// A real HTTP server on 127.0.0.1 (any free port) for testing HTTP clients: every request is
// recorded and answered by a handler the test sets. Thread-safe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace docker_worker::testing {

struct TestRequest {
  std::string method;
  std::string uri;  // raw, as received
  std::string host_header;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

struct TestResponse {
  int status = 200;
  std::map<std::string, std::string> headers;
  std::string body;
  // Sends only this many bytes of `body` (Content-Length still announces all of it), then
  // stalls until the server is destroyed: a peer that stops sending.
  size_t stall_after = std::string::npos;
};

class TestHttpServer {
 public:
  using Handler = std::function<TestResponse(const TestRequest&)>;
  explicit TestHttpServer(Handler handler);
  ~TestHttpServer();

  int port() const;
  std::string url() const;  // "http://127.0.0.1:<port>"
  std::vector<TestRequest> requests() const;
  void set_handler(Handler handler);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace docker_worker::testing
