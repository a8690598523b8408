#include "docker_worker/taskcluster_proxy.h"

#include <Poco/Exception.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>

#include <algorithm>
#include <cctype>
#include <istream>

#include "docker_worker/hawk.h"
#include "docker_worker/http_server.h"
#include "docker_worker/json.h"

namespace docker_worker {

struct TaskclusterProxy::Core {
  TaskclusterClient& client;
  Clock& clock;
  TaskclusterProxyOptions options;
  std::string authorized_scopes_json;  // options.authorized_scopes as a JSON array
};

namespace {

constexpr size_t kMaxBody = 16u << 20;

// Headers that describe one hop (RFC 9110 7.6.1) or that the proxy sets itself.
bool NotForwarded(std::string_view name) {
  for (const char* h : {"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
                        "Proxy-Authorization", "TE", "Trailer", "Transfer-Encoding", "Upgrade",
                        "Host", "Authorization", "Content-Length", "Expect"}) {
    if (EqualsIgnoreCase(name, h)) return true;
  }
  return false;
}

std::string MessageJson(const std::string& message) {
  json::Document doc(rapidjson::kObjectType);
  doc.AddMember("message", json::Str(message, doc.GetAllocator()), doc.GetAllocator());
  return json::Serialize(doc);
}

std::string ScopesJson(const std::vector<std::string>& scopes) {
  json::Document doc(rapidjson::kArrayType);
  for (const auto& s : scopes) doc.PushBack(json::Str(s, doc.GetAllocator()), doc.GetAllocator());
  return json::Serialize(doc);
}

class ProxyHandler final : public GuardedRequestHandler {
 public:
  explicit ProxyHandler(std::shared_ptr<TaskclusterProxy::Core> core) : core_(std::move(core)) {}

 private:
  void Reply(Poco::Net::HTTPServerResponse& response, int status, const std::string& body,
             const std::string& content_type = "application/json") {
    response.setStatusAndReason(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(status));
    response.setContentType(content_type);
    response.setContentLength(static_cast<std::streamsize>(body.size()));
    response.send() << body;
  }

  void Handle(Poco::Net::HTTPServerRequest& request,
              Poco::Net::HTTPServerResponse& response) override {
    const auto& o = core_->options;
    const std::string peer = request.clientAddress().host().toString();
    if (!o.allow_peer || !o.allow_peer(peer)) {
      return Reply(response, 403,
                   MessageJson("taskcluster proxy: this proxy serves only its own task"));
    }
    bool too_large = false;
    std::optional<std::string> read = ReadRequestBody(request, kMaxBody, &too_large);
    if (!read) {
      return Reply(response, 413, MessageJson("taskcluster proxy: request body over 16 MiB"));
    }
    std::string body = std::move(*read);
    const std::string& method = request.getMethod();
    const std::string& target = request.getURI();
    std::string path = target.substr(0, target.find('?'));
    if (path == "/credentials") {
      return Reply(response, 403,
                   MessageJson("taskcluster proxy: credentials are managed by the worker"));
    }
    if (path == "/bewit") return Bewit(method, body, response);

    auto url = ProxyTargetUrl(core_->client.root_url(), target);
    if (!url.ok()) {
      return Reply(response, url.status().code() == Code::kNotFound ? 404 : 400,
                   MessageJson("taskcluster proxy: " + url.status().message()));
    }
    Forward(request, method, *url, body, response);
  }

  void Bewit(const std::string& method, const std::string& body,
             Poco::Net::HTTPServerResponse& response) {
    if (method != "POST") {
      return Reply(response, 405, MessageJson("taskcluster proxy: POST the URL to /bewit"));
    }
    std::string url = body;
    while (!url.empty() && std::isspace(static_cast<unsigned char>(url.back()))) url.pop_back();
    const std::string& root = core_->client.root_url();
    if (url.rfind(root + "/", 0) != 0) {
      return Reply(response, 400,
                   MessageJson("taskcluster proxy: /bewit signs only URLs under " + root));
    }
    int64_t expires = ToEpochMillis(core_->clock.Now()) / 1000 + 3600;
    auto signed_url = HawkSignUrl(core_->client.credentials(), url, expires,
                                  core_->options.authorized_scopes);
    if (!signed_url.ok()) {
      return Reply(response, 400, MessageJson("taskcluster proxy: " + signed_url.status().message()));
    }
    response.set("Location", *signed_url);
    Reply(response, 303, *signed_url, "text/plain; charset=utf-8");
  }

  void Forward(Poco::Net::HTTPServerRequest& request, const std::string& method,
               const std::string& url, const std::string& body,
               Poco::Net::HTTPServerResponse& response) {
    const auto& o = core_->options;
    HttpRequest out;
    out.method = method;
    out.url = url;
    out.body = body;
    out.total_timeout = o.upstream_timeout;
    out.max_error_body = kMaxBody;
    for (const auto& [name, value] : request) {
      if (!NotForwarded(name)) out.headers.Add(name, value);
    }
    TcCallOptions call;
    call.authorized_scopes = o.authorized_scopes;
    Result<HttpResponse> answer = core_->client.Send(std::move(out), call);
    const Credentials creds = core_->client.credentials();
    response.set("X-Taskcluster-Endpoint", url);
    response.set("X-Taskcluster-Proxy-Version", std::string("docker-worker/") + DOCKER_WORKER_VERSION);
    response.set(creds.certificate.empty() ? "X-Taskcluster-Proxy-Perm-ClientId"
                                           : "X-Taskcluster-Proxy-Temp-ClientId",
                 creds.client_id);
    response.set("X-Taskcluster-Authorized-Scopes", core_->authorized_scopes_json);
    if (!answer.ok()) {
      return Reply(response, 502, MessageJson("taskcluster proxy: " + answer.status().message()));
    }
    for (const auto& [name, value] : answer->headers.fields()) {
      if (NotForwarded(name) || EqualsIgnoreCase(name, "Date")) continue;  // Poco sets its own Date
      response.add(name, value);
    }
    response.setStatusAndReason(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(answer->status));
    response.setContentLength(static_cast<std::streamsize>(answer->body.size()));
    response.send() << answer->body;
  }

  std::shared_ptr<TaskclusterProxy::Core> core_;
};

class ProxyHandlerFactory final : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit ProxyHandlerFactory(std::shared_ptr<TaskclusterProxy::Core> core)
      : core_(std::move(core)) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new ProxyHandler(core_);
  }

 private:
  std::shared_ptr<TaskclusterProxy::Core> core_;
};

bool DotSegment(std::string_view path) {
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view seg = path.substr(start, end - start);
    if (seg == "." || seg == ".." || EqualsIgnoreCase(seg, "%2e") || EqualsIgnoreCase(seg, "%2e%2e") ||
        EqualsIgnoreCase(seg, ".%2e") || EqualsIgnoreCase(seg, "%2e.")) {
      return true;
    }
    start = end + 1;
  }
  return false;
}

}  // namespace

Result<std::string> ProxyTargetUrl(const std::string& root_url, const std::string& target) {
  if (target.empty() || target[0] != '/') {
    return Status(Code::kInvalidArgument, "request target must start with /");
  }
  const size_t q = target.find('?');
  const std::string_view path = std::string_view(target).substr(0, q);
  if (DotSegment(path)) return Status(Code::kInvalidArgument, "no . or .. segments allowed");
  // Segments: "", a, b, ...
  std::vector<std::string_view> segs;
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    segs.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  auto plain = [](std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
    });
  };
  if (segs.size() >= 3 && segs[0] == "api" && plain(segs[1]) && plain(segs[2])) {
    return root_url + target;
  }
  if (segs.size() >= 2 && plain(segs[0]) && plain(segs[1]) && segs[0] != "api") {
    return root_url + "/api" + target;
  }
  return Status(Code::kNotFound,
                "unknown route " + std::string(path) +
                    "; use /api/<service>/<version>/<path> (forwarded to " + root_url + ")");
}

Result<std::unique_ptr<TaskclusterProxy>> TaskclusterProxy::Start(TaskclusterClient& client,
                                                                  Clock& clock,
                                                                  TaskclusterProxyOptions options) {
  std::unique_ptr<TaskclusterProxy> proxy(new TaskclusterProxy());
  HttpServerOptions http;
  http.host = options.listen_address;
  http.port = options.port;
  http.max_threads = options.max_threads;
  http.keep_alive = true;
  std::string scopes_json = ScopesJson(options.authorized_scopes);
  proxy->core_ =
      std::make_shared<Core>(Core{client, clock, std::move(options), std::move(scopes_json)});
  auto listening = HttpServer::Listen(http);
  if (!listening.ok()) return listening.status().Prefixed("taskcluster proxy: ");
  proxy->http_ = std::move(*listening);
  if (Status s = proxy->http_->Serve(new ProxyHandlerFactory(proxy->core_)); !s.ok()) {
    return s.Prefixed("taskcluster proxy: ");
  }
  return proxy;
}

int TaskclusterProxy::port() const { return http_->port(); }

void TaskclusterProxy::Stop() { http_->Stop(); }

}  // namespace docker_worker
