// TaskclusterProxy against a recording upstream: routes, signing with the current credentials,
// authorizedScopes, peer filter, refusals, retries. No engine involved.
#include "docker_worker/taskcluster_proxy.h"

#include <catch2/catch.hpp>

#include "docker_worker/hawk.h"
#include "fakes/instant_clock.h"
#include "support/test_http_server.h"

namespace docker_worker {
namespace {

using testing::InstantClock;
using testing::TestHttpServer;
using testing::TestRequest;
using testing::TestResponse;

TEST_CASE("proxy: request targets map under the root URL", "[unit]") {
  const std::string root = "https://tc.example.com";
  struct Case {
    std::string target;
    std::string url;  // "" = refused
    Code code = Code::kOk;
  };
  const std::vector<Case> cases = {
      {"/api/queue/v1/task/abc", root + "/api/queue/v1/task/abc"},
      {"/api/queue/v1/task/abc/artifacts/public%2Fx?a=1&b=%20", root +
                                                                 "/api/queue/v1/task/abc/artifacts/"
                                                                 "public%2Fx?a=1&b=%20"},
      {"/queue/v1/task/abc", root + "/api/queue/v1/task/abc"},
      {"/secrets/v1/secret/x", root + "/api/secrets/v1/secret/x"},
      {"/api/queue/v1/", root + "/api/queue/v1/"},
      {"/", "", Code::kNotFound},
      {"/api", "", Code::kNotFound},
      {"/api/queue", "", Code::kNotFound},
      {"/queue", "", Code::kNotFound},
      {"/hooks.example.com/v1/x", "", Code::kNotFound},  // other hosts are not proxied
      {"/api/queue/v1/../../../etc", "", Code::kInvalidArgument},
      {"/api/queue/v1/%2e%2e/auth/v1/x", "", Code::kInvalidArgument},
      {"/queue/v1/./task", "", Code::kInvalidArgument},
      {"http://evil.example.com/api/queue/v1/x", "", Code::kInvalidArgument},
  };
  for (const auto& c : cases) {
    INFO(c.target);
    auto url = ProxyTargetUrl(root, c.target);
    if (c.url.empty()) {
      REQUIRE_FALSE(url.ok());
      CHECK(url.status().code() == c.code);
    } else {
      REQUIRE(url.ok());
      CHECK(*url == c.url);
    }
  }
}

struct ProxyHarness {
  TestHttpServer upstream{[](const TestRequest&) { return TestResponse{200, {}, "{}"}; }};
  InstantClock clock;
  HttpClient http;
  TaskclusterClient client{http, clock, upstream.url(),
                           Credentials{"task-client/A/0", "token-one", ""}};
  bool allow = true;
  std::unique_ptr<TaskclusterProxy> proxy;
  HttpClient caller;

  ProxyHarness() {
    TaskclusterProxyOptions o;
    o.port = 0;
    o.allow_peer = [this](const std::string& peer) { return allow && peer == "127.0.0.1"; };
    o.authorized_scopes = {"queue:create-artifact:A/0", "secrets:get:x"};
    auto p = TaskclusterProxy::Start(client, clock, o);
    REQUIRE(p.ok());
    proxy = std::move(*p);
  }

  HttpResponse Send(const std::string& method, const std::string& target,
                    const std::string& body = "", HttpHeaders headers = {}) {
    HttpRequest r;
    r.method = method;
    r.url = "http://127.0.0.1:" + std::to_string(proxy->port()) + target;
    r.body = body;
    r.headers = std::move(headers);
    r.max_error_body = 1 << 20;
    auto resp = caller.Send(r);
    REQUIRE(resp.ok());
    return *resp;
  }
};

std::optional<HawkClient> Lookup(const std::string& id) {
  if (id == "task-client/A/0") return HawkClient{"token-one", {"*"}};
  if (id == "task-client/A/0-renewed") return HawkClient{"token-two", {"*"}};
  return std::nullopt;
}

HawkIdentity Verify(const TestRequest& req, const std::string& host_port, Clock& clock) {
  HawkRequest h;
  h.method = req.method;
  h.resource = req.uri;
  h.host = "127.0.0.1";
  h.port = std::stoi(host_port.substr(host_port.rfind(':') + 1));
  h.authorization = req.headers.count("authorization") ? req.headers.at("authorization") : "";
  auto id = HawkVerify(h, Lookup, ToEpochMillis(clock.Now()) / 1000);
  REQUIRE(id.ok());
  return *id;
}

TEST_CASE("proxy: forwards method, path, query, body and headers, signed for the task",
          "[unit]") {
  ProxyHarness h;
  h.upstream.set_handler([](const TestRequest&) {
    return TestResponse{201, {{"X-Upstream", "yes"}, {"Content-Type", "application/json"}},
                        R"({"ok":true})"};
  });
  auto resp = h.Send("POST", "/api/queue/v1/task/A/runs/0/artifacts/public%2Fx?q=1",
                     R"({"storageType":"reference"})",
                     {{"Content-Type", "application/json"},
                      {"X-Custom", "kept"},
                      {"Authorization", "Hawk forged"}});
  CHECK(resp.status == 201);
  CHECK(resp.body == R"({"ok":true})");
  CHECK(resp.headers.Get("X-Upstream") == "yes");
  CHECK(resp.headers.Get("X-Taskcluster-Endpoint") ==
        h.upstream.url() + "/api/queue/v1/task/A/runs/0/artifacts/public%2Fx?q=1");
  CHECK(resp.headers.Get("X-Taskcluster-Proxy-Perm-ClientId") == "task-client/A/0");
  CHECK(resp.headers.Get("X-Taskcluster-Authorized-Scopes") ==
        R"(["queue:create-artifact:A/0","secrets:get:x"])");
  for (const auto& [name, value] : resp.headers.fields()) {
    CHECK(value.find("token-one") == std::string::npos);
  }
  auto reqs = h.upstream.requests();
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0].method == "POST");
  CHECK(reqs[0].uri == "/api/queue/v1/task/A/runs/0/artifacts/public%2Fx?q=1");
  CHECK(reqs[0].body == R"({"storageType":"reference"})");
  CHECK(reqs[0].headers.at("x-custom") == "kept");
  CHECK(reqs[0].headers.at("authorization") != "Hawk forged");
  HawkIdentity id = Verify(reqs[0], h.upstream.url(), h.clock);
  CHECK(id.client_id == "task-client/A/0");
  CHECK(id.scopes == std::vector<std::string>{"queue:create-artifact:A/0", "secrets:get:x"});
}

TEST_CASE("proxy: credentials swapped on the client are used by the next request", "[unit]") {
  ProxyHarness h;
  h.Send("GET", "/api/queue/v1/ping");
  h.client.SetCredentials({"task-client/A/0-renewed", "token-two", ""});
  h.Send("GET", "/api/queue/v1/ping");
  auto reqs = h.upstream.requests();
  REQUIRE(reqs.size() == 2);
  CHECK(Verify(reqs[0], h.upstream.url(), h.clock).client_id == "task-client/A/0");
  CHECK(Verify(reqs[1], h.upstream.url(), h.clock).client_id == "task-client/A/0-renewed");
}

TEST_CASE("proxy: 4xx pass through untouched, 5xx are retried", "[unit]") {
  ProxyHarness h;
  h.upstream.set_handler([](const TestRequest&) {
    return TestResponse{403, {}, R"({"code":"InsufficientScopes","message":"no"})"};
  });
  auto denied = h.Send("GET", "/api/queue/v1/task/B");
  CHECK(denied.status == 403);
  CHECK(denied.body == R"({"code":"InsufficientScopes","message":"no"})");
  CHECK(h.upstream.requests().size() == 1);

  int calls = 0;
  h.upstream.set_handler([&](const TestRequest&) {
    return ++calls < 3 ? TestResponse{503, {}, "busy"} : TestResponse{200, {}, "fine"};
  });
  auto ok = h.Send("GET", "/api/queue/v1/ping");
  CHECK(ok.status == 200);
  CHECK(ok.body == "fine");
  CHECK(calls == 3);
}

TEST_CASE("proxy: redirects come back instead of being followed", "[unit]") {
  ProxyHarness h;
  h.upstream.set_handler([](const TestRequest&) {
    return TestResponse{303, {{"Location", "https://bucket.example.com/blob"}}, ""};
  });
  auto resp = h.Send("GET", "/api/queue/v1/task/A/artifacts/public%2Fx");
  CHECK(resp.status == 303);
  CHECK(resp.headers.Get("Location") == "https://bucket.example.com/blob");
}

TEST_CASE("proxy: refusals forward nothing", "[unit]") {
  ProxyHarness h;
  CHECK(h.Send("PUT", "/credentials", R"({"clientId":"x","accessToken":"y"})").status == 403);
  CHECK(h.Send("GET", "/api/queue/v1/%2e%2e/%2E%2e/x").status == 400);  // curl squashes "../"
  CHECK(h.Send("GET", "/evil.example.com/steal").status == 404);
  CHECK(h.Send("POST", "/api/queue/v1/x", std::string((16u << 20) + 1, 'x')).status == 413);
  h.allow = false;
  auto stranger = h.Send("GET", "/api/queue/v1/ping");
  CHECK(stranger.status == 403);
  CHECK(stranger.body.find("only its own task") != std::string::npos);
  CHECK(h.upstream.requests().empty());
}

TEST_CASE("proxy: /bewit answers 303 with a signed URL under the root URL only", "[unit]") {
  ProxyHarness h;
  const std::string target = h.upstream.url() + "/api/queue/v1/task/A/artifacts/private%2Fx";
  auto resp = h.Send("POST", "/bewit", target);
  CHECK(resp.status == 303);
  auto location = resp.headers.Get("Location");
  REQUIRE(location);
  CHECK(location->rfind(target + "?bewit=", 0) == 0);
  CHECK(resp.body == *location);
  CHECK(h.Send("POST", "/bewit", "https://elsewhere.example.com/x").status == 400);
  CHECK(h.Send("GET", "/bewit").status == 405);
}

TEST_CASE("proxy: an unreachable root URL is a 502 naming the endpoint", "[unit]") {
  InstantClock clock;
  HttpClient http;
  TaskclusterClient client{http, clock, "http://127.0.0.1:1", Credentials{"c", "secret-tok", ""}};
  TaskclusterProxyOptions o;
  o.port = 0;
  o.allow_peer = [](const std::string&) { return true; };
  auto p = TaskclusterProxy::Start(client, clock, o);
  REQUIRE(p.ok());
  HttpClient caller;
  HttpRequest r;
  r.url = "http://127.0.0.1:" + std::to_string((*p)->port()) + "/api/queue/v1/ping";
  auto resp = caller.Send(r);
  REQUIRE(resp.ok());
  CHECK(resp->status == 502);
  CHECK(resp->body.find("127.0.0.1:1") != std::string::npos);
  CHECK(resp->body.find("secret-tok") == std::string::npos);
}

}  // namespace
}  // namespace docker_worker
