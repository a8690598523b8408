// `docker-worker run` against the real Docker engine: the built binary, real containers.
#include <signal.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include "docker_worker/engine_api.h"
#include "docker_worker/json.h"
#include "fakes/temp_dir.h"
#include "support/subprocess.h"

namespace docker_worker {
namespace {

using testing::ReadFile;
using testing::TempDir;
using testing::WriteFile;

struct Run {
  TempDir dir;
  testing::ProcessResult process;
  std::string stdout_text;
  std::string stderr_text;
  json::Document result;

  std::string out() const { return dir / "out"; }
  std::string Artifact(const std::string& name) const { return ReadFile(out() + "/artifacts/" + name); }
  std::string State() const { return json::GetString(result, "state").value_or("?"); }
  std::string Reason() const { return json::GetString(result, "reason").value_or("?"); }
  const json::Value& ArtifactInfo(const std::string& name) const {
    static const json::Value kNull;
    const json::Value* arts = json::FindObject(result, "artifacts");
    const json::Value* a = arts ? json::FindObject(*arts, name) : nullptr;
    return a ? *a : kNull;
  }
  std::vector<std::string> Args(const std::string& payload_file,
                                std::vector<std::string> extra) const {
    std::vector<std::string> args = {testing::WorkerBinary(), "run", payload_file, "--output", out()};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  void Finish() {
    stdout_text = ReadFile(dir / "stdout");
    stderr_text = ReadFile(dir / "stderr");
    auto parsed = json::Parse(ReadFile(out() + "/result.json"));
    if (parsed.ok()) result = std::move(*parsed);
    INFO(stderr_text);
  }
};

std::unique_ptr<Run> RunPayload(const std::string& payload, std::vector<std::string> extra = {},
                                std::map<std::string, std::string> env = {},
                                bool discard_stdout = false) {
  auto r = std::make_unique<Run>();
  WriteFile(r->dir / "payload.json", payload);
  r->process = testing::RunProcess(r->Args(r->dir / "payload.json", extra), env,
                                   discard_stdout ? "/dev/null" : r->dir / "stdout",
                                   r->dir / "stderr");
  r->Finish();
  return r;
}

std::vector<ContainerInfo> ContainersOfTask(const std::string& task_id) {
  EngineApi docker(EngineApi::SocketFromEnvironment());
  auto list = docker.ListContainers({"docker-worker.task-id=" + task_id});
  REQUIRE(list.ok());
  return *list;
}

const char* kTaskId = "Kq8Z4bY9T0u6iGkTjv3yAw";

TEST_CASE("run: a successful task", "[integration]") {
  auto r = RunPayload(R"({"image": "taskenv/busybox:latest", "maxRunTime": 60,
                          "command": ["sh", "-c", "echo hello; echo to-stderr >&2"]})",
                      {"--task-id", kTaskId});
  CHECK(r->process.exit_code == 0);
  CHECK(r->State() == "completed");
  CHECK(json::GetInt(r->result, "exitCode") == 0);
  CHECK(r->stdout_text.find("] Task ID: " + std::string(kTaskId) + "\n") != std::string::npos);
  CHECK(r->stdout_text.find("hello\r\nto-stderr\r\n") != std::string::npos);  // TTY: merged, CRLF
  CHECK(r->stdout_text.find("Successful task run with exit code: 0 completed in") !=
        std::string::npos);
  CHECK(ReadFile(r->out() + "/logs/live_backing.log") == r->stdout_text);
  CHECK(r->Artifact("public/logs/live_backing.log") == r->stdout_text);
  CHECK(ContainersOfTask(kTaskId).empty());
}

TEST_CASE("run: exit code 5 fails the task", "[integration]") {
  auto r = RunPayload(R"({"image": "taskenv/busybox:latest", "maxRunTime": 60,
                          "command": ["sh", "-c", "exit 5"]})");
  CHECK(r->process.exit_code == 1);
  CHECK(r->State() == "failed");
  CHECK(json::GetInt(r->result, "exitCode") == 5);
  CHECK(r->stdout_text.find("Unsuccessful task run with exit code: 5") != std::string::npos);
}

TEST_CASE("run: the image's default command runs when the payload has none", "[integration]") {
  auto r = RunPayload(R"({"image": "taskenv_fail:latest", "maxRunTime": 60})");
  CHECK(r->process.exit_code == 1);
  CHECK(json::GetInt(r->result, "exitCode") == 3);
  CHECK(r->stdout_text.find("task failing") != std::string::npos);
}

TEST_CASE("run: retry exit codes resolve as intermittent-task", "[integration]") {
  auto r = RunPayload(R"({"image": "taskenv/busybox:latest", "maxRunTime": 60,
                          "command": ["sh", "-c", "exit 42"], "onExitStatus": {"retry": [42]}})");
  CHECK(r->process.exit_code == 2);
  CHECK(r->State() == "exception");
  CHECK(r->Reason() == "intermittent-task");
}

TEST_CASE("run: maxRunTime kills the container", "[integration]") {
  auto r = RunPayload(R"({"image": "taskenv/busybox:latest", "maxRunTime": 2,
                          "command": ["sh", "-c", "echo started; sleep 60"]})",
                      {"--task-id", "LqXo6iYYT2e0k7sW2mWv3A"});
  CHECK(r->process.exit_code == 1);
  CHECK(r->State() == "failed");
  CHECK(r->stdout_text.find("[taskcluster:error] Task timeout after 2 seconds. Force killing "
                            "container.") != std::string::npos);
  CHECK(r->stdout_text.find("Unsuccessful task run with exit code: -1") != std::string::npos);
  CHECK(ContainersOfTask("LqXo6iYYT2e0k7sW2mWv3A").empty());
}

TEST_CASE("run: env has payload values, and reserved variables cannot be overridden",
          "[integration]") {
  auto r = RunPayload(R"({"image": "taskenv/busybox:latest", "maxRunTime": 60,
                          "command": ["env"],
                          "env": {"FOO": "bar baz", "TASK_ID": "forged", "RUN_ID": "7",
                                  "TASKCLUSTER_WORKER_POOL": "evil/pool"}})",
                      {"--task-id", kTaskId});
  CHECK(r->process.exit_code == 0);
  const std::string& out = r->stdout_text;
  CHECK(out.find("FOO=bar baz\r\n") != std::string::npos);
  CHECK(out.find("TASK_ID=" + std::string(kTaskId) + "\r\n") != std::string::npos);
  CHECK(out.find("RUN_ID=0\r\n") != std::string::npos);
  CHECK(out.find("TASKCLUSTER_WORKER_POOL=local-provisioner/docker-worker\r\n") !=
        std::string::npos);
  CHECK(out.find("forged") == std::string::npos);
  CHECK(out.find("evil/pool") == std::string::npos);
}

TEST_CASE("run: a task definition sets the pool, scopes and expiry", "[integration]") {
  auto r = RunPayload(R"({"provisionerId": "p1", "workerType": "t1",
      "expires": "2099-01-02T03:04:05.000Z",
      "payload": {"image": "taskenv/busybox:latest", "maxRunTime": 60,
                  "command": ["sh", "-c", "echo $TASKCLUSTER_WORKER_TYPE $TASKCLUSTER_WORKER_POOL"]}})");
  CHECK(r->process.exit_code == 0);
  CHECK(r->stdout_text.find("t1 p1/t1\r\n") != std::string::npos);
  CHECK(json::GetString(r->ArtifactInfo("public/logs/live_backing.log"), "expires") ==
        "2099-01-02T03:04:05.000Z");
}

TEST_CASE("run: file, directory, missing and escaping artifacts", "[integration]") {
  auto r = RunPayload(R"({"image": "taskenv_pass:latest", "maxRunTime": 60,
      "command": ["sh", "-c", "printf 'xfoo\\n' > /artifacts/made.txt"],
      "artifacts": {
        "public/result.txt": {"type": "file", "path": "/artifacts/result.txt"},
        "public/made.txt": {"type": "file", "path": "/artifacts/made.txt"},
        "public/dir": {"type": "directory", "path": "/artifacts/dir"},
        "public/missing.txt": {"type": "file", "path": "/artifacts/nope.txt"},
        "public/not-a-dir": {"type": "directory", "path": "/artifacts/result.txt"},
        "public/link-out.txt": {"type": "file", "path": "/artifacts/link-out.txt"}
      }})");
  CHECK(r->process.exit_code == 0);
  CHECK(r->State() == "completed");  // artifact problems never fail the task
  CHECK(r->Artifact("public/result.txt") == "pass\n");
  CHECK(r->Artifact("public/made.txt") == "xfoo\n");
  CHECK(json::GetString(r->ArtifactInfo("public/made.txt"), "sha256") ==
        "cebff86446aff2b1039749f09ef2922f9ad4f35ea2576a84e206708d8e8bf7b4");
  CHECK(r->Artifact("public/dir/xfoo.txt") == "xfoo\n");
  CHECK(r->Artifact("public/dir/sub/bar.html") == "bar\n");
  CHECK(json::GetString(r->ArtifactInfo("public/dir/sub/bar.html"), "contentType") == "text/html");
  // The symlink inside the directory points at /etc/passwd: never followed, never uploaded.
  CHECK(r->ArtifactInfo("public/dir/escape").IsNull());
  CHECK(r->stdout_text.find("root:x:0:0") == std::string::npos);
  CHECK(json::GetString(r->ArtifactInfo("public/missing.txt"), "reason") ==
        "file-missing-on-worker");
  CHECK(json::GetString(r->ArtifactInfo("public/not-a-dir"), "reason") ==
        "invalid-resource-on-worker");
  CHECK(json::GetString(r->ArtifactInfo("public/link-out.txt"), "reason") ==
        "invalid-resource-on-worker");
  CHECK(r->stdout_text.find("Artifact \"public/missing.txt\" not found at \"/artifacts/nope.txt\"") !=
        std::string::npos);
}

TEST_CASE("run: a malformed payload is an exception and nothing runs", "[integration]") {
  auto r = RunPayload(R"({"image": "taskenv/busybox:latest", "maxRunTime": "ten"})");
  CHECK(r->process.exit_code == 2);
  CHECK(r->Reason() == "malformed-payload");
  CHECK(r->stdout_text.find("/maxRunTime: expected integer, got string") != std::string::npos);
}

TEST_CASE("run: an image that cannot be pulled fails after the configured retries",
          "[integration]") {
  TempDir config_dir;
  // Upstream's test profile: 100 ms delay factor instead of 15 s.
  WriteFile(config_dir / "config.json",
            R"({"dockerConfig": {"delayFactor": 100, "maxAttempts": 3}})");
  auto r = RunPayload(R"({"image": "127.0.0.1:1/nothing/here:1.0", "maxRunTime": 60})",
                      {"--config", config_dir / "config.json"});
  CHECK(r->process.exit_code == 1);
  CHECK(r->stdout_text.find("retrying in") != std::string::npos);
  CHECK(r->stdout_text.find("[taskcluster:error] Pulling docker image has failed.") !=
        std::string::npos);
}

TEST_CASE("run: a 200 MB log streams through with bounded memory", "[integration]") {
  auto r = RunPayload(R"({"image": "taskenv/busybox:latest", "maxRunTime": 300,
      "command": ["sh", "-c", "head -c 200000000 /dev/zero"]})",
                      {}, {}, /*discard_stdout=*/true);
  CHECK(r->process.exit_code == 0);
  auto size = std::filesystem::file_size(r->out() + "/logs/live_backing.log");
  CHECK(size >= 200000000);
  INFO("peak RSS of docker-worker run: " << r->process.max_rss_kb << " KiB");
  CHECK(r->process.max_rss_kb < 32 * 1024);
}

TEST_CASE("run: Ctrl-C aborts the task and removes the container", "[integration]") {
  Run r;
  const std::string task_id = "QmJ7d2QzS5mnzN1Qb0zO7g";
  WriteFile(r.dir / "payload.json", R"({"image": "taskenv/busybox:latest", "maxRunTime": 600,
                                        "command": ["sh", "-c", "echo running; sleep 600"]})");
  testing::Subprocess p(r.Args(r.dir / "payload.json", {"--task-id", task_id}), {},
                        r.dir / "stdout", r.dir / "stderr");
  // Wait (bounded) until the container is running.
  bool running = false;
  for (int i = 0; i < 300 && !running; ++i) {
    running = ReadFile(r.dir / "stdout").find("running") != std::string::npos;
    if (!running) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  REQUIRE(running);
  REQUIRE(ContainersOfTask(task_id).size() == 1);
  p.Signal(SIGINT);
  r.process = p.Wait();
  r.Finish();
  CHECK(r.process.exit_code == 2);
  CHECK(r.State() == "exception");
  CHECK(r.Reason() == "worker-shutdown");
  CHECK(r.stdout_text.find("[taskcluster:error] Task has been aborted prematurely. Reason: "
                           "worker-shutdown") != std::string::npos);
  CHECK(ContainersOfTask(task_id).empty());
}

TEST_CASE("run: an unreachable engine exits 69 naming the socket", "[integration]") {
  auto r = RunPayload(R"({"image": "taskenv/busybox:latest", "maxRunTime": 60})", {},
                      {{"DOCKER_HOST", "unix:///nonexistent/docker.sock"}});
  CHECK(r->process.exit_code == 69);
  CHECK(r->stderr_text.find("/nonexistent/docker.sock") != std::string::npos);
}

TEST_CASE("run: usage errors and unreadable input exit 64", "[integration]") {
  TempDir dir;
  CHECK(testing::RunProcess({testing::WorkerBinary(), "run"}, {}, dir / "o", dir / "e").exit_code ==
        64);
  CHECK(testing::RunProcess({testing::WorkerBinary(), "run", dir / "missing.json"}, {}, dir / "o",
                            dir / "e")
            .exit_code == 64);
  WriteFile(dir / "bad.json", "{not json");
  CHECK(testing::RunProcess({testing::WorkerBinary(), "run", dir / "bad.json"}, {}, dir / "o",
                            dir / "e")
            .exit_code == 64);
  CHECK(ReadFile(dir / "e").find("bad.json") != std::string::npos);
}

TEST_CASE("version: --version names the worker and the libraries linked into it", "[integration]") {
  TempDir dir;
  CHECK(testing::RunProcess({testing::WorkerBinary(), "--version"}, {}, dir / "o", dir / "e")
            .exit_code == 0);
  std::string out = ReadFile(dir / "o");
  CHECK(out.find("docker-worker " DOCKER_WORKER_VERSION "\n") == 0);
  CHECK(out.find("libcurl ") != std::string::npos);
  CHECK(out.find("OpenSSL/") != std::string::npos);
}

}  // namespace
}  // namespace docker_worker
