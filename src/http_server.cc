#include "docker_worker/http_server.h"

#include <Poco/Exception.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/ThreadPool.h>
#include <Poco/Timespan.h>

#include <algorithm>

namespace docker_worker {

std::optional<std::string> ReadRequestBody(Poco::Net::HTTPServerRequest& req, size_t limit,
                                           bool* too_large) {
  *too_large = false;
  if (req.hasContentLength() && req.getContentLength64() > static_cast<Poco::Int64>(limit)) {
    *too_large = true;
    return std::nullopt;
  }
  std::string body;
  std::istream& in = req.stream();
  char buf[64 * 1024];
  while (in) {
    in.read(buf, sizeof buf);
    std::streamsize n = in.gcount();
    if (n <= 0) break;
    if (body.size() + static_cast<size_t>(n) > limit) {
      *too_large = true;
      return std::nullopt;
    }
    body.append(buf, static_cast<size_t>(n));
  }
  return body;
}


void GuardedRequestHandler::handleRequest(Poco::Net::HTTPServerRequest& request,
                                          Poco::Net::HTTPServerResponse& response) {
  try {
    Handle(request, response);
  } catch (const Poco::Exception&) {
  } catch (const std::exception&) {
  }
}
namespace {

Poco::Timespan ToTimespan(std::chrono::milliseconds ms) {
  return Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(ms.count()) * 1000);
}

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::Listen(const HttpServerOptions& options) {
  std::unique_ptr<HttpServer> server(new HttpServer());
  server->options_ = options;
  const std::string where = options.host + ":" + std::to_string(options.port);
  try {
    Poco::Net::SocketAddress address(options.host, static_cast<Poco::UInt16>(options.port));
    server->socket_ = std::make_unique<Poco::Net::ServerSocket>();
    server->socket_->bind(address, /*reuseAddress=*/true, /*reusePort=*/false);
    server->socket_->listen(std::max(64, options.max_queued));
    server->port_ = server->socket_->address().port();
  } catch (const Poco::Net::InvalidAddressException& e) {
    return Status(Code::kInvalidArgument, "bad listen address " + where + ": " + e.displayText());
  } catch (const Poco::Net::HostNotFoundException& e) {
    return Status(Code::kInvalidArgument, "bad listen address " + where + ": " + e.displayText());
  } catch (const Poco::Exception& e) {
    return Status(Code::kUnavailable, "cannot listen on " + where + ": " + e.displayText());
  }
  return server;
}

Status HttpServer::Serve(Poco::Net::HTTPRequestHandlerFactory::Ptr factory) {
  try {
    const int threads = std::max(1, options_.max_threads);
    auto* params = new Poco::Net::HTTPServerParams;  // owned by the HTTPServer
    params->setMaxThreads(threads);
    params->setMaxQueued(options_.max_queued);
    params->setKeepAlive(options_.keep_alive);
    params->setKeepAliveTimeout(ToTimespan(options_.keep_alive_timeout));
    params->setTimeout(ToTimespan(options_.timeout));
    pool_ = std::make_unique<Poco::ThreadPool>(std::clamp(options_.min_threads, 1, threads),
                                               threads);
    server_ = std::make_unique<Poco::Net::HTTPServer>(factory, *pool_, *socket_, params);
    server_->start();
  } catch (const Poco::Exception& e) {
    return Status(Code::kInternal, "cannot start the HTTP server: " + e.displayText());
  }
  return Status::Ok();
}

void HttpServer::Stop() {
  std::lock_guard lock(stop_mu_);
  if (stopped_) return;
  stopped_ = true;
  try {
    // Closes the listening socket, drops queued connections and shuts down the sockets of the
    // requests in progress (including ones still sending their header).
    if (server_) server_->stopAll(/*abortCurrent=*/true);
    else if (socket_) socket_->close();
    // Every connection's thread has returned once the pool is idle.
    if (pool_) pool_->joinAll();
  } catch (const Poco::Exception&) {
  }
}

HttpServer::~HttpServer() {
  Stop();
  server_.reset();
  pool_.reset();
}

std::string UrlHost(const std::string& host) {
  if (host.find(':') != std::string::npos && host.front() != '[') return "[" + host + "]";
  return host;
}

}  // namespace docker_worker
