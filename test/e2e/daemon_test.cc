// The whole system through the built binary: local-queue, the daemon, real containers.
#include <signal.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <regex>
#include <thread>

#include "docker_worker/worker_labels.h"
#include "docker_worker/engine_api.h"
#include "docker_worker/json.h"
#include "support/local_system.h"

namespace docker_worker {
namespace {

using testing::LocalSystem;

int RunningContainers(const std::string& worker_id) {
  EngineApi docker(EngineApi::SocketFromEnvironment());
  auto list = docker.ListContainers({WorkerLabelFilter(worker_id)});
  if (!list.ok()) return -1;
  return static_cast<int>(std::count_if(list->begin(), list->end(),
                                        [](const ContainerInfo& c) { return c.state == "running"; }));
}

// Polls (bounded) until `n` task containers of the worker are running.
bool WaitForRunningContainers(const std::string& worker_id, int n) {
  for (int i = 0; i < 300; ++i) {
    if (RunningContainers(worker_id) >= n) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

int LiveContainers(const std::string& worker_id) {
  EngineApi docker(EngineApi::SocketFromEnvironment());
  auto list = docker.ListContainers({WorkerLabelFilter(worker_id)});
  return list.ok() ? static_cast<int>(list->size()) : -1;
}

TEST_CASE("e2e: a passing task completes and its artifacts read back byte for byte", "[e2e]") {
  LocalSystem sys({});
  sys.StartWorker();
  std::string id = sys.CreateTask(R"({"image": "taskenv_pass:latest", "maxRunTime": 60,
      "command": ["sh", "-c", "echo hello-e2e; mkdir -p /out/d; printf 'xfoo\\n' > /out/a.txt; head -c 300000 /dev/urandom > /out/d/blob.bin; cp /out/d/blob.bin /out/d/copy.bin"],
      "artifacts": {"public/a.txt": {"type": "file", "path": "/out/a.txt"},
                    "public/d": {"type": "directory", "path": "/out/d"}}})");
  REQUIRE(!id.empty());
  CHECK(sys.WaitForRun(id, 0) == std::pair<std::string, std::string>{"completed", "completed"});
  CHECK(sys.Artifact(id, "public/a.txt") == "xfoo\n");
  auto blob = sys.Artifact(id, "public/d/blob.bin");
  REQUIRE(blob);
  CHECK(blob->size() == 300000);
  CHECK(sys.Artifact(id, "public/d/copy.bin") == blob);
  auto log = sys.Artifact(id, "public/logs/live_backing.log");
  REQUIRE(log);
  CHECK(log->find("hello-e2e\r\n") != std::string::npos);
  CHECK(log->find("Successful task run with exit code: 0") != std::string::npos);
  CHECK(sys.Artifact(id, "public/logs/live.log") == log);  // live.log became a link
}

TEST_CASE("e2e: failing, malformed and intermittent tasks resolve as upstream", "[e2e]") {
  LocalSystem sys({});
  sys.StartWorker();
  std::string fail = sys.CreateTask(R"({"image": "taskenv/busybox:latest", "maxRunTime": 60,
                                        "command": ["sh", "-c", "exit 1"]})");
  std::string malformed = sys.CreateTask(R"({"image": "taskenv/busybox:latest",
                                             "maxRunTime": "soon"})");
  std::string retry = sys.CreateTask(R"({"image": "taskenv/busybox:latest", "maxRunTime": 60,
      "command": ["sh", "-c", "exit 7"], "onExitStatus": {"retry": [7]}})");
  CHECK(sys.WaitForRun(fail, 0).first == "failed");
  CHECK(sys.WaitForRun(malformed, 0) ==
        std::pair<std::string, std::string>{"exception", "malformed-payload"});
  auto log = sys.Artifact(malformed, "public/logs/live_backing.log");
  REQUIRE(log);
  CHECK(log->find("/maxRunTime: expected integer, got string") != std::string::npos);
  CHECK(sys.WaitForRun(retry, 0) ==
        std::pair<std::string, std::string>{"exception", "intermittent-task"});
}

TEST_CASE("e2e: a short claim is reclaimed until the task finishes", "[e2e]") {
  LocalSystem sys(LocalSystem::With(1, 3, "e2e"));
  sys.StartWorker();
  std::string id = sys.CreateTask(R"({"image": "taskenv/busybox:latest", "maxRunTime": 60,
                                      "command": ["sh", "-c", "sleep 7; echo slept"]})");
  CHECK(sys.WaitForRun(id, 0).first == "completed");
  std::string worker_log = sys.WorkerLog();
  CHECK(worker_log.find("\"type\":\"reclaimed\"") != std::string::npos);
  CHECK(worker_log.find("reclaim failed") == std::string::npos);
}

TEST_CASE("e2e: cancel while running kills the container and reports nothing", "[e2e]") {
  LocalSystem sys(LocalSystem::With(1, 3, "e2e"));
  sys.StartWorker();
  std::string id = sys.CreateTask(R"({"image": "taskenv/busybox:latest", "maxRunTime": 120,
                                      "command": ["sh", "-c", "sleep 100"]})");
  REQUIRE(WaitForRunningContainers(sys.worker_id(), 1));
  REQUIRE(sys.queue().CancelTask(id).ok());
  CHECK(sys.WaitForRun(id, 0) == std::pair<std::string, std::string>{"exception", "canceled"});
  // The next reclaim (within ~1.5 s) gets 409 and the worker drops the task.
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    gone = sys.WorkerLog().find("\"state\":\"canceled\"") != std::string::npos &&
           LiveContainers(sys.worker_id()) == 0;
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK(gone);
  CHECK(sys.QueueLog().find("/exception") == std::string::npos);  // no report by the worker
}

TEST_CASE("e2e: SIGTERM aborts running tasks with worker-shutdown, logs uploaded", "[e2e]") {
  LocalSystem sys({});
  sys.StartWorker();
  std::string id = sys.CreateTask(R"({"image": "taskenv/busybox:latest", "maxRunTime": 120,
                                      "command": ["sh", "-c", "echo started; sleep 100"]})");
  REQUIRE(WaitForRunningContainers(sys.worker_id(), 1));
  CHECK(sys.StopWorker(SIGTERM) == 0);
  CHECK(sys.WaitForRun(id, 0) ==
        std::pair<std::string, std::string>{"exception", "worker-shutdown"});
  auto log = sys.Artifact(id, "public/logs/live_backing.log");
  INFO(sys.QueueLog());
  INFO(sys.WorkerLog());
  REQUIRE(log);
  CHECK(log->find("Task has been aborted prematurely. Reason: worker-shutdown") !=
        std::string::npos);
  CHECK(LiveContainers(sys.worker_id()) == 0);
}

TEST_CASE("e2e: capacity 4 runs 4 tasks at once", "[e2e]") {
  LocalSystem sys(LocalSystem::With(4, 1200, "e2e"));
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) {
    ids.push_back(sys.CreateTask(R"({"image": "taskenv/busybox:latest", "maxRunTime": 60,
        "command": ["sh", "-c", "sleep 4"]})"));
  }
  sys.StartWorker();
  int most = 0;
  for (int i = 0; i < 100 && most < 4; ++i) {
    most = std::max(most, LiveContainers(sys.worker_id()));
    if (most < 4) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(most == 4);
  for (const auto& id : ids) CHECK(sys.WaitForRun(id, 0).first == "completed");
}

TEST_CASE("e2e: restarting local-queue mid-task loses nothing", "[e2e]") {
  LocalSystem sys({});
  sys.StartWorker();
  std::string id = sys.CreateTask(R"({"image": "taskenv_pass:latest", "maxRunTime": 60,
      "command": ["sh", "-c", "sleep 3; mkdir -p /out; echo kept > /out/k.txt"],
      "artifacts": {"public/k.txt": {"type": "file", "path": "/out/k.txt"}}})");
  REQUIRE(WaitForRunningContainers(sys.worker_id(), 1));
  sys.StopQueue(SIGTERM);
  sys.StartQueue();  // same data dir, same port
  CHECK(sys.WaitForRun(id, 0).first == "completed");
  CHECK(sys.Artifact(id, "public/k.txt") == "kept\n");
  auto log = sys.Artifact(id, "public/logs/live_backing.log");
  REQUIRE(log);
  CHECK(log->find("Successful task run") != std::string::npos);
}

TEST_CASE("e2e: submit creates the task, streams its log and downloads artifacts", "[e2e]") {
  LocalSystem sys({});
  sys.StartWorker();
  testing::WriteFile(sys.dir() / "task.json", R"({"provisionerId": "local-provisioner",
      "workerType": "e2e", "payload": {"image": "taskenv_pass:latest", "maxRunTime": 60,
      "command": ["sh", "-c", "echo submitted-ok; mkdir -p /out; echo r > /out/r.txt"],
      "artifacts": {"public/r.txt": {"type": "file", "path": "/out/r.txt"}}}})");
  auto clients = json::Parse(testing::ReadFile(sys.dir() / "data/clients.json"));
  REQUIRE(clients.ok());
  auto r = testing::RunProcess(
      {testing::WorkerBinary(), "submit", sys.dir() / "task.json", "--output", sys.dir() / "out"},
      {{"TASKCLUSTER_ROOT_URL", sys.root_url()},
       {"TASKCLUSTER_CLIENT_ID", *json::GetString((*clients)[0], "clientId")},
       {"TASKCLUSTER_ACCESS_TOKEN", *json::GetString((*clients)[0], "accessToken")}},
      sys.dir() / "submit.out", sys.dir() / "submit.err");
  INFO(testing::ReadFile(sys.dir() / "submit.err"));
  INFO("stdout: " << testing::ReadFile(sys.dir() / "submit.out"));
  CHECK(r.exit_code == 0);
  CHECK(testing::ReadFile(sys.dir() / "submit.out").find("submitted-ok") != std::string::npos);
  CHECK(testing::ReadFile(sys.dir() / "out/public/r.txt") == "r\n");
  auto result = json::Parse(testing::ReadFile(sys.dir() / "out/result.json"));
  REQUIRE(result.ok());
  CHECK(json::GetString(*result, "state") == "completed");
}

}  // namespace
}  // namespace docker_worker
