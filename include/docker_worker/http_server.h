// A Poco HTTP server on its own thread pool: what the live log, the taskcluster proxy and
// local-queue each serve through.
//
// Listen binds and listens at once (so the port is known, e.g. to build URLs, before serving);
// Serve then starts handling connections with the given factory. The socket gets SO_REUSEADDR
// (a restarted worker binds again at once) but never SO_REUSEPORT, which Poco's two-argument
// bind also sets: a second server on a taken port must fail, not share its clients. Stop (also
// run by the destructor) closes the listener, shuts down connections in progress and returns
// once every handler thread has returned. No Poco exception escapes.
#pragma once

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "docker_worker/status.h"

namespace Poco {
class ThreadPool;
namespace Net {
class HTTPServer;
class ServerSocket;
}  // namespace Net
}  // namespace Poco

namespace docker_worker {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: any free port
  int min_threads = 1;
  int max_threads = 16;
  int max_queued = 64;   // connections waiting for a thread
  bool keep_alive = false;
  std::chrono::milliseconds keep_alive_timeout{10000};
  std::chrono::milliseconds timeout{60000};  // socket send/receive timeout per request
};

// A request handler from which no exception escapes: a client gone mid-response (Poco) or an
// allocation failure ends that one request, never the server thread.
class GuardedRequestHandler : public Poco::Net::HTTPRequestHandler {
 public:
  void handleRequest(Poco::Net::HTTPServerRequest& request,
                     Poco::Net::HTTPServerResponse& response) final;

 protected:
  virtual void Handle(Poco::Net::HTTPServerRequest& request,
                      Poco::Net::HTTPServerResponse& response) = 0;
};

// Reads a request's whole body (what arrived, if the client stops early), refusing more than
// `limit` bytes: nullopt, with *too_large set, checked against Content-Length first and then
// while reading.
std::optional<std::string> ReadRequestBody(Poco::Net::HTTPServerRequest& request, size_t limit,
                                           bool* too_large);

class HttpServer {
 public:
  // Errors: kInvalidArgument "bad listen address H:P: ..." for an address that does not parse
  // or resolve; kUnavailable "cannot listen on H:P: ..." otherwise (e.g. the port is taken).
  static Result<std::unique_ptr<HttpServer>> Listen(const HttpServerOptions& options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }
  // Starts serving; call once. kInternal if Poco refuses.
  Status Serve(Poco::Net::HTTPRequestHandlerFactory::Ptr factory);
  void Stop();

 private:
  HttpServer() = default;

  HttpServerOptions options_;
  int port_ = 0;
  std::unique_ptr<Poco::Net::ServerSocket> socket_;
  // Declared before server_: the server uses the pool and must be destroyed first.
  std::unique_ptr<Poco::ThreadPool> pool_;
  std::unique_ptr<Poco::Net::HTTPServer> server_;
  std::mutex stop_mu_;
  bool stopped_ = false;
};

// `host` as it goes in a URL: an IPv6 literal in brackets ("[::1]"), anything else unchanged.
std::string UrlHost(const std::string& host);

}  // namespace docker_worker
