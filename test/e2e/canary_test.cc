// The canary: the worker's access token is a unique string; with every feature on, 20 tasks
// run and the string must appear nowhere a task or an observer can see: docker inspect of the
// containers and networks, task logs, artifacts, proxy responses, container environments, the
// worker's own log. Each task also gets an encryptedEnv variable: its value reaches the task (which
// prints only its hash) and appears in none of those places either.
#include <sodium.h>

#include <catch2/catch.hpp>

#include <set>
#include <thread>

#include "docker_worker/worker_labels.h"
#include "docker_worker/base64.h"
#include "docker_worker/clock.h"
#include "docker_worker/encrypt_env_command.h"
#include "docker_worker/engine_api.h"
#include "docker_worker/json.h"
#include "docker_worker/sha256.h"
#include "docker_worker/slugid.h"
#include "support/gpg_keys.h"
#include "support/local_system.h"

namespace docker_worker {
namespace {

using testing::LocalSystem;
using testing::TempDir;


TEST_CASE("e2e: canary — the worker's access token never reaches a task or a log", "[e2e]") {
  const std::string canary = "CANARY-" + NewSlugId() + NewSlugId();
  TempDir keys;
  const std::string cot_key = testing::WriteCotSigningKey(keys);
  testing::GpgKeyPair env_key;
  REQUIRE(env_key.ok());
  const std::string secret = "SECRET-" + NewSlugId() + NewSlugId();
  Sha256 secret_hash;
  secret_hash.Update(secret);
  const std::string secret_sha256 = secret_hash.HexDigest();
  LocalSystem::Options options = LocalSystem::With(4, 1200, "e2e-canary");
  options.worker_access_token = canary;
  options.worker_config = R"({"taskQueue": {"pollInterval": 200},
                              "ed25519SigningKeyLocation": ")" + cot_key + R"(",
                              "dockerWorkerPrivateKey": ")" + env_key.private_key_path() + R"("})";
  LocalSystem sys(options);
  sys.StartWorker();

  const std::string script =
      "mkdir -p /out; env | grep -v ^SECRET_ENV= | sort; printf %s \"$SECRET_ENV\" | sha256sum; "
      "cat /etc/hosts; "
      "wget -S -O /out/task.json http://taskcluster/api/queue/v1/task/$TASK_ID 2>&1; "
      "wget -S -O /out/status.json $TASKCLUSTER_PROXY_URL/queue/v1/task/$TASK_ID/status 2>&1; "
      "cat /out/task.json /out/status.json; sleep 1";
  // Each entry is bound to its task's id.
  auto payload_for = [&](const std::string& task_id) {
    const int64_t now = ToEpochMillis(SystemClock().Now());
    auto entry = EncryptEnvEntry(env_key.PublicKey(),
                                 EnvMessagePlaintext(task_id, "SECRET_ENV", secret, now - 60000,
                                                     now + 3600000));
    REQUIRE(entry.ok());
    return R"({"image": "taskenv/busybox:latest", "maxRunTime": 120, "command": ["sh", "-c", )" +
      json::Quote(script) + R"(], "env": {"PLAIN": "visible"}, "encryptedEnv": [")" + *entry +
      R"("],
      "features": {"taskclusterProxy": true, "chainOfTrust": true, "allowPtrace": true,
                   "localLiveLog": true, "artifacts": true},
      "artifacts": {"public/out": {"type": "directory", "path": "/out"}}})";
  };
  const std::vector<std::string> scopes = {"docker-worker:feature:allowPtrace",
                                           "queue:get-task:*", "queue:status:*"};
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    const std::string task_id = NewSlugId();
    ids.push_back(sys.CreateTask(payload_for(task_id), 0, scopes, task_id));
    REQUIRE(ids.back() == task_id);
  }

  // While the tasks run: docker inspect of every task container and proxy network seen.
  HttpClient docker(EngineApi::SocketFromEnvironment());
  EngineApi engine(EngineApi::SocketFromEnvironment());
  std::set<std::string> inspected;
  std::vector<std::string> inspect_output;
  auto inspect = [&](const std::string& path) {
    HttpRequest r;
    r.url = "http://docker/v1.41" + path;
    auto resp = docker.Send(r);
    if (resp.ok() && resp->ok()) inspect_output.push_back(resp->body);
  };
  auto resolved = [&] {
    for (const auto& id : ids) {
      if (sys.WaitForRun(id, 0, 0).first == "timeout") return false;
    }
    return true;
  };
  for (int i = 0; i < 1200 && !resolved(); ++i) {
    auto containers = engine.ListContainers({WorkerLabelFilter(sys.worker_id())});
    if (containers.ok()) {
      for (const auto& c : *containers) {
        if (inspected.insert(c.id).second) inspect("/containers/" + c.id + "/json");
      }
    }
    auto networks = engine.ListNetworks({WorkerLabelFilter(sys.worker_id())});
    if (networks.ok()) {
      for (const auto& n : *networks) {
        if (inspected.insert(n.id).second) inspect("/networks/" + n.id);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  REQUIRE(resolved());
  CHECK(inspected.size() >= 20);  // containers, plus their networks

  int checked = 0;
  for (const auto& id : ids) {
    INFO("task " << id);
    CHECK(sys.WaitForRun(id, 0, 0) == std::pair<std::string, std::string>{"completed", "completed"});
    for (const char* name : {"public/logs/live_backing.log", "public/logs/live.log",
                             "public/out/task.json", "public/out/status.json",
                             "public/chain-of-trust.json", "public/logs/certified.log"}) {
      auto bytes = sys.Artifact(id, name);
      INFO(name);
      REQUIRE(bytes);
      CHECK(bytes->find(canary) == std::string::npos);
      CHECK(bytes->find(secret) == std::string::npos);
      ++checked;
    }
    auto log = sys.Artifact(id, "public/logs/live_backing.log");
    // The checks above looked at real content: the env, the proxy's answers and headers.
    CHECK(log->find("PLAIN=visible") != std::string::npos);
    CHECK(log->find(secret_sha256 + "  -") != std::string::npos);  // the task had the secret
    CHECK(log->find("TASKCLUSTER_PROXY_URL=http://taskcluster") != std::string::npos);
    CHECK(log->find("X-Taskcluster-Proxy-Temp-ClientId: task-client/" + id) != std::string::npos);
    CHECK(log->find("\"taskId\":\"" + id + "\"") != std::string::npos);
  }
  CHECK(checked == 120);
  for (const auto& out : inspect_output) {
    CHECK(out.find(canary) == std::string::npos);
    CHECK(out.find(secret) == std::string::npos);
  }
  CHECK(inspect_output.size() >= 20);  // a container may go between listing and inspecting
  const std::string worker_log =
      sys.WorkerLog() + testing::ReadFile(sys.dir() / "worker.err");
  CHECK(worker_log.find("taskFinish") != std::string::npos);
  CHECK(worker_log.find(canary) == std::string::npos);
  CHECK(worker_log.find(secret) == std::string::npos);
}

}  // namespace
}  // namespace docker_worker
