// TaskclusterClient, QueueClient and HttpRunQueue against a real HTTP server on loopback that
// checks every request's Hawk signature with our verifier.
#include <catch2/catch.hpp>

#include "docker_worker/gzip_file.h"
#include "docker_worker/http_run_queue.h"
#include "docker_worker/queue_client.h"
#include "docker_worker/sha256.h"
#include "fakes/instant_clock.h"
#include "fakes/temp_dir.h"
#include "support/test_http_server.h"

namespace docker_worker {
namespace {

using testing::InstantClock;
using testing::TempDir;
using testing::TestHttpServer;
using testing::TestRequest;
using testing::TestResponse;

const Credentials kWorker{"project/test/worker", "s3cr3t-worker-token-NEVER-LOGGED", ""};

// The identity Hawk proves for `r`, checked against kWorker.
Result<HawkIdentity> Verify(const TestRequest& r, int port, const InstantClock& clock) {
  HawkRequest h;
  h.method = r.method;
  h.resource = r.uri;
  h.host = "127.0.0.1";
  h.port = port;
  auto it = r.headers.find("authorization");
  h.authorization = it == r.headers.end() ? "" : it->second;
  return HawkVerify(
      h,
      [](const std::string& id) -> std::optional<HawkClient> {
        if (id != kWorker.client_id) return std::nullopt;
        return HawkClient{kWorker.access_token, {"*"}};
      },
      ToEpochMillis(clock.Now()) / 1000);
}

struct Fixture {
  InstantClock clock;
  HttpClient http;
  std::unique_ptr<TestHttpServer> server;
  std::unique_ptr<TaskclusterClient> tc;
  std::unique_ptr<QueueClient> queue;

  explicit Fixture(TestHttpServer::Handler handler) {
    server = std::make_unique<TestHttpServer>(std::move(handler));
    tc = std::make_unique<TaskclusterClient>(http, clock, server->url() + "/", kWorker);
    queue = std::make_unique<QueueClient>(*tc);
  }
};

TEST_CASE("gzip is byte-identical to upstream's artifact encoding", "[unit]") {
  TempDir dir;
  testing::WriteFile(dir / "in", "xfoo\n");
  auto size = GzipFile(dir / "in", dir / "out");
  REQUIRE(size.ok());
  CHECK(ToHex(testing::ReadFile(dir / "out")) ==
        "1f8b0800000000000003ab48cbcfe70200a7e6f65005000000");
  CHECK(*size == 25);
}

TEST_CASE("skipCompressionExtensions decide what is gzipped", "[unit]") {
  std::vector<std::string> skip = {".gz", ".zip", "lz4"};
  CHECK(ShouldGzip("public/logs/live.log", skip));
  CHECK_FALSE(ShouldGzip("public/build.tar.gz", skip));
  CHECK_FALSE(ShouldGzip("public/a.zip", skip));
  CHECK_FALSE(ShouldGzip("public/image.tar.lz4", skip));
}

TEST_CASE("calls are Hawk-signed, percent-encoded and parsed", "[unit]") {
  Fixture* f = nullptr;
  Fixture fx([&](const TestRequest& r) -> TestResponse {
    auto id = Verify(r, f->server->port(), f->clock);
    if (!id.ok()) return {401, {}, R"({"code":"AuthenticationFailed","message":"bad"})"};
    return {200, {}, R"({"tasks": []})"};
  });
  f = &fx;
  auto claims = fx.queue->ClaimWork("prov/wt", "group", "worker-1", 4, {});
  REQUIRE(claims.ok());
  CHECK(claims->empty());
  auto reqs = fx.server->requests();
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0].method == "POST");
  CHECK(reqs[0].uri == "/api/queue/v1/claim-work/prov%2Fwt");
  CHECK(reqs[0].body == R"({"workerGroup":"group","workerId":"worker-1","tasks":4})");
  CHECK(reqs[0].headers["content-type"] == "application/json");
}

TEST_CASE("5xx and network errors are retried with backoff, 4xx are not", "[unit]") {
  int calls = 0;
  Fixture fx([&](const TestRequest&) -> TestResponse {
    ++calls;
    if (calls < 3) return {503, {}, R"({"message":"try later"})"};
    return {200, {}, R"({"status": {"taskId": "x"}})"};
  });
  auto ok = fx.queue->ReportCompleted("dSlITZ4yQgmvxxAi4A8fHQ", 0);
  CHECK(ok.ok());
  CHECK(calls == 3);
  CHECK(fx.clock.sleeps() == 2);
  CHECK(fx.clock.slept() >= Millis(150 + 300));  // 200 ms and 400 ms, -25 %

  calls = 0;
  fx.server->set_handler([&](const TestRequest&) -> TestResponse {
    ++calls;
    return {409, {}, R"({"code":"RequestConflict","message":"run is not running\nmore"})"};
  });
  auto conflict = fx.queue->ReclaimTask("dSlITZ4yQgmvxxAi4A8fHQ", 0);
  REQUIRE_FALSE(conflict.ok());
  CHECK(conflict.status().code() == Code::kConflict);
  CHECK(calls == 1);
  CHECK(conflict.status().message().find("409 run is not running") != std::string::npos);
  CHECK(conflict.status().message().find("NEVER-LOGGED") == std::string::npos);

  fx.server->set_handler([&](const TestRequest&) -> TestResponse { return {500, {}, "{}"}; });
  auto down = fx.queue->ReportFailed("dSlITZ4yQgmvxxAi4A8fHQ", 0);
  CHECK(down.code() == Code::kUnavailable);
}

TEST_CASE("an unreachable queue is kUnavailable after the retries", "[unit]") {
  InstantClock clock;
  HttpClient http;
  TaskclusterClient tc(http, clock, "http://127.0.0.1:1", kWorker);
  QueueClient queue(tc);
  auto r = queue.Task("dSlITZ4yQgmvxxAi4A8fHQ");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Code::kUnavailable);
  CHECK(clock.sleeps() == 5);
}

TEST_CASE("claims are parsed, a malformed claim is a clear error", "[unit]") {
  const std::string claim = R"({"tasks": [{
      "status": {"taskId": "dSlITZ4yQgmvxxAi4A8fHQ"}, "runId": 2,
      "takenUntil": "2025-01-01T00:20:00.000Z",
      "credentials": {"clientId": "task-client/x", "accessToken": "tok",
                      "certificate": "{\"version\":1}"},
      "task": {"provisionerId": "prov", "workerType": "wt", "scopes": ["a:b"],
               "expires": "2026-01-01T00:00:00.000Z", "payload": {"image": "x"}}}]})";
  std::string answer = claim;
  Fixture fx([&](const TestRequest&) -> TestResponse { return {200, {}, answer}; });
  auto claims = fx.queue->ClaimWork("prov/wt", "g", "w", 1, {});
  REQUIRE(claims.ok());
  REQUIRE(claims->size() == 1);
  const Claim& c = (*claims)[0];
  CHECK(c.task_id == "dSlITZ4yQgmvxxAi4A8fHQ");
  CHECK(c.run_id == 2);
  CHECK(c.credentials.client_id == "task-client/x");
  CHECK(c.credentials.certificate == "{\"version\":1}");
  CHECK(c.task.scopes == std::vector<std::string>{"a:b"});
  CHECK(json::GetString(c.task.payload(), "image") == "x");
  // A malformed claim (or a taskId that is not a slugid) is dropped; the good ones still run.
  std::string evil = claim.substr(claim.find('[') + 1);
  evil = evil.substr(0, evil.rfind(']'));
  std::string evil_id = evil;
  evil_id.replace(evil_id.find("dSlITZ4yQgmvxxAi4A8fHQ"), 22, "../../../../etc/passwd");
  answer = R"({"tasks": [{"runId": 0}, )" + evil_id + ", " + evil + "]}";
  auto mixed = fx.queue->ClaimWork("prov/wt", "g", "w", 3, {});
  REQUIRE(mixed.ok());
  REQUIRE(mixed->size() == 1);
  CHECK((*mixed)[0].task_id == "dSlITZ4yQgmvxxAi4A8fHQ");
  answer = R"({"no": "tasks"})";
  auto bad = fx.queue->ClaimWork("prov/wt", "g", "w", 1, {});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().code() == Code::kInvalidArgument);
  CHECK(bad.status().message().find("malformed queue response") != std::string::npos);
}

TEST_CASE("file artifacts: createArtifact s3, then a gzipped PUT, retried on 5xx", "[unit]") {
  TempDir dir;
  testing::WriteFile(dir / "log", "xfoo\n");
  testing::WriteFile(dir / "img.png", "PNGDATA");
  Fixture* f = nullptr;
  int puts = 0;
  Fixture fx([&](const TestRequest& r) -> TestResponse {
    if (r.method == "PUT") {
      ++puts;
      if (puts == 1) return {500, {}, "oops"};
      return {200, {}, ""};
    }
    auto doc = json::Parse(r.body);
    std::string name = r.uri.substr(r.uri.rfind('/') + 1);
    return {200, {}, std::string(R"({"storageType":"s3","putUrl":")") + f->server->url() +
                         "/s3/" + name + "?sig=1\"}"};
  });
  f = &fx;
  HttpRunQueue run(*fx.queue, fx.http, fx.clock, "dSlITZ4yQgmvxxAi4A8fHQ", 0, dir / "work",
                   {".png"});
  Artifact log;
  log.name = "public/logs/live_backing.log";
  log.file = dir / "log";
  log.content_type = "text/plain; charset=utf-8";
  log.expires = FromEpochMillis(1767225600000);
  REQUIRE(run.CreateArtifact(log).ok());
  auto reqs = fx.server->requests();
  REQUIRE(reqs.size() == 4);  // create, PUT (500), create again, PUT
  CHECK(reqs[0].uri == "/api/queue/v1/task/dSlITZ4yQgmvxxAi4A8fHQ/runs/0/artifacts/"
                       "public%2Flogs%2Flive_backing.log");
  CHECK(reqs[0].body == R"({"storageType":"s3","expires":"2026-01-01T00:00:00.000Z",)"
                        R"("contentType":"text/plain; charset=utf-8"})");
  CHECK(reqs[3].method == "PUT");
  CHECK(reqs[3].headers["content-encoding"] == "gzip");
  CHECK(reqs[3].headers["content-type"] == "text/plain; charset=utf-8");
  CHECK(reqs[3].headers["content-length"] == "25");
  CHECK(ToHex(reqs[3].body) == "1f8b0800000000000003ab48cbcfe70200a7e6f65005000000");

  Artifact png = log;
  png.name = "public/img.png";
  png.file = dir / "img.png";
  png.content_type = "image/png";
  REQUIRE(run.CreateArtifact(png).ok());
  reqs = fx.server->requests();
  CHECK(reqs.back().body == "PNGDATA");
  CHECK(reqs.back().headers.count("content-encoding") == 0);
}

TEST_CASE("error, reference and link artifacts and resolutions", "[unit]") {
  Fixture fx([&](const TestRequest&) -> TestResponse { return {200, {}, "{}"}; });
  TempDir dir;
  HttpRunQueue run(*fx.queue, fx.http, fx.clock, "dSlITZ4yQgmvxxAi4A8fHQ", 1, dir.path(), {});
  Artifact e;
  e.kind = Artifact::Kind::kError;
  e.name = "public/missing";
  e.expires = FromEpochMillis(1767225600000);
  e.reason = "file-missing-on-worker";
  e.message = "not there";
  REQUIRE(run.CreateArtifact(e).ok());
  Artifact ref = e;
  ref.kind = Artifact::Kind::kReference;
  ref.name = "public/logs/live.log";
  ref.url = "http://worker:1234/log/abc";
  ref.content_type = "text/plain; charset=utf-8";
  REQUIRE(run.CreateArtifact(ref).ok());
  Artifact link = e;
  link.kind = Artifact::Kind::kLink;
  link.name = "public/logs/live.log";
  link.target = "public/logs/live_backing.log";
  REQUIRE(run.CreateArtifact(link).ok());
  REQUIRE(run.Resolve(Resolution::Exception("worker-shutdown")).ok());
  auto reqs = fx.server->requests();
  REQUIRE(reqs.size() == 4);
  CHECK(reqs[0].body == R"({"storageType":"error","expires":"2026-01-01T00:00:00.000Z",)"
                        R"("reason":"file-missing-on-worker","message":"not there"})");
  CHECK(reqs[1].body == R"({"storageType":"reference","expires":"2026-01-01T00:00:00.000Z",)"
                        R"("url":"http://worker:1234/log/abc","contentType":"text/plain; charset=utf-8"})");
  CHECK(reqs[2].body == R"({"storageType":"link","expires":"2026-01-01T00:00:00.000Z",)"
                        R"("artifact":"public/logs/live_backing.log"})");
  CHECK(reqs[3].uri == "/api/queue/v1/task/dSlITZ4yQgmvxxAi4A8fHQ/runs/1/exception");
  CHECK(reqs[3].body == R"({"reason":"worker-shutdown"})");
  Artifact evil = e;
  evil.name = "public/../../etc";
  CHECK(run.CreateArtifact(evil).code() == Code::kInvalidArgument);
}

}  // namespace
}  // namespace docker_worker
