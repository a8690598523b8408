// taskclusterProxy through the built binary: a task talks to local-queue through
// http://taskcluster/ with the run's credentials; nobody else can use its proxy.
#include <catch2/catch.hpp>

#include <thread>

#include "docker_worker/engine_api.h"
#include "docker_worker/json.h"
#include "docker_worker/slugid.h"
#include "docker_worker/time_format.h"
#include "support/local_system.h"

namespace docker_worker {
namespace {

using testing::LocalSystem;

std::string Payload(const std::string& script, bool proxy) {
  return R"({"image": "taskenv/busybox:latest", "maxRunTime": 120, "command": ["sh", "-c", )" +
         json::Quote(script) + R"(], "features": {"taskclusterProxy": )" +
         (proxy ? "true" : "false") + "}}";
}

std::vector<NetworkInfo> NetworksOf(const std::string& task_id) {
  EngineApi docker(EngineApi::SocketFromEnvironment());
  auto list = docker.ListNetworks({"docker-worker.task-id=" + task_id});
  return list.ok() ? *list : std::vector<NetworkInfo>{};
}

bool HasArtifact(LocalSystem& sys, const std::string& task_id, const std::string& name) {
  auto list = sys.queue().ListLatestArtifacts(task_id);
  if (!list.ok()) return false;
  for (const auto& [n, type] : *list) {
    if (n == name) return true;
  }
  return false;
}

// Creates `public/<name>` (a reference artifact) through the proxy.
std::string CreateArtifactScript(const std::string& name) {
  std::string expires = FormatIso(SystemClock().Now() + std::chrono::minutes(30));
  return "wget -q -O /dev/null --header 'Content-Type: application/json' --post-data "
         "'{\"storageType\":\"reference\",\"url\":\"https://example.com/ref\",\"expires\":\"" +
         expires + "\",\"contentType\":\"text/plain\"}' "
         "\"$TASKCLUSTER_PROXY_URL/api/queue/v1/task/$TASK_ID/runs/$RUN_ID/artifacts/public%2F" +
         name + "\" && echo created-" + name;
}

TEST_CASE("e2e: taskclusterProxy signs for the task, refuses others, and is removed", "[e2e]") {
  LocalSystem sys(LocalSystem::With(2, 1200, "e2e-proxy"));
  sys.StartWorker();
  const std::string b_id = NewSlugId();
  const std::string a_script =
      "set -e; echo \"proxy=$TASKCLUSTER_PROXY_URL\"; " + CreateArtifactScript("via-proxy") +
      // The task does not hold queue:get-task:<id>: the queue refuses, the 403 comes back.
      "; (wget -S -O /dev/null http://taskcluster/api/queue/v1/task/$TASK_ID 2>&1 || true) | "
      "grep -o 'HTTP/1.1 [0-9]*' | sed 's/^/outside-scopes: /'; "
      "wget -q -O - http://taskcluster/queue/v1/task/$TASK_ID/status | grep -q running && "
      "echo legacy-form-ok; "
      // Stay up until the other task has tried this proxy.
      "i=0; until wget -q -O - http://taskcluster/api/queue/v1/task/" + b_id +
      "/status 2>/dev/null | grep -q '\"state\":\"completed\"'; do i=$((i+1)); "
      "[ $i -gt 600 ] && exit 3; sleep 0.1; done; echo other-task-done";
  std::string a_id = sys.CreateTask(Payload(a_script, true), 0, {"queue:status:*"});
  REQUIRE(!a_id.empty());
  REQUIRE(sys.WaitUntilRunning(a_id));

  // The other task aims at A's proxy address directly.
  std::string gateway;
  for (int i = 0; i < 300 && gateway.empty(); ++i) {
    for (const auto& n : NetworksOf(a_id)) {
      EngineApi docker(EngineApi::SocketFromEnvironment());
      auto info = docker.InspectNetwork(n.id);
      if (info.ok()) gateway = info->gateway;
    }
    if (gateway.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  REQUIRE(!gateway.empty());
  std::string b_script = "timeout 10 wget -S -O - http://" + gateway +
                         "/api/queue/v1/task/" + a_id + "/status 2>&1; echo \"wget-exit=$?\"";
  REQUIRE(sys.CreateTask(Payload(b_script, false), 0, {}, b_id) == b_id);

  CHECK(sys.WaitForRun(b_id, 0, 90).first == "completed");
  CHECK(sys.WaitForRun(a_id, 0, 90) == std::pair<std::string, std::string>{"completed", "completed"});

  auto a_log = sys.Artifact(a_id, "public/logs/live_backing.log");
  REQUIRE(a_log);
  INFO(*a_log);
  CHECK(a_log->find("proxy=http://taskcluster") != std::string::npos);
  CHECK(a_log->find("created-via-proxy") != std::string::npos);
  CHECK(HasArtifact(sys, a_id, "public/via-proxy"));
  CHECK(a_log->find("outside-scopes: HTTP/1.1 403") != std::string::npos);
  CHECK(a_log->find("legacy-form-ok") != std::string::npos);
  CHECK(a_log->find("other-task-done") != std::string::npos);

  auto b_log = sys.Artifact(b_id, "public/logs/live_backing.log");
  REQUIRE(b_log);
  INFO(*b_log);
  CHECK(b_log->find("\"state\"") == std::string::npos);  // no status came back
  CHECK(b_log->find("wget-exit=0") == std::string::npos);

  CHECK(NetworksOf(a_id).empty());
}

TEST_CASE("e2e: the proxy uses the credentials of the latest reclaim", "[e2e]") {
  // Claims last 3 s; the first credentials have expired when the task calls the proxy.
  LocalSystem sys(LocalSystem::With(1, 3, "e2e-proxy-rc"));
  sys.StartWorker();
  std::string id = sys.CreateTask(Payload("sleep 7; " + CreateArtifactScript("late"), true));
  CHECK(sys.WaitForRun(id, 0, 90).first == "completed");
  CHECK(HasArtifact(sys, id, "public/late"));
  CHECK(sys.WorkerLog().find("\"type\":\"reclaimed\"") != std::string::npos);
}

TEST_CASE("e2e: a task without the proxy feature gets no proxy", "[e2e]") {
  LocalSystem sys(LocalSystem::With(1, 1200, "e2e-noproxy"));
  sys.StartWorker();
  std::string id = sys.CreateTask(
      Payload("echo \"proxy=[$TASKCLUSTER_PROXY_URL]\"; grep -c taskcluster /etc/hosts", false));
  CHECK(sys.WaitForRun(id, 0).first == "failed");  // grep -c finds nothing: exit 1
  auto log = sys.Artifact(id, "public/logs/live_backing.log");
  REQUIRE(log);
  CHECK(log->find("proxy=[]") != std::string::npos);
  CHECK(NetworksOf(id).empty());
}

}  // namespace
}  // namespace docker_worker
