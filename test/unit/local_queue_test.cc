// LocalQueueServer on a real loopback socket, driven by our own client side (QueueClient over
// TaskclusterClient, Hawk-signed) and by raw signed requests where exact statuses matter. Time is
// a fake clock shared by server and clients, so claim expiry and deadlines need no waiting.
#include "docker_worker/local_queue.h"

#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/StreamSocket.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <thread>

#include "docker_worker/http_client.h"
#include "docker_worker/json.h"
#include "docker_worker/local_queue_command.h"
#include "docker_worker/queue_client.h"
#include "docker_worker/slugid.h"
#include "docker_worker/time_format.h"
#include "fakes/temp_dir.h"

namespace docker_worker {
namespace {

using testing::TempDir;
namespace fs = std::filesystem;

const Credentials kRoot{"test/root", "root-token-NEVER-LOGGED-0123456789", ""};
const Credentials kReader{"test/reader", "reader-token-NEVER-LOGGED-987654", ""};

// Moves only when told; sleeps (client retry backoff) return at once.
class StepClock final : public Clock {
 public:
  TimePoint Now() const override {
    std::lock_guard lock(mu_);
    return now_;
  }
  bool SleepUntil(TimePoint, std::stop_token stop) override { return !stop.stop_requested(); }
  void Advance(Millis d) {
    std::lock_guard lock(mu_);
    now_ += d;
  }

 private:
  mutable std::mutex mu_;
  TimePoint now_ = FromEpochMillis(1767225600000);  // 2026-01-01
};

struct Reply {
  long status = 0;
  HttpHeaders headers;
  std::string body;
  json::Document doc;  // null unless the body is JSON
};

std::string Str(const json::Value& v, const char* key) {
  return json::GetString(v, key).value_or("");
}

struct Fixture {
  TempDir dir;
  StepClock clock;
  HttpClient http;
  std::mutex log_mu;
  std::vector<std::string> log;
  LocalQueueOptions options;
  std::unique_ptr<LocalQueueServer> server;
  std::unique_ptr<TaskclusterClient> tc;
  std::unique_ptr<QueueClient> queue;

  explicit Fixture(const std::function<void(LocalQueueOptions&)>& tweak = {}) {
    options.data_dir = dir.path();
    options.clock = &clock;
    options.clients = {{kRoot.client_id, kRoot.access_token, {"*"}},
                       {kReader.client_id, kReader.access_token, {"queue:status:*"}}};
    options.claim_poll_timeout = std::chrono::milliseconds(200);
    options.sweep_interval = std::chrono::milliseconds(50);
    options.request_log = [this](const std::string& line) {
      std::lock_guard lock(log_mu);
      log.push_back(line);
    };
    if (tweak) tweak(options);
    Start();
  }

  void Start() {
    auto s = LocalQueueServer::Start(options);
    REQUIRE(s.ok());
    server = std::move(*s);
    tc = std::make_unique<TaskclusterClient>(http, clock, server->root_url(), kRoot);
    queue = std::make_unique<QueueClient>(*tc);
  }
  void Restart() {
    queue.reset();
    tc.reset();
    server.reset();
    Start();
  }

  std::vector<std::string> Log() {
    std::lock_guard lock(log_mu);
    return log;
  }

  // A raw request to <rootUrl><path>, Hawk-signed with `creds` unless they are empty.
  Reply Call(const std::string& method, const std::string& path, const std::string& body = "",
             const Credentials& creds = kRoot, HttpHeaders headers = {}) {
    return CallUrl(method, server->root_url() + path, body, creds, std::move(headers));
  }
  Reply CallUrl(const std::string& method, const std::string& url, const std::string& body = "",
                const Credentials& creds = Credentials{}, HttpHeaders headers = {}) {
    HttpRequest req;
    req.method = method;
    req.url = url;
    req.body = body;
    req.headers = std::move(headers);
    if (!body.empty() && !req.headers.Has("Content-Type")) {
      req.headers.Set("Content-Type", "application/json");
    }
    if (!creds.empty()) {
      HawkSignOptions sign;
      sign.ts = ToEpochMillis(clock.Now()) / 1000;
      sign.nonce = "n0nce1";
      auto header = HawkAuthorizationHeader(creds, method, url, sign);
      REQUIRE(header.ok());
      req.headers.Set("Authorization", *header);
    }
    auto r = http.Send(req);
    REQUIRE(r.ok());
    Reply out;
    out.status = r->status;
    out.headers = r->headers;
    out.body = r->body;
    auto doc = json::Parse(out.body);
    if (doc.ok()) out.doc = std::move(*doc);
    return out;
  }

  std::string Iso(Millis from_now) { return FormatIso(clock.Now() + from_now); }

  // A minimal valid task definition for test-prov/test-wt.
  std::string TaskJson(const std::string& extra = "", Millis deadline = std::chrono::hours(1)) {
    return R"({"provisionerId":"test-prov","workerType":"test-wt","created":")" + Iso(Millis(0)) +
           R"(","deadline":")" + Iso(deadline) +
           R"(","payload":{"image":"busybox"},"metadata":{"name":"t","description":"d",)"
           R"("owner":"me@example.com","source":"https://example.com/t"})" +
           extra + "}";
  }
  std::string CreateTask(const std::string& extra = "", Millis deadline = std::chrono::hours(1)) {
    std::string id = NewSlugId();
    auto def = json::Parse(TaskJson(extra, deadline));
    REQUIRE(def.ok());
    auto r = queue->CreateTask(id, *def);
    INFO((r.ok() ? "" : r.status().message()));
    REQUIRE(r.ok());
    return id;
  }
  Claim ClaimOne(const std::string& task_id) {
    auto claims = queue->ClaimWork("test-prov/test-wt", "wg", "wid", 1, {});
    REQUIRE(claims.ok());
    REQUIRE(claims->size() == 1);
    REQUIRE((*claims)[0].task_id == task_id);
    return (*claims)[0];
  }
  json::Document Status(const std::string& task_id) {
    auto r = queue->TaskStatus(task_id);
    REQUIRE(r.ok());
    json::Document doc;
    doc.CopyFrom((*r)["status"], doc.GetAllocator());
    return doc;
  }
};

// A QueueClient signing with a claim's temporary credentials.
struct TaskClient {
  TaskclusterClient tc;
  QueueClient queue;
  TaskClient(Fixture& f, const Credentials& creds)
      : tc(f.http, f.clock, f.server->root_url(), creds), queue(tc) {}
};

std::string ArtifactPath(const std::string& task_id, int run, const std::string& name) {
  return "/api/queue/v1/task/" + task_id + "/runs/" + std::to_string(run) + "/artifacts/" +
         UrlEscape(name);
}

json::Document Json(const std::string& text) {
  auto doc = json::Parse(text);
  REQUIRE(doc.ok());
  return std::move(*doc);
}

TEST_CASE("local-queue: create, claim, reclaim, upload, download, complete", "[unit]") {
  Fixture f;
  std::string id = f.CreateTask();

  // Defaults are filled in.
  auto def = f.queue->Task(id);
  REQUIRE(def.ok());
  CHECK(Str(*def, "schedulerId") == "-");
  CHECK(Str(*def, "projectId") == "none");
  CHECK(Str(*def, "taskGroupId") == id);
  CHECK(Str(*def, "taskQueueId") == "test-prov/test-wt");
  CHECK(Str(*def, "priority") == "lowest");
  CHECK(Str(*def, "requires") == "all-completed");
  CHECK(json::GetInt(*def, "retries") == 5);
  CHECK((*def)["dependencies"].IsArray());
  CHECK((*def)["routes"].IsArray());
  CHECK((*def)["scopes"].IsArray());
  CHECK((*def)["tags"].IsObject());
  CHECK((*def)["extra"].IsObject());
  CHECK(Str(*def, "expires") == FormatIso(f.clock.Now() + std::chrono::hours(1 + 365 * 24)));
  CHECK(Str(f.Status(id), "state") == "pending");

  Claim claim = f.ClaimOne(id);
  CHECK(claim.run_id == 0);
  CHECK(claim.taken_until == f.clock.Now() + std::chrono::seconds(1200));
  CHECK(claim.credentials.client_id == "task-client/" + id + "/0/on/wg/wid/until/" +
                                           std::to_string(ToEpochMillis(claim.taken_until) / 1000));
  CHECK_FALSE(claim.credentials.certificate.empty());
  CHECK(claim.task.provisioner_id == "test-prov");
  CHECK(Str(f.Status(id), "state") == "running");

  // Reclaim with the claim's credentials; the old ones stay valid until they expire.
  TaskClient first(f, claim.credentials);
  f.clock.Advance(std::chrono::minutes(5));
  auto renewal = first.queue.ReclaimTask(id, 0);
  REQUIRE(renewal.ok());
  CHECK(renewal->taken_until == f.clock.Now() + std::chrono::seconds(1200));
  CHECK(renewal->credentials.access_token != claim.credentials.access_token);
  TaskClient second(f, renewal->credentials);
  CHECK(first.queue.ReclaimTask(id, 0).ok());

  // s3 artifact: createArtifact, PUT to the putUrl, then read it back through getArtifact.
  auto req = Json(R"({"storageType":"s3","contentType":"text/plain","expires":")" +
                  f.Iso(std::chrono::hours(24)) + "\"}");
  auto created = second.queue.CreateArtifact(id, 0, "public/logs/live.log", req);
  REQUIRE(created.ok());
  CHECK(Str(*created, "storageType") == "s3");
  CHECK(Str(*created, "contentType") == "text/plain");
  CHECK(Str(*created, "expires") == f.Iso(std::chrono::minutes(45)));
  std::string put_url = Str(*created, "putUrl");
  REQUIRE(put_url.rfind(f.server->root_url() + "/_blob/", 0) == 0);
  Reply put = f.CallUrl("PUT", put_url, "gzipped-bytes", {},
                        {{"Content-Type", "text/plain"}, {"Content-Encoding", "gzip"}});
  CHECK(put.status == 200);
  // A larger body (libcurl sends Expect: 100-continue for it).
  auto big_req = Json(R"({"storageType":"s3","contentType":"application/octet-stream",)"
                      R"("expires":")" +
                      f.Iso(std::chrono::hours(24)) + "\"}");
  auto big = second.queue.CreateArtifact(id, 0, "public/big.bin", big_req);
  REQUIRE(big.ok());
  std::string bytes(3 << 20, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7);
  auto t0 = std::chrono::steady_clock::now();
  CHECK(f.CallUrl("PUT", Str(*big, "putUrl"), bytes, {},
                  {{"Content-Type", "application/octet-stream"}})
            .status == 200);
  auto big_url = f.queue->ArtifactUrl(id, 0, "public/big.bin");
  REQUIRE(big_url.ok());
  CHECK(f.CallUrl("GET", *big_url).body == bytes);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(900));
  // The old credentials can still create artifacts.
  CHECK(first.queue.CreateArtifact(id, 0, "public/other.txt", req).ok());

  auto url = f.queue->ArtifactUrl(id, 0, "public/logs/live.log");
  REQUIRE(url.ok());
  Reply got = f.CallUrl("GET", *url);
  CHECK(got.status == 200);
  CHECK(got.body == "gzipped-bytes");
  CHECK(got.headers.Get("Content-Type") == "text/plain");
  CHECK(got.headers.Get("Content-Encoding") == "gzip");
  Reply redirect = f.Call("GET", ArtifactPath(id, 0, "public/logs/live.log"));
  CHECK(redirect.status == 303);
  CHECK(redirect.headers.Get("Location") == *url);
  CHECK(Str(redirect.doc, "storageType") == "s3");
  CHECK(Str(redirect.doc, "url") == *url);
  CHECK(redirect.headers.Get("x-taskcluster-artifact-storage-type") == "s3");

  // Resolve; the same report again is idempotent, a different one conflicts.
  REQUIRE(second.queue.ReportCompleted(id, 0).ok());
  CHECK(second.queue.ReportCompleted(id, 0).ok());
  auto failed = second.queue.ReportFailed(id, 0);
  CHECK(failed.code() == Code::kConflict);
  auto status = f.Status(id);
  CHECK(Str(status, "state") == "completed");
  CHECK(Str(status["runs"][0], "reasonResolved") == "completed");
  CHECK(Str(status["runs"][0], "workerGroup") == "wg");
  CHECK(json::Find(status["runs"][0], "resolved"));
  CHECK(second.queue.ReclaimTask(id, 0).status().code() == Code::kConflict);
}

TEST_CASE("local-queue: claimWork long-polls and wakes when a task arrives", "[unit]") {
  SECTION("empty after the configured poll time") {
    Fixture f([](LocalQueueOptions& o) { o.claim_poll_timeout = std::chrono::milliseconds(300); });
    auto start = std::chrono::steady_clock::now();
    auto claims = f.queue->ClaimWork("test-prov/test-wt", "wg", "wid", 4, {});
    auto elapsed = std::chrono::steady_clock::now() - start;
    REQUIRE(claims.ok());
    CHECK(claims->empty());
    CHECK(elapsed >= std::chrono::milliseconds(250));
    CHECK(elapsed < std::chrono::seconds(5));
  }
  SECTION("wakes early") {
    Fixture f([](LocalQueueOptions& o) { o.claim_poll_timeout = std::chrono::seconds(30); });
    Result<std::vector<Claim>> claims = Status(Code::kInternal, "not yet");
    auto start = std::chrono::steady_clock::now();
    std::thread waiter(
        [&] { claims = f.queue->ClaimWork("test-prov/test-wt", "wg", "wid", 1, {}); });
    while (f.server->api().waiting_claims() < 1) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // waiting for a thread, not time
    }
    std::string id = f.CreateTask();
    waiter.join();
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
    REQUIRE(claims.ok());
    REQUIRE(claims->size() == 1);
    CHECK((*claims)[0].task_id == id);
  }
  SECTION("oldest first, at most `tasks`") {
    Fixture f;
    std::string a = f.CreateTask();
    f.clock.Advance(std::chrono::seconds(1));
    std::string b = f.CreateTask();
    f.clock.Advance(std::chrono::seconds(1));
    std::string c = f.CreateTask();
    auto claims = f.queue->ClaimWork("test-prov/test-wt", "wg", "wid", 2, {});
    REQUIRE(claims.ok());
    REQUIRE(claims->size() == 2);
    CHECK((*claims)[0].task_id == a);
    CHECK((*claims)[1].task_id == b);
    auto other = f.queue->ClaimWork("other-prov/test-wt", "wg", "wid", 2, {});
    REQUIRE(other.ok());
    CHECK(other->empty());
  }
}

TEST_CASE("local-queue: expired claims become claim-expired and are retried", "[unit]") {
  Fixture f;
  std::string id = f.CreateTask();
  Claim claim = f.ClaimOne(id);
  f.clock.Advance(std::chrono::seconds(1201));
  auto status = f.Status(id);
  REQUIRE(status["runs"].Size() == 2);
  CHECK(Str(status["runs"][0], "state") == "exception");
  CHECK(Str(status["runs"][0], "reasonResolved") == "claim-expired");
  CHECK(Str(status["runs"][1], "state") == "pending");
  CHECK(Str(status["runs"][1], "reasonCreated") == "retry");
  CHECK(json::GetInt(status, "retriesLeft") == 4);
  TaskClient old(f, claim.credentials);
  CHECK(old.queue.ReclaimTask(id, 0).status().code() == Code::kConflict);
  CHECK(old.queue.ReportCompleted(id, 0).code() == Code::kConflict);
  // The old run's credentials cannot touch the new run.
  CHECK(old.queue.ReportCompleted(id, 1).code() == Code::kPermissionDenied);
  Claim retry = f.ClaimOne(id);
  CHECK(retry.run_id == 1);

  SECTION("no retry when none remain") {
    std::string once = f.CreateTask(R"(,"retries":0)");
    f.ClaimOne(once);
    f.clock.Advance(std::chrono::seconds(1201));
    auto s = f.Status(once);
    CHECK(s["runs"].Size() == 1);
    CHECK(Str(s, "state") == "exception");
  }
}

TEST_CASE("local-queue: deadlines resolve runs as deadline-exceeded", "[unit]") {
  // Claims outlive the deadline here, so the task's credentials are still valid afterwards.
  Fixture f([](LocalQueueOptions& o) { o.claim_timeout = std::chrono::hours(1); });
  std::string running = f.CreateTask("", std::chrono::minutes(30));
  Claim claim = f.ClaimOne(running);
  std::string pending = f.CreateTask("", std::chrono::minutes(30));
  f.clock.Advance(std::chrono::minutes(31));
  for (const auto& id : {running, pending}) {
    auto s = f.Status(id);
    CHECK(Str(s, "state") == "exception");
    CHECK(s["runs"].Size() == 1);
    CHECK(Str(s["runs"][0], "reasonResolved") == "deadline-exceeded");
  }
  TaskClient task(f, claim.credentials);
  CHECK(task.queue.ReclaimTask(running, 0).status().code() == Code::kConflict);
  CHECK(task.queue.ReportCompleted(running, 0).code() == Code::kConflict);
  auto claims = f.queue->ClaimWork("test-prov/test-wt", "wg", "wid", 1, {});
  REQUIRE(claims.ok());
  CHECK(claims->empty());
}

TEST_CASE("local-queue: cancelTask, reportException and retries", "[unit]") {
  Fixture f([](LocalQueueOptions& o) { o.claim_timeout = std::chrono::hours(1); });
  std::string id = f.CreateTask();
  Claim claim = f.ClaimOne(id);
  TaskClient task(f, claim.credentials);
  auto cancelled = f.queue->CancelTask(id);
  REQUIRE(cancelled.ok());
  CHECK(Str((*cancelled)["status"], "state") == "exception");
  CHECK(Str((*cancelled)["status"]["runs"][0], "reasonResolved") == "canceled");
  Reply reclaim =
      f.Call("POST", "/api/queue/v1/task/" + id + "/runs/0/reclaim", "", claim.credentials);
  CHECK(reclaim.status == 409);
  CHECK(Str(reclaim.doc, "code") == "RequestConflict");
  CHECK(task.queue.ReportCompleted(id, 0).code() == Code::kConflict);
  // Artifacts are still accepted for 25 minutes after an exception.
  auto req = Json(R"({"storageType":"error","reason":"file-missing-on-worker","message":"m",)"
                  R"("expires":")" +
                  f.Iso(std::chrono::hours(2)) + "\"}");
  CHECK(task.queue.CreateArtifact(id, 0, "public/x", req).ok());
  f.clock.Advance(std::chrono::minutes(26));
  CHECK(task.queue.CreateArtifact(id, 0, "public/y", req).status().code() == Code::kConflict);

  SECTION("worker-shutdown retries, malformed-payload does not") {
    std::string a = f.CreateTask();
    Claim ca = f.ClaimOne(a);
    TaskClient ta(f, ca.credentials);
    REQUIRE(ta.queue.ReportException(a, 0, "worker-shutdown").ok());
    CHECK(ta.queue.ReportException(a, 0, "worker-shutdown").ok());  // idempotent
    auto s = f.Status(a);
    REQUIRE(s["runs"].Size() == 2);
    CHECK(Str(s["runs"][1], "reasonCreated") == "retry");
    Claim cb = f.ClaimOne(a);
    TaskClient tb(f, cb.credentials);
    REQUIRE(tb.queue.ReportException(a, 1, "malformed-payload").ok());
    s = f.Status(a);
    CHECK(s["runs"].Size() == 2);
    CHECK(Str(s, "state") == "exception");
    Reply bad = f.Call("POST", "/api/queue/v1/task/" + a + "/runs/1/exception",
                       R"({"reason":"because"})", cb.credentials);
    CHECK(bad.status == 400);
  }
}

TEST_CASE("local-queue: reference, link and error artifacts, listings", "[unit]") {
  Fixture f;
  std::string id = f.CreateTask();
  Claim claim = f.ClaimOne(id);
  TaskClient task(f, claim.credentials);
  std::string expires = f.Iso(std::chrono::hours(3));
  auto make = [&](const std::string& name, const std::string& body) {
    auto r = task.queue.CreateArtifact(id, 0, name, Json(body));
    INFO(name << ": " << (r.ok() ? "" : r.status().message()));
    REQUIRE(r.ok());
    return std::move(*r);
  };
  make("public/live.log", R"({"storageType":"reference","contentType":"text/plain",)"
                          R"("url":"http://livelog.example/log","expires":")" +
                              expires + "\"}");
  make("public/link",
       R"({"storageType":"link","artifact":"public/live.log","expires":")" + expires + "\"}");
  make("public/missing", R"({"storageType":"error","reason":"file-missing-on-worker",)"
                         R"("message":"no such file","expires":")" +
                             expires + "\"}");
  make("private/secret.txt",
       R"({"storageType":"s3","contentType":"text/plain","expires":")" + expires + "\"}");
  make("public/cycle-a",
       R"({"storageType":"link","artifact":"public/cycle-b","expires":")" + expires + "\"}");
  make("public/cycle-b",
       R"({"storageType":"link","artifact":"public/cycle-a","expires":")" + expires + "\"}");

  Reply ref = f.Call("GET", ArtifactPath(id, 0, "public/live.log"));
  CHECK(ref.status == 303);
  CHECK(ref.headers.Get("Location") == "http://livelog.example/log");
  Reply link = f.Call("GET", "/api/queue/v1/task/" + id + "/artifacts/public/link");
  CHECK(link.status == 303);
  CHECK(link.headers.Get("Location") == "http://livelog.example/log");
  CHECK(Str(link.doc, "storageType") == "reference");
  Reply error = f.Call("GET", ArtifactPath(id, 0, "public/missing"));
  CHECK(error.status == 424);
  CHECK(Str(error.doc, "reason") == "file-missing-on-worker");
  CHECK(Str(error.doc, "message") == "no such file");
  Reply cycle = f.Call("GET", ArtifactPath(id, 0, "public/cycle-a"));
  CHECK(cycle.status == 400);
  CHECK(f.Call("GET", ArtifactPath(id, 0, "public/nope")).status == 404);

  // The artifact-content routes answer 200 with the official shapes.
  Reply content = f.Call("GET", "/api/queue/v1/task/" + id + "/runs/0/artifact-content/" +
                                    UrlEscape("public/missing"));
  CHECK(content.status == 200);
  CHECK(Str(content.doc, "storageType") == "error");
  CHECK(Str(content.doc, "reason") == "file-missing-on-worker");
  content = f.Call("GET", "/api/queue/v1/task/" + id + "/artifact-content/public/link");
  CHECK(content.status == 200);
  CHECK(Str(content.doc, "url") == "http://livelog.example/log");
  Reply info = f.Call("GET", "/api/queue/v1/task/" + id + "/runs/0/artifact-info/public/link");
  CHECK(info.status == 200);
  CHECK(Str(info.doc, "storageType") == "link");
  CHECK(Str(info.doc, "name") == "public/link");
  CHECK(Str(info.doc, "contentType") == "application/binary");
  CHECK(Str(info.doc, "expires") == expires);

  // Anonymous callers read public/ but not private/.
  CHECK(f.Call("GET", ArtifactPath(id, 0, "public/live.log"), "", {}).status == 303);
  Reply denied = f.Call("GET", ArtifactPath(id, 0, "private/secret.txt"), "", {});
  CHECK(denied.status == 403);
  CHECK(Str(denied.doc, "message").find("queue:get-artifact:private/secret.txt") !=
        std::string::npos);

  // Listing, with paging.
  Reply list = f.Call("GET", "/api/queue/v1/task/" + id + "/runs/0/artifacts");
  REQUIRE(list.status == 200);
  REQUIRE(list.doc["artifacts"].Size() == 6);
  CHECK(Str(list.doc["artifacts"][0], "name") == "private/secret.txt");
  CHECK_FALSE(json::Find(list.doc, "continuationToken"));
  std::vector<std::string> names;
  std::string token;
  do {
    Reply page = f.Call("GET", "/api/queue/v1/task/" + id + "/artifacts?limit=4" +
                                   (token.empty() ? "" : "&continuationToken=" + token));
    REQUIRE(page.status == 200);
    for (const auto& a : page.doc["artifacts"].GetArray()) names.push_back(Str(a, "name"));
    token = Str(page.doc, "continuationToken");
  } while (!token.empty());
  CHECK(names.size() == 6);

  // Same properties again: fine; different: 409; a reference may be replaced by a link.
  make("public/missing", R"({"storageType":"error","reason":"file-missing-on-worker",)"
                         R"("message":"no such file","expires":")" +
                             expires + "\"}");
  auto clash = task.queue.CreateArtifact(
      id, 0, "public/missing",
      Json(R"({"storageType":"s3","contentType":"text/plain","expires":")" + expires + "\"}"));
  CHECK(clash.status().code() == Code::kConflict);
  make("public/live.log",
       R"({"storageType":"link","artifact":"public/missing","expires":")" + expires + "\"}");
  CHECK(f.Call("GET", ArtifactPath(id, 0, "public/live.log")).status == 424);
  // Expiry after the task's is refused.
  auto late = task.queue.CreateArtifact(
      id, 0, "public/late",
      Json(R"({"storageType":"s3","contentType":"text/plain","expires":")" +
           f.Iso(std::chrono::hours(24 * 800)) + "\"}"));
  CHECK(late.status().code() == Code::kInvalidArgument);
}

TEST_CASE("local-queue: scopes and Hawk are enforced", "[unit]") {
  Fixture f;
  std::string id = f.CreateTask(R"(,"scopes":["secrets:get:x"],"routes":["index.a.b"])");

  // A client without the createTask scopes gets a 403 naming what is missing.
  Reply create = f.Call("PUT", "/api/queue/v1/task/" + NewSlugId(), f.TaskJson(), kReader);
  CHECK(create.status == 403);
  CHECK(Str(create.doc, "code") == "InsufficientScopes");
  std::string message = Str(create.doc, "message");
  CHECK(message.find("test/reader") != std::string::npos);
  CHECK(message.find("queue:create-task:lowest:test-prov/test-wt") != std::string::npos);
  CHECK(Str(create.doc["requestInfo"], "method") == "createTask");
  // ...but may read the status.
  CHECK(f.Call("GET", "/api/queue/v1/task/" + id + "/status", "", kReader).status == 200);

  // Bad signatures: 401 with WWW-Authenticate.
  Credentials wrong = kRoot;
  wrong.access_token = "not-the-token";
  Reply bad = f.Call("GET", "/api/queue/v1/task/" + id + "/status", "", wrong);
  CHECK(bad.status == 401);
  CHECK(bad.headers.Get("WWW-Authenticate") == "hawk");
  CHECK(Str(bad.doc, "code") == "AuthenticationFailed");
  CHECK(f.Call("GET", "/api/queue/v1/task/" + id + "/status", "", Credentials{"nobody", "x", ""})
            .status == 401);
  CHECK(f.Call("GET", "/api/queue/v1/task/" + id + "/status", "", {},
               {{"Authorization", "Hawk garbage"}})
            .status == 401);
  // A replayed header signed for another URL fails too.
  f.clock.Advance(std::chrono::hours(1));  // and a stale timestamp
  HawkSignOptions stale;
  stale.ts = ToEpochMillis(f.clock.Now()) / 1000 - 3600;
  stale.nonce = "abc";
  std::string url = f.server->root_url() + "/api/queue/v1/task/" + id + "/status";
  auto header = HawkAuthorizationHeader(kRoot, "GET", url, stale);
  REQUIRE(header.ok());
  CHECK(f.CallUrl("GET", url, "", {}, {{"Authorization", *header}}).status == 401);

  // Anonymous: no scopes beyond the anonymous role.
  CHECK(f.Call("GET", "/api/queue/v1/task/" + id, "", {}).status == 403);

  // Temporary credentials carry the task's scopes and act only on their own run.
  std::string other = f.CreateTask();
  auto claims = f.queue->ClaimWork("test-prov/test-wt", "wg", "wid", 2, {});
  REQUIRE(claims.ok());
  REQUIRE(claims->size() == 1);  // the first task passed its deadline with the hour above
  Claim c = (*claims)[0];
  CHECK(c.task_id == other);
  Reply current = f.Call("GET", "/api/auth/v1/scopes/current", "", c.credentials);
  REQUIRE(current.status == 200);
  CHECK(Str(current.doc, "clientId") == c.credentials.client_id);
  CHECK(current.doc["scopes"][0] == ("queue:reclaim-task:" + other + "/0").c_str());
  CHECK(current.doc["scopes"][1] == ("queue:resolve-task:" + other + "/0").c_str());
  TaskClient task(f, c.credentials);
  std::string third = f.CreateTask();
  Claim c3 = f.ClaimOne(third);
  CHECK(task.queue.ReportCompleted(third, 0).code() == Code::kPermissionDenied);
  CHECK(task.queue.ReclaimTask(third, 0).status().code() == Code::kPermissionDenied);
  CHECK(task.queue.ReportCompleted(other, 0).ok());
  // authorizedScopes narrow what a client may do.
  TcCallOptions narrowed;
  narrowed.authorized_scopes = std::vector<std::string>{"queue:status:*"};
  auto r = f.tc->Call("GET", "queue", "task/" + third, nullptr, narrowed);
  CHECK(r.status().code() == Code::kPermissionDenied);
  r = f.tc->Call("GET", "queue", "task/" + third + "/status", nullptr, narrowed);
  CHECK(r.ok());
}

TEST_CASE("local-queue: createTask validates, is idempotent and conflicts", "[unit]") {
  Fixture f;
  std::string id = NewSlugId();
  std::string body = f.TaskJson(R"(,"priority":"high","taskQueueId":"test-prov/test-wt")");
  Reply first = f.Call("PUT", "/api/queue/v1/task/" + id, body);
  REQUIRE(first.status == 200);
  CHECK(Str(first.doc["status"], "state") == "pending");
  CHECK(Str(first.doc["status"], "priority") == "high");
  CHECK(f.Call("PUT", "/api/queue/v1/task/" + id, body).status == 200);
  Reply conflict = f.Call("PUT", "/api/queue/v1/task/" + id, f.TaskJson());
  CHECK(conflict.status == 409);
  CHECK(Str(conflict.doc, "code") == "RequestConflict");

  struct Case {
    const char* what;
    std::string body;
  };
  std::vector<Case> cases = {
      {"unknown property", f.TaskJson(R"(,"bogus":1)")},
      {"bad priority", f.TaskJson(R"(,"priority":"urgent")")},
      {"queue mismatch", f.TaskJson(R"(,"taskQueueId":"other/test-wt")")},
      {"bad retries", f.TaskJson(R"(,"retries":99)")},
      {"deadline too far", f.TaskJson("", std::chrono::hours(24 * 6))},
      {"no metadata", R"({"provisionerId":"p","workerType":"w","created":")" + f.Iso(Millis(0)) +
                          R"(","deadline":")" + f.Iso(std::chrono::hours(1)) +
                          R"(","payload":{}})"},
      {"not an object", "[]"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    Reply r = f.Call("PUT", "/api/queue/v1/task/" + NewSlugId(), c.body);
    CHECK(r.status == 400);
    CHECK_FALSE(Str(r.doc, "message").empty());
  }
  CHECK(f.Call("PUT", "/api/queue/v1/task/not-a-slug", f.TaskJson()).status == 400);
}

TEST_CASE("local-queue: restart keeps tasks, runs, artifacts, blobs and credentials", "[unit]") {
  Fixture f;
  std::string done = f.CreateTask();
  Claim c1 = f.ClaimOne(done);
  TaskClient t1(f, c1.credentials);
  auto created =
      t1.queue.CreateArtifact(done, 0, "public/a.txt",
                              Json(R"({"storageType":"s3","contentType":"text/plain","expires":")" +
                                   f.Iso(std::chrono::hours(2)) + "\"}"));
  REQUIRE(created.ok());
  REQUIRE(f.CallUrl("PUT", Str(*created, "putUrl"), "hello", {}, {{"Content-Type", "text/plain"}})
              .status == 200);
  REQUIRE(t1.queue.ReportCompleted(done, 0).ok());
  std::string running = f.CreateTask();
  Claim c2 = f.ClaimOne(running);
  std::string pending = f.CreateTask();
  // One server per directory.
  LocalQueueOptions twin = f.options;
  auto second_server = LocalQueueServer::Start(twin);
  REQUIRE_FALSE(second_server.ok());
  CHECK(second_server.status().message().find("another local-queue is already serving") !=
        std::string::npos);

  f.Restart();
  CHECK(Str(f.Status(done), "state") == "completed");
  CHECK(Str(f.Status(running), "state") == "running");
  CHECK(Str(f.Status(pending), "state") == "pending");
  auto url = f.queue->ArtifactUrl(done, 0, "public/a.txt");
  REQUIRE(url.ok());
  Reply blob = f.CallUrl("GET", *url);
  CHECK(blob.status == 200);
  CHECK(blob.body == "hello");
  // Credentials issued before the restart still work.
  TaskClient t2(f, c2.credentials);
  CHECK(t2.queue.ReclaimTask(running, 0).ok());
  CHECK(t2.queue.ReportCompleted(running, 0).ok());
  Claim c3 = f.ClaimOne(pending);
  CHECK(c3.run_id == 0);
}

TEST_CASE("local-queue: hostile input is refused cleanly", "[unit]") {
  Fixture f([](LocalQueueOptions& o) {
    o.max_request_bytes = 64 * 1024;
    o.max_blob_bytes = 1024;
  });
  std::string id = f.CreateTask();
  Claim claim = f.ClaimOne(id);
  std::string run = "/api/queue/v1/task/" + id + "/runs/0";

  Reply malformed = f.Call("PUT", "/api/queue/v1/task/" + NewSlugId(), "{not json");
  CHECK(malformed.status == 400);
  CHECK(Str(malformed.doc, "code") == "MalformedPayload");
  CHECK(f.Call("PUT", "/api/queue/v1/task/" + NewSlugId(), std::string(50000, '[')).status == 400);
  Reply huge = f.Call("PUT", "/api/queue/v1/task/" + NewSlugId(), std::string(200000, ' '));
  CHECK(huge.status == 413);
  CHECK(Str(huge.doc, "code") == "InputTooLarge");
  CHECK(f.Call("GET", "/api/queue/v1/no/such/thing").status == 404);
  CHECK(f.Call("GET", "/api/secrets/v1/secret/x").status == 404);
  CHECK(f.Call("GET", "/etc/passwd").status == 404);
  CHECK(f.Call("GET", run + "/artifacts/%zz").status == 400);
  CHECK(f.Call("GET", run + "/artifacts/a%00b").status == 400);
  CHECK(f.Call("POST", "/api/queue/v1/task/" + id + "/runs/99999/reclaim", "", claim.credentials)
            .status == 400);
  std::string body = R"({"storageType":"s3","contentType":"text/plain","expires":")" +
                     f.Iso(std::chrono::hours(1)) + "\"}";
  for (const char* name : {"..%2F..%2Fetc%2Fpasswd", "public%2F..%2F..%2Fx", "%2Fabs",
                           "public%2F.%2Fx", "a%0Ab", "bad%FFutf8"}) {
    INFO(name);
    Reply r = f.Call("POST", run + "/artifacts/" + name, body, claim.credentials);
    CHECK(r.status == 400);
  }
  for (const char* token :
       {"..%2F..%2Flocal-queue.db", "../local-queue.db", "short", "%2e%2e%2flocal-queue.db"}) {
    INFO(token);
    CHECK(f.CallUrl("GET", f.server->root_url() + "/_blob/" + token).status == 404);
    CHECK(f.CallUrl("PUT", f.server->root_url() + "/_blob/" + token, "x", {},
                    {{"Content-Type", "text/plain"}})
              .status == 404);
  }
  // Uploads: wrong Content-Type, too large.
  auto created =
      TaskClient(f, claim.credentials).queue.CreateArtifact(id, 0, "public/b.txt", Json(body));
  REQUIRE(created.ok());
  std::string put_url = Str(*created, "putUrl");
  CHECK(f.CallUrl("PUT", put_url, "x", {}, {{"Content-Type", "text/html"}}).status == 400);
  CHECK(f.CallUrl("PUT", put_url, std::string(2048, 'x'), {}, {{"Content-Type", "text/plain"}})
            .status == 413);
  CHECK(f.CallUrl("PUT", put_url, "ok", {}, {{"Content-Type", "text/plain"}}).status == 200);
  // The PUT URL expires after 45 minutes.
  f.clock.Advance(std::chrono::minutes(46));
  CHECK(f.CallUrl("PUT", put_url, "ok", {}, {{"Content-Type", "text/plain"}}).status == 403);
  // Raw bytes in a request line reach the log %-escaped, so every line stays ASCII JSON.
  {
    Poco::Net::StreamSocket raw(Poco::Net::SocketAddress("127.0.0.1", f.server->port()));
    std::string request = "GET /a\xfe\xfd\"x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
    raw.sendBytes(request.data(), static_cast<int>(request.size()));
    char buf[512];
    CHECK(raw.receiveBytes(buf, sizeof buf) > 0);
  }
  bool logged = false;
  for (int i = 0; i < 5000 && !logged; ++i) {
    for (const auto& line : f.Log())
      logged = logged || line.find("/a%FE%FD\\\"x") != std::string::npos;
    if (!logged) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  CHECK(logged);
  for (const auto& line : f.Log()) {
    CHECK(json::Parse(line).ok());
    CHECK(std::all_of(line.begin(), line.end(), [](char c) { return c >= 0x20 && c < 0x7f; }));
  }
  // Nothing was written outside blobs/ (the hostile tokens above aimed at local-queue.db): the
  // data directory holds only the server's own files, blobs/ only blob names, the database is
  // still SQLite, and the server still answers.
  for (const auto& e : fs::directory_iterator(f.dir.path())) {
    const std::string name = e.path().filename().string();
    INFO(name);
    CHECK((name == "blobs" || name.rfind("local-queue.", 0) == 0));
  }
  for (const auto& e : fs::recursive_directory_iterator(f.dir / "blobs")) {
    INFO(e.path());
    CHECK(e.is_regular_file());
    CHECK(e.path().filename().string().size() == 44);
  }
  CHECK(testing::ReadFile(f.dir / "local-queue.db").rfind(std::string("SQLite format 3\0", 16), 0) == 0);
  CHECK(f.Call("GET", "/api/queue/v1/ping", "", {}).status == 200);
}

TEST_CASE("local-queue: index and auth endpoints", "[unit]") {
  Fixture f;
  std::string id = f.CreateTask();
  std::string entry = R"({"taskId":")" + id + R"(","rank":5,"data":{"k":"v"},"expires":")" +
                      f.Iso(std::chrono::hours(48)) + "\"}";
  Reply put = f.Call("PUT", "/api/index/v1/task/project.test.latest", entry);
  REQUIRE(put.status == 200);
  CHECK(Str(put.doc, "namespace") == "project.test.latest");
  Reply found = f.Call("GET", "/api/index/v1/task/project.test.latest", "", {});  // anonymous
  REQUIRE(found.status == 200);
  CHECK(Str(found.doc, "taskId") == id);
  CHECK(json::GetInt(found.doc, "rank") == 5);
  CHECK(Str(found.doc["data"], "k") == "v");
  // A lower rank does not replace the entry.
  std::string other = NewSlugId();
  f.Call("PUT", "/api/index/v1/task/project.test.latest",
         R"({"taskId":")" + other + R"(","rank":1,"data":{},"expires":")" +
             f.Iso(std::chrono::hours(48)) + "\"}");
  CHECK(Str(f.Call("GET", "/api/index/v1/task/project.test.latest").doc, "taskId") == id);
  CHECK(f.Call("GET", "/api/index/v1/task/project.none").status == 404);
  CHECK(f.Call("PUT", "/api/index/v1/task/project.x", entry, kReader).status == 403);

  Reply current = f.Call("GET", "/api/auth/v1/scopes/current");
  REQUIRE(current.status == 200);
  CHECK(Str(current.doc, "clientId") == kRoot.client_id);
  CHECK(current.doc["scopes"][0] == "*");
  Reply expanded = f.Call("POST", "/api/auth/v1/scopes/expand", R"({"scopes":["b","a","b"]})");
  REQUIRE(expanded.status == 200);
  REQUIRE(expanded.doc["scopes"].Size() == 2);
  CHECK(expanded.doc["scopes"][0] == "a");
}

TEST_CASE("local-queue: one JSON log line per request, without secrets", "[unit]") {
  Fixture f;
  std::string id = f.CreateTask();
  Claim claim = f.ClaimOne(id);
  TaskClient task(f, claim.credentials);
  auto created = task.queue.CreateArtifact(
      id, 0, "public/a.txt",
      Json(R"({"storageType":"s3","contentType":"text/plain","expires":")" +
           f.Iso(std::chrono::hours(2)) + "\"}"));
  REQUIRE(created.ok());
  std::string put_url = Str(*created, "putUrl");
  f.CallUrl("PUT", put_url, "hello", {}, {{"Content-Type", "text/plain"}});
  auto url = f.queue->ArtifactUrl(id, 0, "public/a.txt");
  REQUIRE(url.ok());
  f.CallUrl("GET", *url);
  f.Call("GET", "/api/queue/v1/task/" + id + "/status", "", Credentials{"nobody", "x", ""});

  // A request is logged once its response is sent, so the last line may trail the reply.
  auto log = f.Log();
  for (int i = 0; i < 5000 && log.size() < 7; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    log = f.Log();
  }
  REQUIRE(log.size() == 7);
  int blob_gets = 0;
  for (const auto& line : log) {
    INFO(line);
    auto doc = json::Parse(line);
    REQUIRE(doc.ok());
    for (const char* key : {"time", "method", "path", "clientId"}) {
      CHECK(json::GetString(*doc, key));
    }
    CHECK(json::GetInt(*doc, "status"));
    CHECK(json::GetInt(*doc, "ms"));
    for (const std::string& secret :
         {kRoot.access_token, claim.credentials.access_token,
          put_url.substr(put_url.rfind('/') + 1), url->substr(url->rfind('/') + 1)}) {
      CHECK(line.find(secret) == std::string::npos);
    }
    if (Str(*doc, "method") == "GET" && Str(*doc, "path") == "/_blob/[redacted]") {
      ++blob_gets;
      CHECK(Str(*doc, "artifact") == id + "/0/public/a.txt");
    }
  }
  CHECK(blob_gets == 1);
  auto first = json::Parse(log[0]);
  CHECK(Str(*first, "method") == "PUT");
  CHECK(Str(*first, "path") == "/api/queue/v1/task/" + id);
  CHECK(Str(*first, "clientId") == kRoot.client_id);
  CHECK(json::GetInt(*first, "status") == 200);
  auto last = json::Parse(log.back());
  CHECK(json::GetInt(*last, "status") == 401);
}

TEST_CASE("local-queue: clients.json is created with scopes [\"*\"] when none is given", "[unit]") {
  TempDir dir;
  std::string path = dir / "clients.json";
  bool created = false;
  auto clients = EnsureLocalQueueClients(path, &created);
  REQUIRE(clients.ok());
  CHECK(created);
  REQUIRE(clients->size() == 1);
  CHECK((*clients)[0].scopes == std::vector<std::string>{"*"});
  CHECK((*clients)[0].access_token.size() >= 40);
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto again = EnsureLocalQueueClients(path, &created);
  REQUIRE(again.ok());
  CHECK_FALSE(created);
  CHECK((*again)[0].access_token == (*clients)[0].access_token);

  testing::WriteFile(dir / "bad.json", R"([{"clientId":"x","scopes":[]}])");
  auto bad = LoadLocalQueueClients(dir / "bad.json");
  CHECK_FALSE(bad.ok());
  CHECK(bad.status().message().find("accessToken") != std::string::npos);
}

TEST_CASE("local-queue: the command parses its arguments and stops on SIGTERM", "[unit]") {
  TempDir dir;
  CHECK(LocalQueueCommand({}) == 64);
  CHECK(LocalQueueCommand({"--data"}) == 64);
  CHECK(LocalQueueCommand({"--data", dir.path(), "--listen", "nope"}) == 64);
  CHECK(LocalQueueCommand({"--data", dir.path(), "--bogus"}) == 64);
  CHECK(LocalQueueCommand({"--data", dir.path(), "--claim-timeout", "0"}) == 64);
  CHECK(LocalQueueCommand({"--data", dir.path(), "--clients", dir / "missing.json"}) == 64);

  int port = 0;
  {
    Poco::Net::ServerSocket probe(Poco::Net::SocketAddress("127.0.0.1", 0));
    port = probe.address().port();
  }
  std::string data = dir / "state";
  int code = -1;
  std::thread command([&] {
    code = LocalQueueCommand(
        {"--listen", "127.0.0.1:" + std::to_string(port), "--data", data, "--claim-timeout=60"});
  });
  // Stop the command however this test ends.
  struct Stopper {
    std::thread& t;
    ~Stopper() {
      if (t.joinable()) {
        pthread_kill(t.native_handle(), SIGTERM);
        t.join();
      }
    }
  } stopper{command};
  SystemClock clock;
  HttpClient http;
  std::string root = "http://127.0.0.1:" + std::to_string(port);
  bool up = false;
  for (int i = 0; i < 5000 && !up; ++i) {
    HttpRequest ping;
    ping.url = root + "/api/queue/v1/ping";
    auto r = http.Send(ping);
    up = r.ok() && r->status == 200;
    if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  REQUIRE(up);
  auto clients = LoadLocalQueueClients(data + "/clients.json");
  REQUIRE(clients.ok());
  Credentials root_creds{(*clients)[0].client_id, (*clients)[0].access_token, ""};
  TaskclusterClient tc(http, clock, root, root_creds);
  auto current = tc.Call("GET", "auth", "scopes/current", nullptr);
  REQUIRE(current.ok());
  CHECK(current->body["scopes"][0] == "*");
  pthread_kill(command.native_handle(), SIGTERM);
  command.join();
  CHECK(code == 0);
}

}  // namespace
}  // namespace docker_worker
