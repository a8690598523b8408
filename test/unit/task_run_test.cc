// TaskRun on the fakes: every resolution path, the log lines, what the container gets.
#include "docker_worker/task_run.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <set>
#include <thread>

#include "fakes/fake_docker_engine.h"
#include "fakes/fake_run_queue.h"
#include "fakes/manual_clock.h"
#include "docker_worker/base64.h"
#include "docker_worker/time_format.h"
#include "fakes/string_sink.h"
#include "fakes/temp_dir.h"
#include "docker_worker/worker_labels.h"

namespace docker_worker {
namespace {

using testing::StringSink;
using testing::FakeDockerEngine;
using testing::FakeRunQueue;
using testing::ManualClock;
using testing::TempDir;


struct Harness {
  WorkerConfig config = WorkerConfig::Defaults();
  FakeDockerEngine docker;
  FakeRunQueue queue;
  ManualClock clock;
  TempDir dir;
  std::shared_ptr<StringSink> sink = std::make_shared<StringSink>();
  std::unique_ptr<TaskRun> run;
  LiveLogServer* live_log_server = nullptr;
  ScopeExpansion expand_scopes;
  TaskclusterClient* taskcluster = nullptr;
  EnvDecryptor* env_decryptor = nullptr;
  std::vector<std::string> incidents;  // report_incident calls
  WorkerLog worker_log{nullptr};
  CacheVolumes caches{dir / "caches", clock, worker_log};
  GarbageCollector* gc = nullptr;
  std::string label_owner;
  std::vector<std::string> warnings;  // warn calls

  Harness() {
    docker.AddImage("busybox:latest", "sha256:busybox");
    config.worker_id = "worker-1";
  }

  // `payload` is JSON text of the payload; `extra` adds members to the task definition.
  TaskRun& Make(const std::string& payload, const std::string& extra = "") {
    std::string task = "{\"provisionerId\": \"prov\", \"workerType\": \"wt\", "
                       "\"expires\": \"2030-01-01T00:00:00.000Z\", " +
                       (extra.empty() ? "" : extra + ", ") + "\"payload\": " + payload + "}";
    auto doc = json::Parse(task);
    REQUIRE(doc.ok());
    auto def = TaskDefinition::FromJson(std::move(*doc), {"prov", "wt", clock.Now()});
    REQUIRE(def.ok());
    config.provisioner_id = "prov";
    config.worker_type = "wt";
    run = std::make_unique<TaskRun>(TaskRun::Inputs{
        .config = config,
        .task = std::move(*def),
        .task_id = "dSlITZ4yQgmvxxAi4A8fHQ",
        .run_id = 0,
        .queue = queue,
        .docker = docker,
        .clock = clock,
        .work_dir = dir / "work",
        .backing_log_path = dir / "live_backing.log",
        .log_sinks = {sink},
        .before_resolve = {},
        .live_log_server = live_log_server,
        .expand_scopes = expand_scopes,
        .taskcluster = taskcluster,
        .env_decryptor = env_decryptor,
        .report_incident = [this](const std::string& d) { incidents.push_back(d); },
        .caches = &caches,
        .gc = gc,
        .artifact_images = nullptr,
        .label_owner = label_owner,
        .warn = [this](const std::string& m) { warnings.push_back(m); },
    });
    return *run;
  }

  RunResult Run(const std::string& payload, const std::string& extra = "") {
    return Make(payload, extra).Run();
  }
  // Runs `payload` with a container that runs until killed, and calls `act` on the run from
  // this thread once the container is running.
  RunResult RunAndThen(const std::string& payload, const std::function<void(TaskRun&)>& act) {
    docker.behaviour = [](const ContainerSpec&) {
      return FakeDockerEngine::Behaviour{"", 0, true};
    };
    auto& r = Make(payload);
    RunResult result;
    std::thread t([&] { result = r.Run(); });
    docker.WaitUntilRunning();
    act(r);
    t.join();
    return result;
  }
  std::string log() const { return sink->text(); }
  CacheLease Acquire(const std::string& name) {
    auto lease = caches.Acquire(name);
    REQUIRE(lease.ok());
    return std::move(*lease);
  }
};

// SHA-256 of "xfoo\n" and "bar\n", as in upstream's chain-of-trust test.
const char* kXfooSha = "cebff86446aff2b1039749f09ef2922f9ad4f35ea2576a84e206708d8e8bf7b4";
const char* kBarSha = "7d865e959b2466918c9863afca942d0fb89d7c9ac0c99bafc3749504ded97730";

const char* kSimple = R"({"image": "busybox:latest", "command": ["true"], "maxRunTime": 60})";

TEST_CASE("a task that exits 0 completes, with header, footer and backing log", "[unit]") {
  Harness h;
  h.docker.behaviour = [](const ContainerSpec&) {
    return FakeDockerEngine::Behaviour{"hello\r\n", 0, false};
  };
  RunResult r = h.Run(kSimple);
  CHECK(r.resolution == Resolution::Completed());
  CHECK(r.exit_code == 0);
  REQUIRE(h.queue.resolution());
  CHECK(*h.queue.resolution() == Resolution::Completed());
  std::string log = h.log();
  CHECK(log.find("] Task ID: dSlITZ4yQgmvxxAi4A8fHQ\n") != std::string::npos);
  CHECK(log.find("] Worker ID: worker-1\n") != std::string::npos);
  CHECK(log.find("] Worker Pool: prov/wt\n") != std::string::npos);
  CHECK(log.find("] === Task Starting ===\nhello\r\n") != std::string::npos);
  CHECK(log.find("] === Task Finished ===\n") != std::string::npos);
  CHECK(log.find("] Successful task run with exit code: 0 completed in ") != std::string::npos);
  // Header order as upstream.
  CHECK(log.find("Task ID:") < log.find("Worker ID:"));
  CHECK(log.find("Worker Group:") < log.find("Worker Node Type:"));
  CHECK(log.find("Worker Pool:") < log.find("Worker Version:"));
  CHECK(log.find("Public IP:") < log.find("Hostname:"));
  // The backing log is uploaded and has exactly what the terminal got.
  auto arts = h.queue.artifacts();
  REQUIRE(arts.count("public/logs/live_backing.log"));
  CHECK(arts["public/logs/live_backing.log"].content == log);
  CHECK(arts["public/logs/live_backing.log"].artifact.content_type == "text/plain; charset=utf-8");
  CHECK(h.docker.live_containers().empty());
}

TEST_CASE("timestamps in log lines come from the clock", "[unit]") {
  Harness h;
  h.Run(kSimple);
  CHECK(h.log().rfind("[taskcluster 2026-01-01 00:00:00.000Z] Task ID: ", 0) == 0);
}

TEST_CASE("a non-zero exit fails the task", "[unit]") {
  Harness h;
  h.docker.behaviour = [](const ContainerSpec&) { return FakeDockerEngine::Behaviour{"", 5}; };
  RunResult r = h.Run(kSimple);
  CHECK(r.resolution == Resolution::Failed());
  CHECK(r.exit_code == 5);
  CHECK(h.log().find("Unsuccessful task run with exit code: 5 completed in") != std::string::npos);
}

TEST_CASE("an exit code listed in onExitStatus.retry is an intermittent-task exception", "[unit]") {
  Harness h;
  h.docker.behaviour = [](const ContainerSpec&) { return FakeDockerEngine::Behaviour{"", 36}; };
  RunResult r = h.Run(
      R"({"image": "busybox:latest", "maxRunTime": 60, "onExitStatus": {"retry": [36]}})");
  CHECK(r.resolution == Resolution::Exception("intermittent-task"));
  Harness h2;
  h2.docker.behaviour = [](const ContainerSpec&) { return FakeDockerEngine::Behaviour{"", 37}; };
  CHECK(h2.Run(R"({"image": "busybox:latest", "maxRunTime": 60, "onExitStatus": {"retry": [36]}})")
            .resolution == Resolution::Failed());
}

TEST_CASE("a malformed payload is an exception with every error in the log", "[unit]") {
  Harness h;
  RunResult r = h.Run(R"({"image": "busybox:latest", "maxRunTime": "60", "cmd": ["x"]})");
  CHECK(r.resolution == Resolution::Exception("malformed-payload"));
  std::string log = h.log();
  CHECK(log.find("[taskcluster:error] `task.payload` format is invalid json schema errors:") !=
        std::string::npos);
  CHECK(log.find("/maxRunTime") != std::string::npos);
  CHECK(log.find("/cmd") != std::string::npos);
  CHECK(h.docker.created().empty());
  // The log is still uploaded, with the errors in it.
  auto arts = h.queue.artifacts();
  REQUIRE(arts.count("public/logs/live_backing.log"));
  CHECK(arts["public/logs/live_backing.log"].content.find("/maxRunTime") != std::string::npos);
}

TEST_CASE("payload artifacts may not take a name a feature uploads", "[unit]") {
  for (const auto& [extra, name] : std::vector<std::pair<std::string, std::string>>{
           {"", "public/logs/live_backing.log"},
           {"", "public/logs/live.log"},
           {R"("log": "apple/banana.log.txt",)", "apple/banana.log_backing.txt"}}) {
    Harness h;
    RunResult r = h.Run(R"({"image": "busybox:latest", "maxRunTime": 60, )" + extra +
                        R"("artifacts": {")" + name + R"(": {"type": "file", "path": "/a"}}})");
    INFO(name);
    CHECK(r.resolution == Resolution::Exception("malformed-payload"));
    CHECK(h.docker.created().empty());
    CHECK(h.log().find("artifact name \"" + name +
                       "\" is reserved: the localLiveLog feature creates it") != std::string::npos);
  }
  Harness h;  // the same names are the task's own when the feature is off
  RunResult r = h.Run(R"({"image": "busybox:latest", "maxRunTime": 60,
      "features": {"localLiveLog": false},
      "artifacts": {"public/logs/live.log": {"type": "file", "path": "/a"}}})");
  CHECK(r.resolution != Resolution::Exception("malformed-payload"));
  CHECK(h.docker.created().size() == 1);
}

TEST_CASE("an artifact expiring after the task is a malformed payload", "[unit]") {
  Harness h;
  RunResult r = h.Run(R"({"image": "busybox:latest", "maxRunTime": 60, "artifacts": {
      "public/a": {"type": "file", "path": "/a", "expires": "2031-01-01T00:00:00.000Z"}}})");
  CHECK(r.resolution == Resolution::Exception("malformed-payload"));
  CHECK(h.log().find("/artifacts/public~1a/expires") != std::string::npos);
}

TEST_CASE("an unknown feature fails before anything starts", "[unit]") {
  Harness h;
  RunResult r = h.Run(R"({"image": "busybox:latest", "maxRunTime": 60,
                          "features": {"bufferLog": true}})");
  CHECK(r.resolution == Resolution::Failed());
  CHECK(h.log().find("bufferLog is not part of valid features") != std::string::npos);
  CHECK(h.queue.artifacts().empty());
  CHECK(h.docker.created().empty());
}

TEST_CASE("a known feature this worker does not offer fails", "[unit]") {
  Harness h;
  RunResult r = h.Run(R"({"image": "busybox:latest", "maxRunTime": 60,
                          "features": {"dind": true}})");
  CHECK(r.resolution == Resolution::Failed());
  CHECK(h.log().find("dind is not enabled on this worker") != std::string::npos);
  Harness h2;
  h2.config.features["artifacts"] = false;
  CHECK(h2.Run(kSimple).resolution == Resolution::Failed());
  CHECK(h2.log().find("artifacts is not enabled on this worker") != std::string::npos);
}

TEST_CASE("disabling a default feature in the payload is allowed", "[unit]") {
  Harness h;
  RunResult r = h.Run(R"({"image": "busybox:latest", "maxRunTime": 60,
                          "features": {"localLiveLog": false}})");
  CHECK(r.resolution == Resolution::Completed());
  CHECK(h.queue.artifacts().empty());  // no log artifacts without localLiveLog
}

TEST_CASE("a missing image that cannot be pulled fails with upstream's message", "[unit]") {
  Harness h;
  RunResult r = h.Run(R"({"image": "nothere:1.0", "maxRunTime": 60})");
  CHECK(r.resolution == Resolution::Failed());
  CHECK(h.log().find("[taskcluster:error] Pulling docker image has failed.") != std::string::npos);
  CHECK(h.log().find("[taskcluster:error] Error: manifest unknown") != std::string::npos);
  CHECK(h.docker.pulls() == 1);  // not-found class errors are not retried
}

TEST_CASE("a missing image is pulled, with progress in the log", "[unit]") {
  Harness h;
  h.docker.AddPullable("team/app:2.0");
  RunResult r = h.Run(R"({"image": {"type": "docker-image", "name": "team/app:2.0"},
                          "maxRunTime": 60})");
  CHECK(r.resolution == Resolution::Completed());
  CHECK(h.log().find("Pull complete") != std::string::npos);
}

TEST_CASE("transient pull errors are retried with backoff on the clock", "[unit]") {
  Harness h;
  h.config.pull_max_attempts = 3;
  h.docker.pull_error = Status(Code::kInternal, "connection reset by peer");
  auto& run = h.Make(R"({"image": "flaky:1", "maxRunTime": 60})");
  std::thread t([&] { run.Run(); });
  for (int i = 1; i <= 2; ++i) {
    h.clock.WaitForSleepCalls(i);
    h.clock.Advance(std::chrono::minutes(5));
  }
  t.join();
  CHECK(h.docker.pulls() == 3);
  CHECK(h.queue.resolution() == Resolution::Failed());
}

// A worker with credentials for reg.example.com/team: its images need the image scope.
struct PrivateRegistryHarness : Harness {
  PrivateRegistryHarness() {
    config.registries["reg.example.com/team"] = {"robot", "hunter2-secret", ""};
    docker.AddPullable("reg.example.com/team/app:1.0");
  }
  bool LogHasPassword() const { return log().find("hunter2-secret") != std::string::npos; }
};

TEST_CASE("private image: credentials go to the engine when the task holds the scope", "[unit]") {
  PrivateRegistryHarness h;
  RunResult r = h.Run(R"({"image": "reg.example.com/team/app:1.0", "maxRunTime": 60})",
                      R"("scopes": ["docker-worker:image:reg.example.com/team/app:1.0"])");
  CHECK(r.resolution == Resolution::Completed());
  REQUIRE(h.docker.pull_auths().size() == 1);
  auto decoded = Base64Decode(h.docker.pull_auths()[0], {Base64::kUrlSafe});
  REQUIRE(decoded);
  CHECK(decoded->find("\"password\":\"hunter2-secret\"") != std::string::npos);
  CHECK(decoded->find("\"serveraddress\":\"reg.example.com\"") != std::string::npos);
  CHECK(h.log().find("with this worker's credentials for reg.example.com") != std::string::npos);
  CHECK_FALSE(h.LogHasPassword());
}

TEST_CASE("private image: a prefix scope covers it, public images need none", "[unit]") {
  PrivateRegistryHarness h;
  CHECK(h.Run(R"({"image": "reg.example.com/team/app:1.0", "maxRunTime": 60})",
              R"("scopes": ["docker-worker:image:reg.example.com/team/*"])")
            .resolution == Resolution::Completed());
  PrivateRegistryHarness h2;
  h2.docker.AddPullable("reg.example.com/public/app:latest");
  CHECK(h2.Run(R"({"image": "reg.example.com/public/app", "maxRunTime": 60})").resolution ==
        Resolution::Completed());
  REQUIRE(h2.docker.pull_auths().size() == 1);
  CHECK(h2.docker.pull_auths()[0].empty());  // no credentials for reg.example.com/public
}

TEST_CASE("private image: without the scope the task fails with upstream's message", "[unit]") {
  PrivateRegistryHarness h;
  RunResult r = h.Run(R"({"image": "reg.example.com/team/app:1.0", "maxRunTime": 60})",
                      R"("scopes": ["docker-worker:image:reg.example.com/team/app:2.0"])");
  CHECK(r.resolution == Resolution::Failed());
  CHECK(h.log().find("[taskcluster:error] Pulling docker image has failed.") != std::string::npos);
  CHECK(h.log().find("[taskcluster:error] Error: Not authorized to use "
                     "{\"name\":\"reg.example.com/team/app:1.0\",\"type\":\"docker-image\"}.  "
                     "Ensure that the task scopes are correctly defined in the task definition") !=
        std::string::npos);
  CHECK(h.docker.pulls() == 0);
  // The object form prints as written; an image already on the host is refused too.
  PrivateRegistryHarness h2;
  h2.docker.AddImage("reg.example.com/team/app:1.0");
  CHECK(h2.Run(R"({"image": {"type": "docker-image", "name": "reg.example.com/team/app:1.0"},
                   "maxRunTime": 60})")
            .resolution == Resolution::Failed());
  CHECK(h2.log().find("Not authorized to use {\"type\":\"docker-image\",\"name\":"
                      "\"reg.example.com/team/app:1.0\"}.  Ensure") != std::string::npos);
}

TEST_CASE("private image: the image scope may come from a role", "[unit]") {
  PrivateRegistryHarness h;
  int expansions = 0;
  h.expand_scopes = [&](const std::vector<std::string>&) -> Result<std::vector<std::string>> {
    ++expansions;
    return std::vector<std::string>{"assume:project:x", "docker-worker:image:reg.example.com/*"};
  };
  CHECK(h.Run(R"({"image": "reg.example.com/team/app:1.0", "maxRunTime": 60})",
              R"("scopes": ["assume:project:x"])")
            .resolution == Resolution::Completed());
  CHECK(expansions == 1);
}

TEST_CASE("private image: refused credentials fail at once, naming the registry", "[unit]") {
  PrivateRegistryHarness h;
  h.docker.pull_error = Status(Code::kPermissionDenied,
                               "unauthorized: authentication required (hunter2-secret)");
  RunResult r = h.Run(R"({"image": "reg.example.com/team/other:1.0", "maxRunTime": 60})",
                      R"("scopes": ["docker-worker:image:reg.example.com/team/other:1.0"])");
  CHECK(r.resolution == Resolution::Failed());
  CHECK(h.docker.pulls() == 1);  // never retried
  CHECK(h.log().find("Error: the registry reg.example.com refused the credentials this worker "
                     "has for it (worker config \"registries\", key \"reg.example.com/team\")") !=
        std::string::npos);
  CHECK_FALSE(h.LogHasPassword());  // even if a registry echoed it
}

TEST_CASE("a registry refusing an anonymous pull says no credentials were sent", "[unit]") {
  Harness h;
  h.docker.pull_error = Status(Code::kPermissionDenied, "no basic auth credentials");
  RunResult r = h.Run(R"({"image": "127.0.0.1:5000/team/app:1.0", "maxRunTime": 60})");
  CHECK(r.resolution == Resolution::Failed());
  CHECK(h.docker.pulls() == 1);
  CHECK(h.log().find("Error: the registry 127.0.0.1:5000 refused to serve "
                     "127.0.0.1:5000/team/app:1.0 without credentials") != std::string::npos);
}

TEST_CASE("a bad image name fails at once, before any engine call", "[unit]") {
  Harness h;
  RunResult r = h.Run(R"({"image": "Team/App:1", "maxRunTime": 60})");
  CHECK(r.resolution == Resolution::Failed());
  CHECK(h.docker.pulls() == 0);
  CHECK(h.log().find("[taskcluster:error] Error: invalid image name \"Team/App:1\": repository "
                     "names must be lower case") != std::string::npos);
}

TEST_CASE("a stalled pull is retried like any transient error", "[unit]") {
  Harness h;
  h.config.pull_max_attempts = 2;
  h.docker.pull_error =
      Status(Code::kDeadlineExceeded, "no pull progress from the Docker engine for 60 s");
  auto& run = h.Make(R"({"image": "stalls:1", "maxRunTime": 60})");
  std::thread t([&] { run.Run(); });
  h.clock.WaitForSleepCalls(1);
  h.clock.Advance(std::chrono::minutes(5));
  t.join();
  CHECK(h.docker.pulls() == 2);
  CHECK(h.log().find("Pull of stalls:1 failed (no pull progress from the Docker engine for 60 s); "
                     "retrying in") != std::string::npos);
  CHECK(h.queue.resolution() == Resolution::Failed());
}

TEST_CASE("artifact images: refused without a queue, and private paths need a scope", "[unit]") {
  Harness h;
  RunResult r = h.Run(R"({"image": {"type": "task-image", "taskId": "x", "path": "public/i.tar"},
                          "maxRunTime": 60})");
  CHECK(r.resolution == Resolution::Failed());
  CHECK(h.log().find("[taskcluster:error] Pulling docker image has failed.") != std::string::npos);
  CHECK(h.log().find("\"task-image\" need a Taskcluster queue") != std::string::npos);

  // The scope gate comes first: no queue call is needed to refuse.
  Harness h2;
  r = h2.Run(R"({"image": {"type": "indexed-image", "namespace": "a.b", "path": "private/i.tar"},
                 "maxRunTime": 60})");
  CHECK(r.resolution == Resolution::Failed());
  CHECK(h2.log().find("Error: Not authorized to use {\"type\":\"indexed-image\",\"namespace\":"
                      "\"a.b\",\"path\":\"private/i.tar\"}.  Ensure that the task scopes are "
                      "correctly defined in the task definition (missing scope: "
                      "queue:get-artifact:private/i.tar)") != std::string::npos);
}

TEST_CASE("a container that cannot be created or started fails the task", "[unit]") {
  Harness h;
  h.docker.create_error = Status(Code::kInternal, "no space left");
  CHECK(h.Run(kSimple).resolution == Resolution::Failed());
  CHECK(h.log().find("[taskcluster:error] Failure to properly start execution environment.") !=
        std::string::npos);
  CHECK(h.log().find("Unsuccessful task run with exit code: -1") != std::string::npos);
  Harness h2;
  h2.docker.start_error = Status(Code::kInternal, "exec format error");
  CHECK(h2.Run(kSimple).resolution == Resolution::Failed());
  CHECK(h2.log().find("exec format error") != std::string::npos);
  CHECK(h2.docker.live_containers().empty());
}

TEST_CASE("maxRunTime kills the container and fails the task", "[unit]") {
  Harness h;
  h.docker.behaviour = [](const ContainerSpec&) {
    return FakeDockerEngine::Behaviour{"working\r\n", 0, true};
  };
  h.docker.AddFile("/out.txt", "never uploaded");
  auto& run = h.Make(R"({"image": "busybox:latest", "maxRunTime": 30,
      "artifacts": {"public/out.txt": {"type": "file", "path": "/out.txt"}}})");
  RunResult r;
  std::thread t([&] { r = run.Run(); });
  h.docker.WaitUntilRunning();
  h.clock.WaitForSleepCalls(1);
  h.clock.Advance(std::chrono::seconds(29));
  CHECK(h.docker.kills() == 0);
  h.clock.Advance(std::chrono::seconds(1));
  t.join();
  CHECK(r.resolution == Resolution::Failed());
  CHECK(r.exit_code == -1);
  std::string log = h.log();
  CHECK(log.find("[taskcluster:error] Task timeout after 30 seconds. Force killing container.") !=
        std::string::npos);
  CHECK(log.find("Unsuccessful task run with exit code: -1 completed in 30 seconds") !=
        std::string::npos);
  CHECK(h.queue.artifacts().count("public/out.txt") == 0);  // no artifacts after an abort
  CHECK(h.queue.artifacts().count("public/logs/live_backing.log") == 1);
  CHECK(h.docker.live_containers().empty());
}

TEST_CASE("abort (worker shutdown) kills the task and uploads the log", "[unit]") {
  Harness h;
  RunResult r = h.RunAndThen(kSimple, [](TaskRun& run) { run.Abort("worker-shutdown"); });
  CHECK(r.resolution == Resolution::Exception("worker-shutdown"));
  CHECK(*h.queue.resolution() == Resolution::Exception("worker-shutdown"));
  auto arts = h.queue.artifacts();
  REQUIRE(arts.count("public/logs/live_backing.log"));
  CHECK(arts["public/logs/live_backing.log"].content.find(
            "Task has been aborted prematurely. Reason: worker-shutdown") != std::string::npos);
  CHECK(h.docker.live_containers().empty());
}

TEST_CASE("cancel stops the task, uploads nothing and does not resolve", "[unit]") {
  Harness h;
  RunResult r = h.RunAndThen(kSimple, [](TaskRun& run) { run.Cancel(); });
  CHECK(r.canceled);
  CHECK(h.queue.resolves() == 0);
  CHECK(h.queue.artifacts().empty());
  CHECK(h.log().find("Task was canceled by another entity.") != std::string::npos);
  CHECK(h.docker.live_containers().empty());
}

TEST_CASE("abort before the container exists ends the run at the next step", "[unit]") {
  Harness h;
  auto& run = h.Make(kSimple);
  run.Abort("worker-shutdown");
  RunResult r = run.Run();
  CHECK(r.resolution == Resolution::Exception("worker-shutdown"));
  CHECK(h.docker.created().empty());
  // Features that never linked still stop: the log with the abort line is uploaded.
  auto arts = h.queue.artifacts();
  REQUIRE(arts.count("public/logs/live_backing.log"));
  CHECK(arts["public/logs/live_backing.log"].content.find("aborted prematurely") !=
        std::string::npos);
}

TEST_CASE("privileged needs the worker's permission and the task's scope", "[unit]") {
  const char* payload =
      R"({"image": "busybox:latest", "maxRunTime": 60, "capabilities": {"privileged": true}})";
  const char* scope = R"("scopes": ["docker-worker:capability:privileged"])";
  const char* pool_scope = R"("scopes": ["docker-worker:capability:privileged:prov/wt"])";
  for (bool allowed : {false, true}) {
    for (int scopes : {0, 1, 2}) {
      Harness h;
      h.config.allow_privileged = allowed;
      RunResult r = h.Run(payload, scopes == 0 ? "" : scopes == 1 ? scope : pool_scope);
      INFO("allowed=" << allowed << " scopes=" << scopes);
      if (allowed && scopes != 0) {
        CHECK(r.resolution == Resolution::Completed());
        REQUIRE(h.docker.created().size() == 1);
        CHECK(h.docker.created()[0].privileged);
      } else {
        CHECK(r.resolution == Resolution::Failed());
        CHECK(h.docker.created().empty());
        CHECK(h.log().find("Docker configuration could not be created.") != std::string::npos);
        CHECK(h.log().find(allowed ? "Insufficient scopes to run task in privileged mode"
                                   : "Worker must be enabled to allow running of privileged") !=
              std::string::npos);
      }
    }
  }
  Harness h;  // a task that does not ask is never privileged, whatever it holds
  h.config.allow_privileged = true;
  h.Run(kSimple, scope);
  CHECK_FALSE(h.docker.created()[0].privileged);
}

// Every privileged thing needs all three: the config allows it, the task holds the scope, the
// payload asks. All eight combinations for each gate.
struct Gate {
  std::string name;
  std::string ask;    // payload members that ask for it
  std::string scope;  // the scope that grants it
  std::function<void(Harness&, bool)> configure;
  std::string config_refusal;
  std::string scope_refusal;
  std::function<bool(const ContainerSpec&)> applied;
};

const std::vector<Gate>& Gates() {
  static const std::vector<Gate> gates = {
      {"privileged", R"("capabilities": {"privileged": true})",
       "docker-worker:capability:privileged",
       [](Harness& h, bool on) { h.config.allow_privileged = on; },
       "Worker must be enabled to allow running of privileged tasks.",
       "Insufficient scopes to run task in privileged mode.",
       [](const ContainerSpec& s) { return s.privileged; }},
      {"kvm", R"("capabilities": {"devices": {"kvm": true}})",
       "docker-worker:capability:device:kvm",
       [](Harness& h, bool on) { h.config.devices["kvm"] = on; },
       "Device \"kvm\" is not enabled on this worker",
       "Insufficient scopes to attach devices to task container.",
       [](const ContainerSpec& s) {
         return s.devices.size() == 1 && s.devices[0].path_on_host == "/dev/kvm";
       }},
      {"hostSharedMemory", R"("capabilities": {"devices": {"hostSharedMemory": true}})",
       "docker-worker:capability:device:hostSharedMemory",
       [](Harness& h, bool on) { h.config.devices["hostSharedMemory"] = on; },
       "Device \"hostSharedMemory\" is not enabled on this worker",
       "Insufficient scopes to attach devices to task container.",
       [](const ContainerSpec& s) {
         return std::find(s.binds.begin(), s.binds.end(), "/dev/shm:/dev/shm") != s.binds.end();
       }},
      {"allowPtrace", R"("features": {"allowPtrace": true})", "docker-worker:feature:allowPtrace",
       [](Harness& h, bool on) { h.config.features["allowPtrace"] = on; },
       "allowPtrace is not enabled on this worker",
       "Insufficient scopes to use 'allowPtrace' feature. Try adding "
       "docker-worker:feature:allowPtrace to the .scopes array.",
       [](const ContainerSpec& s) {
         return std::find(s.cap_add.begin(), s.cap_add.end(), "SYS_PTRACE") != s.cap_add.end();
       }},
      {"cache", R"("cache": {"build-cache": "/cache"})", "docker-worker:cache:build-cache",
       [](Harness& h, bool on) { h.config.caches_enabled = on; },
       "Caches are not enabled on this worker", "Insufficient scopes to attach cache volumes.",
       [](const ContainerSpec& s) {
         return std::any_of(s.binds.begin(), s.binds.end(), [](const std::string& b) {
           return b.ends_with(":/cache:rw");
         });
       }},
  };
  return gates;
}

TEST_CASE("gates: each privileged thing needs config, scope and payload (8 combinations)",
          "[unit]") {
  for (const Gate& g : Gates()) {
    for (int combo = 0; combo < 8; ++combo) {
      const bool config = combo & 1, scope = combo & 2, ask = combo & 4;
      INFO(g.name << ": config=" << config << " scope=" << scope << " ask=" << ask);
      Harness h;
      g.configure(h, config);
      std::string payload = R"({"image": "busybox:latest", "maxRunTime": 60)";
      if (ask) payload += ", " + g.ask;
      payload += "}";
      RunResult r = h.Run(payload, scope ? "\"scopes\": [\"" + g.scope + "\"]" : "");
      const bool refused_by_config = h.log().find(g.config_refusal) != std::string::npos;
      const bool refused_by_scope = h.log().find(g.scope_refusal) != std::string::npos;
      if (!ask) {
        CHECK(r.resolution == Resolution::Completed());
        REQUIRE(h.docker.created().size() == 1);
        if (g.applied) CHECK_FALSE(g.applied(h.docker.created()[0]));
      } else if (!config) {
        CHECK(r.resolution == Resolution::Failed());
        CHECK(refused_by_config);
        CHECK(h.docker.created().empty());
      } else if (!scope) {
        CHECK(r.resolution == Resolution::Failed());
        CHECK(refused_by_scope);
        CHECK_FALSE(refused_by_config);
        CHECK(h.docker.created().empty());
      } else if (g.applied) {
        CHECK(r.resolution == Resolution::Completed());
        REQUIRE(h.docker.created().size() == 1);
        CHECK(g.applied(h.docker.created()[0]));
      } else {
        CHECK_FALSE(refused_by_config);
        CHECK_FALSE(refused_by_scope);
      }
    }
  }
}

TEST_CASE("gates: the pool-suffixed scope grants, another pool's does not", "[unit]") {
  for (const Gate& g : Gates()) {
    for (const std::string pool : {"prov/wt", "prov/other"}) {
      INFO(g.name << " " << pool);
      Harness h;
      g.configure(h, true);
      RunResult r = h.Run(R"({"image": "busybox:latest", "maxRunTime": 60, )" + g.ask + "}",
                          "\"scopes\": [\"" + g.scope + ":" + pool + "\"]");
      CHECK((h.log().find(g.scope_refusal) == std::string::npos) == (pool == "prov/wt"));
    }
  }
}

TEST_CASE("gates: scopes granted through a role count (expanded once)", "[unit]") {
  Harness h;
  h.config.allow_privileged = true;
  int expansions = 0;
  h.expand_scopes = [&](const std::vector<std::string>& held) {
    ++expansions;
    std::vector<std::string> out = held;
    if (std::find(held.begin(), held.end(), "assume:project:ci") != held.end()) {
      out.push_back("docker-worker:capability:*");
    }
    return Result<std::vector<std::string>>(out);
  };
  RunResult r = h.Run(R"({"image": "busybox:latest", "maxRunTime": 60, "capabilities":
                          {"privileged": true, "devices": {"kvm": true}}})",
                      R"("scopes": ["assume:project:ci"])");
  CHECK(r.resolution == Resolution::Completed());
  REQUIRE(h.docker.created().size() == 1);
  CHECK(h.docker.created()[0].privileged);
  CHECK(expansions == 1);
}

TEST_CASE("gates: a failed role expansion fails the task and names the cause", "[unit]") {
  Harness h;
  h.config.allow_privileged = true;
  h.expand_scopes = [](const std::vector<std::string>&) {
    return Result<std::vector<std::string>>(Status(Code::kUnavailable, "auth unreachable"));
  };
  RunResult r = h.Run(R"({"image": "busybox:latest", "maxRunTime": 60,
                          "capabilities": {"privileged": true}})",
                      R"("scopes": ["assume:project:ci"])");
  CHECK(r.resolution == Resolution::Failed());
  CHECK(h.log().find("Could not expand the task's scopes: auth unreachable") != std::string::npos);
  CHECK(h.docker.created().empty());
}

TEST_CASE("the container gets command, env with reserved variables winning, labels", "[unit]") {
  Harness h;
  h.config.root_url = "https://tc.example.com";
  h.Run(R"({"image": "busybox:latest", "maxRunTime": 60, "command": ["sh", "-c", "env"],
            "env": {"FOO": "bar", "TASK_ID": "forged", "RUN_ID": "9",
                    "TASKCLUSTER_WORKER_TYPE": "forged"}})");
  REQUIRE(h.docker.created().size() == 1);
  const auto created = h.docker.created();
  const ContainerSpec& spec = created[0];
  CHECK(spec.cmd == std::vector<std::string>{"sh", "-c", "env"});
  CHECK(spec.tty);
  CHECK(spec.image == "sha256:busybox");
  CHECK(spec.shm_size == 1800000000);
  CHECK(spec.extra_hosts == std::vector<std::string>{"localhost.localdomain:127.0.0.1"});
  auto has = [&](const std::string& kv) {
    return std::find(spec.env.begin(), spec.env.end(), kv) != spec.env.end();
  };
  CHECK(has("FOO=bar"));
  CHECK(has("TASK_ID=dSlITZ4yQgmvxxAi4A8fHQ"));
  CHECK(has("RUN_ID=0"));
  CHECK(has("TASKCLUSTER_WORKER_TYPE=wt"));
  CHECK(has("TASKCLUSTER_WORKER_POOL=prov/wt"));
  CHECK(has("TASKCLUSTER_ROOT_URL=https://tc.example.com"));
  CHECK(has("TASKCLUSTER_WORKER_LOCATION=undefined"));
  CHECK_FALSE(has("TASK_ID=forged"));
  CHECK_FALSE(has("RUN_ID=9"));
  int task_ids = 0;
  for (const auto& e : spec.env) task_ids += e.rfind("TASK_ID=", 0) == 0;
  CHECK(task_ids == 1);
  CHECK(spec.labels.at("docker-worker.task-id") == "dSlITZ4yQgmvxxAi4A8fHQ");
  CHECK(spec.labels.at("docker-worker.worker-id") == "worker-1");
}

TEST_CASE("file and directory artifacts are uploaded with hashes and content types", "[unit]") {
  Harness h;
  h.docker.AddFile("/out/xfoo.txt", "xfoo\n");
  h.docker.AddDir("/out/dir");
  h.docker.AddFile("/out/dir/wow/bar.html", "bar\n");
  h.docker.AddDir("/out/dir/wow");
  h.docker.AddSymlink("/out/dir/escape", "/etc/passwd");
  RunResult r = h.Run(R"({"image": "busybox:latest", "maxRunTime": 60, "artifacts": {
      "public/xfoo.txt": {"type": "file", "path": "/out/xfoo.txt"},
      "public/dir/": {"type": "directory", "path": "/out/dir",
                      "expires": "2029-01-01T00:00:00.000Z"}}})");
  CHECK(r.resolution == Resolution::Completed());
  auto arts = h.queue.artifacts();
  REQUIRE(arts.count("public/xfoo.txt"));
  CHECK(arts["public/xfoo.txt"].content == "xfoo\n");
  CHECK(arts["public/xfoo.txt"].artifact.sha256 == kXfooSha);
  CHECK(arts["public/xfoo.txt"].artifact.content_type == "text/plain");
  CHECK(arts["public/xfoo.txt"].artifact.expires == arts["public/logs/live_backing.log"].artifact.expires);
  REQUIRE(arts.count("public/dir/wow/bar.html"));  // trailing "/" of the name stripped
  CHECK(arts["public/dir/wow/bar.html"].content == "bar\n");
  CHECK(arts["public/dir/wow/bar.html"].artifact.sha256 == kBarSha);
  CHECK(arts["public/dir/wow/bar.html"].artifact.content_type == "text/html");
  CHECK(FormatIso(arts["public/dir/wow/bar.html"].artifact.expires) == "2029-01-01T00:00:00.000Z");
  CHECK(arts.count("public/dir/escape") == 0);  // symlinks are never followed or uploaded
}

TEST_CASE("missing and mistyped artifacts become error artifacts, the task goes on", "[unit]") {
  Harness h;
  h.docker.AddFile("/file.txt", "x");
  h.docker.AddSymlink("/link.txt", "/etc/passwd");
  RunResult r = h.Run(R"({"image": "busybox:latest", "maxRunTime": 60, "artifacts": {
      "public/missing": {"type": "file", "path": "/nope"},
      "public/notadir": {"type": "directory", "path": "/file.txt"},
      "public/link": {"type": "file", "path": "/link.txt"}}})");
  CHECK(r.resolution == Resolution::Completed());
  auto arts = h.queue.artifacts();
  CHECK(arts["public/missing"].artifact.kind == Artifact::Kind::kError);
  CHECK(arts["public/missing"].artifact.reason == "file-missing-on-worker");
  CHECK(arts["public/notadir"].artifact.reason == "invalid-resource-on-worker");
  CHECK(arts["public/link"].artifact.reason == "invalid-resource-on-worker");
  std::string log = h.log();
  CHECK(log.find("Artifact \"public/missing\" not found at \"/nope\"") != std::string::npos);
  CHECK(log.find("Error uploading \"public/notadir\". Expected artifact to be a \"directory\" "
                 "but was \"file\"") != std::string::npos);
  CHECK(log.find("Expected artifact to be a \"file\" but was \"symlink\"") != std::string::npos);
}

TEST_CASE("an artifact upload failure fails a successful task", "[unit]") {
  Harness h;
  h.docker.AddFile("/a.txt", "a");
  h.queue.fail_names = {"public/a.txt"};
  RunResult r = h.Run(R"({"image": "busybox:latest", "maxRunTime": 60, "artifacts": {
      "public/a.txt": {"type": "file", "path": "/a.txt"}}})");
  CHECK(r.resolution == Resolution::Failed());
  CHECK(r.exit_code == -1);
  CHECK(h.log().find("Error uploading \"public/a.txt\" artifact. upload refused") !=
        std::string::npos);
}

TEST_CASE("an upload failure keeps an unsuccessful run's own resolution and exit code",
          "[unit]") {
  Harness h;
  h.docker.behaviour = [](const ContainerSpec&) { return FakeDockerEngine::Behaviour{"", 3}; };
  h.docker.AddFile("/a.txt", "a");
  h.queue.fail_names = {"public/a.txt"};
  RunResult r = h.Run(R"({"image": "busybox:latest", "maxRunTime": 60,
      "onExitStatus": {"retry": [3]},
      "artifacts": {"public/a.txt": {"type": "file", "path": "/a.txt"}}})");
  CHECK(r.resolution == Resolution::Exception("intermittent-task"));
  CHECK(r.exit_code == 3);
  CHECK(h.log().find("Unsuccessful task run with exit code: 3") != std::string::npos);
}

TEST_CASE("the footer is written even when every feature is turned off", "[unit]") {
  Harness h;
  RunResult r = h.Run(R"({"image": "busybox:latest", "maxRunTime": 60,
      "features": {"localLiveLog": false, "artifacts": false}})");
  CHECK(r.resolution == Resolution::Completed());
  CHECK(h.log().find("Successful task run with exit code: 0") != std::string::npos);
}

TEST_CASE("a custom log name moves the backing log", "[unit]") {
  Harness h;
  h.Run(R"({"image": "busybox:latest", "maxRunTime": 60, "log": "apple/banana.log.txt"})");
  CHECK(h.queue.artifacts().count("apple/banana.log_backing.txt") == 1);
}

TEST_CASE("task run: encryptedEnv on a worker without a key fails before any container",
          "[unit]") {
  Harness h;
  RunResult r = h.Run(R"({"image": "busybox:latest", "command": ["true"], "maxRunTime": 60,
                          "encryptedEnv": ["AAAA"]})");
  CHECK(r.resolution == Resolution::Failed());
  CHECK(h.docker.created().empty());
  CHECK(h.docker.put_archives().empty());
  CHECK(h.log().find("Docker configuration could not be created.") != std::string::npos);
  CHECK(h.log().find("encryptedEnv is not supported on this worker: no dockerWorkerPrivateKey "
                     "is configured") != std::string::npos);
  REQUIRE(h.incidents.size() == 1);  // the worker's log hears of it too
}

TEST_CASE("task run: without encryptedEnv the container runs the command itself", "[unit]") {
  Harness h;
  h.Run(kSimple);
  REQUIRE(h.docker.created().size() == 1);
  CHECK_FALSE(h.docker.created()[0].entrypoint.has_value());
  CHECK(h.docker.created()[0].cmd == std::vector<std::string>{"true"});
  CHECK(h.docker.put_archives().empty());
  CHECK(h.incidents.empty());
}

// ------------------------------------------------------------------------------------ caches

const char* kCacheScope = R"("scopes": ["docker-worker:cache:*"])";

// The host directory bound at `mount_point` in the only container created.
std::string BoundAt(const Harness& h, const std::string& mount_point) {
  auto created = h.docker.created();
  if (created.size() != 1) return "";
  for (const std::string& b : created[0].binds) {
    const std::string suffix = ":" + mount_point + ":rw";
    if (b.ends_with(suffix)) return b.substr(0, b.size() - suffix.size());
  }
  return "";
}

bool Mounted(CacheVolumes& caches, const std::string& path) {
  for (const auto& i : caches.List()) {
    if (i.path == path) return i.mounted;
  }
  return false;
}

TEST_CASE("task run: caches are named in the header, bound read-write and released after the "
          "container is removed", "[unit]") {
  Harness h;
  std::string path_while_running;
  bool mounted_while_running = false;
  h.docker.behaviour = [&](const ContainerSpec& spec) {
    for (const std::string& b : spec.binds) {
      if (b.ends_with(":/cache:rw")) path_while_running = b.substr(0, b.find(':'));
    }
    mounted_while_running = Mounted(h.caches, path_while_running);
    return FakeDockerEngine::Behaviour{};
  };
  RunResult r = h.Run(R"({"image": "busybox:latest", "maxRunTime": 60,
                          "cache": {"build-cache": "/cache", "other": "/home/worker/.cache"}})",
                      kCacheScope);
  CHECK(r.resolution == Resolution::Completed());
  std::string log = h.log();
  CHECK(log.find("] using cache \"build-cache\" -> /cache\n") != std::string::npos);
  CHECK(log.find("] using cache \"other\" -> /home/worker/.cache\n") != std::string::npos);
  CHECK(log.find("Hostname:") < log.find("using cache"));
  CHECK(log.find("using cache \"other\"") < log.find("=== Task Starting ==="));
  CHECK(BoundAt(h, "/cache") == path_while_running);
  CHECK(path_while_running.rfind(h.dir / "caches/build-cache/", 0) == 0);
  CHECK(!BoundAt(h, "/home/worker/.cache").empty());
  CHECK(mounted_while_running);
  CHECK_FALSE(Mounted(h.caches, path_while_running));  // released: the container is gone
  CHECK(h.docker.live_containers().empty());
}

TEST_CASE("task run: a second task gets the first one's instance", "[unit]") {
  Harness h;
  h.Run(R"({"image": "busybox:latest", "maxRunTime": 60, "cache": {"c": "/c"}})", kCacheScope);
  const std::string first = BoundAt(h, "/c");
  REQUIRE(!first.empty());
  h.Run(R"({"image": "busybox:latest", "maxRunTime": 60, "cache": {"c": "/c"}})", kCacheScope);
  REQUIRE(h.docker.created().size() == 2);
  CHECK(h.docker.created()[1].binds == std::vector<std::string>{first + ":/c:rw"});
}

TEST_CASE("task run: onExitStatus.purgeCaches purges the caches of a failed run it lists",
          "[unit]") {
  struct Case {
    int64_t exit_code;
    bool purged;
  };
  for (Case c : {Case{3, true}, Case{4, false}, Case{0, false}}) {
    INFO("exit code " << c.exit_code);
    Harness h;
    h.docker.behaviour = [&](const ContainerSpec&) {
      return FakeDockerEngine::Behaviour{"", c.exit_code};
    };
    h.Run(R"({"image": "busybox:latest", "maxRunTime": 60, "cache": {"c": "/c"},
              "onExitStatus": {"purgeCaches": [3, 0]}})",
          kCacheScope);
    std::string path = BoundAt(h, "/c");
    REQUIRE(!path.empty());
    CHECK(std::filesystem::exists(path) == !c.purged);
    CHECK(h.caches.List().size() == (c.purged ? 0u : 1u));
  }
}

TEST_CASE("task run: bad cache names and mount points fail the task with a clear message",
          "[unit]") {
  struct Case {
    std::string cache;
    std::string message;
  };
  const std::vector<Case> cases = {
      {R"({"a::b": "/c"})",
       "Invalid key name was provided.  Ensure that the cache name does not contain \"::\"."},
      {R"({"a/b": "/c"})", "Invalid cache name \"a/b\": it must not contain \"/\"."},
      {R"({"..": "/c"})", "Invalid cache name \"..\": it must not be \".\" or \"..\"."},
      {R"({"x\n": "/c"})", "Invalid cache name: it must not contain control characters."},
      {R"({"ok": "relative"})", "Invalid mount point for cache \"ok\""},
      {R"({"ok": "/c:ro"})", "Invalid mount point for cache \"ok\""},
      {R"({"ok": "/"})", "Invalid mount point for cache \"ok\""},
  };
  for (const Case& c : cases) {
    INFO(c.cache);
    Harness h;
    RunResult r = h.Run(R"({"image": "busybox:latest", "maxRunTime": 60, "cache": )" + c.cache +
                            "}",
                        kCacheScope);
    CHECK(r.resolution == Resolution::Failed());
    CHECK(h.log().find("Docker configuration could not be created.") != std::string::npos);
    CHECK(h.log().find(c.message) != std::string::npos);
    CHECK(h.docker.created().empty());
    CHECK(h.caches.List().empty());
  }
}

TEST_CASE("task run: a container that cannot be removed keeps its caches until the collector "
          "removes it", "[unit]") {
  Harness h;
  GarbageCollector gc(h.docker, &h.caches, h.clock, h.worker_log, "worker-1", Millis(1000));
  h.gc = &gc;
  h.docker.remove_container_error = Status(Code::kInternal, "engine hiccup");
  h.Run(R"({"image": "busybox:latest", "maxRunTime": 60, "cache": {"c": "/c"}})", kCacheScope);
  std::string path = BoundAt(h, "/c");
  REQUIRE(!path.empty());
  CHECK(Mounted(h.caches, path));
  gc.Sweep(false, {});
  CHECK(Mounted(h.caches, path));  // still failing: still held
  h.docker.remove_container_error = Status::Ok();
  GarbageCollector::Counts n = gc.Sweep(false, {});
  CHECK(n.containers == 1);
  CHECK_FALSE(Mounted(h.caches, path));
  CHECK(h.docker.live_containers().empty());
}

TEST_CASE("task run: the run pins its image while it runs and records it for collection",
          "[unit]") {
  Harness h;
  GarbageCollector gc(h.docker, nullptr, h.clock, h.worker_log, "worker-1", Millis(1000));
  h.gc = &gc;
  h.docker.AddImage("unrelated:latest", "sha256:unrelated");
  int removed_while_running = -1;
  h.docker.behaviour = [&](const ContainerSpec&) {
    h.clock.Advance(Millis(5000));
    removed_while_running = gc.Sweep(true, {}).images;  // under pressure, yet pinned
    return FakeDockerEngine::Behaviour{};
  };
  h.Run(kSimple);
  CHECK(removed_while_running == 0);
  CHECK(gc.TrackedImages() == std::vector<std::string>{"sha256:busybox"});
  h.clock.Advance(Millis(1000));
  CHECK(gc.Sweep(false, {}).images == 1);
  CHECK(h.docker.removed_images() == std::vector<std::string>{"sha256:busybox"});
  CHECK(gc.TrackedImages().empty());
}

TEST_CASE("task run: without a collector a container that cannot be removed keeps its caches "
          "mounted and unpurged", "[unit]") {
  Harness h;  // no gc: `docker-worker run`
  h.docker.remove_container_error = Status(Code::kInternal, "engine hiccup");
  h.docker.behaviour = [](const ContainerSpec&) { return FakeDockerEngine::Behaviour{"", 3}; };
  auto& run = h.Make(R"({"image": "busybox:latest", "maxRunTime": 60, "cache": {"c": "/c"},
                         "onExitStatus": {"purgeCaches": [3]}})",
                     kCacheScope);
  RunResult r;
  std::thread t([&] { r = run.Run(); });
  // Sleep call 1 is the maxRunTime watchdog's; then removal is retried, on the clock.
  for (int i = 1; i <= 2; ++i) {
    h.clock.WaitForSleepCalls(1 + i);
    h.clock.Advance(std::chrono::seconds(i));
  }
  t.join();
  CHECK(r.resolution == Resolution::Failed());
  const std::string path = BoundAt(h, "/c");
  REQUIRE(!path.empty());
  CHECK(h.docker.live_containers().size() == 1);
  CHECK(std::filesystem::exists(path));  // not purged: the container may still use it
  CHECK(Mounted(h.caches, path));        // and not handed to anyone else
  CHECK_FALSE(h.Acquire("c").hit());
  REQUIRE(h.warnings.size() == 1);
  CHECK(h.warnings[0].find("engine hiccup") != std::string::npos);
  CHECK(h.warnings[0].find(path) != std::string::npos);
}

TEST_CASE("task run: without a collector a removal that succeeds on retry releases and purges",
          "[unit]") {
  Harness h;
  h.docker.remove_container_error = Status(Code::kInternal, "removal in progress");
  h.docker.behaviour = [](const ContainerSpec&) { return FakeDockerEngine::Behaviour{"", 3}; };
  auto& run = h.Make(R"({"image": "busybox:latest", "maxRunTime": 60, "cache": {"c": "/c"},
                         "onExitStatus": {"purgeCaches": [3]}})",
                     kCacheScope);
  std::thread t([&] { run.Run(); });
  h.clock.WaitForSleepCalls(2);  // after the watchdog's: the first retry's
  h.docker.remove_container_error = Status::Ok();
  h.clock.Advance(std::chrono::seconds(1));
  t.join();
  const std::string path = BoundAt(h, "/c");
  REQUIRE(!path.empty());
  CHECK(h.docker.live_containers().empty());
  CHECK_FALSE(std::filesystem::exists(path));
  CHECK(h.caches.List().empty());
  CHECK(h.warnings.empty());
}

TEST_CASE("task run: objects of `docker-worker run` are not the daemon's even with its worker id",
          "[unit]") {
  Harness h;
  h.label_owner = RunCommandLabelOwner("worker-1", 4242);
  GarbageCollector daemon_gc(h.docker, &h.caches, h.clock, h.worker_log, "worker-1",
                             Millis(1000));
  GarbageCollector::Counts swept;
  std::set<std::string> live_while_running;
  RunResult r = h.RunAndThen(kSimple, [&](TaskRun& run) {
    swept = daemon_gc.SweepLeftovers({});  // the daemon's start-up sweep: nothing is live
    live_while_running = h.docker.live_containers();
    run.Abort("worker-shutdown");
  });
  CHECK(swept.total() == 0);
  CHECK(live_while_running.size() == 1);
  REQUIRE(h.docker.created().size() == 1);
  CHECK(h.docker.created()[0].labels.at("docker-worker.worker-id") == "worker-1/run-4242");
  CHECK(h.log().find("Worker ID: worker-1\n") != std::string::npos);  // the header keeps it
}

TEST_CASE("task run: a long image pull does not hold off image collection", "[unit]") {
  Harness h;
  GarbageCollector gc(h.docker, nullptr, h.clock, h.worker_log, "worker-1", Millis(1000));
  h.gc = &gc;
  h.docker.AddImage("unrelated:latest", "sha256:unrelated");
  { ImagePin used_before = gc.UseImage("sha256:unrelated"); }
  h.config.pull_max_attempts = 2;
  h.docker.pull_error = Status(Code::kInternal, "connection reset by peer");
  auto& run = h.Make(R"({"image": "slow:1", "maxRunTime": 60})");
  std::thread t([&] { run.Run(); });
  h.clock.WaitForSleepCalls(1);  // the run is between two pull attempts
  int removed_during_pull = gc.Sweep(true, {}).images;
  h.docker.AddPullable("slow:1");
  h.clock.Advance(std::chrono::minutes(5));
  t.join();
  CHECK(removed_during_pull == 1);
  CHECK(h.docker.removed_images() == std::vector<std::string>{"sha256:unrelated"});
  CHECK(h.queue.resolution() == Resolution::Completed());
  CHECK(gc.TrackedImages() == std::vector<std::string>{"sha256:pulled"});
}

}  // namespace
}  // namespace docker_worker
