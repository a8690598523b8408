#include "support/test_http_server.h"

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/StreamCopier.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cctype>

namespace docker_worker::testing {

struct TestHttpServer::Impl {
  mutable std::mutex mu;
  std::condition_variable stopping_cv;
  bool stopping = false;
  Handler handler;
  std::vector<TestRequest> requests;
  std::unique_ptr<Poco::Net::HTTPServer> server;
  int port = 0;
};

namespace {

class Handler final : public Poco::Net::HTTPRequestHandler {
 public:
  explicit Handler(TestHttpServer::Impl& impl) : impl_(impl) {}
  void handleRequest(Poco::Net::HTTPServerRequest& req,
                     Poco::Net::HTTPServerResponse& resp) override {
    TestRequest r;
    r.method = req.getMethod();
    r.uri = req.getURI();
    r.host_header = req.getHost();
    for (const auto& [k, v] : req) {
      std::string name = k;
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      r.headers[name] = v;
    }
    Poco::StreamCopier::copyToString(req.stream(), r.body);
    TestHttpServer::Handler handler;
    {
      std::lock_guard lock(impl_.mu);
      impl_.requests.push_back(r);
      handler = impl_.handler;
    }
    TestResponse out = handler(r);
    resp.setStatus(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(out.status));
    for (const auto& [k, v] : out.headers) resp.set(k, v);
    resp.setContentLength(static_cast<std::streamsize>(out.body.size()));
    if (out.stall_after >= out.body.size()) {
      resp.send() << out.body;
      return;
    }
    std::ostream& stream = resp.send();
    stream.write(out.body.data(), static_cast<std::streamsize>(out.stall_after));
    stream.flush();
    std::unique_lock lock(impl_.mu);
    impl_.stopping_cv.wait_for(lock, std::chrono::minutes(5), [&] { return impl_.stopping; });
  }

 private:
  TestHttpServer::Impl& impl_;
};

class Factory final : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit Factory(TestHttpServer::Impl& impl) : impl_(impl) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new Handler(impl_);
  }

 private:
  TestHttpServer::Impl& impl_;
};

}  // namespace

TestHttpServer::TestHttpServer(Handler handler) : impl_(std::make_unique<Impl>()) {
  impl_->handler = std::move(handler);
  Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
  impl_->port = socket.address().port();
  auto* params = new Poco::Net::HTTPServerParams;
  params->setMaxThreads(8);
  impl_->server = std::make_unique<Poco::Net::HTTPServer>(new Factory(*impl_), socket, params);
  impl_->server->start();
}

TestHttpServer::~TestHttpServer() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->stopping_cv.notify_all();
  impl_->server->stopAll(true);
}

int TestHttpServer::port() const { return impl_->port; }

std::string TestHttpServer::url() const { return "http://127.0.0.1:" + std::to_string(port()); }

std::vector<TestRequest> TestHttpServer::requests() const {
  std::lock_guard lock(impl_->mu);
  return impl_->requests;
}

void TestHttpServer::set_handler(Handler handler) {
  std::lock_guard lock(impl_->mu);
  impl_->handler = std::move(handler);
}

}  // namespace docker_worker::testing
