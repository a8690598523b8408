// `docker-worker run` against the real Docker engine: the built binary, real containers.
#include <signal.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <regex>
#include <thread>

#include "docker_worker/clock.h"
#include "docker_worker/encrypt_env_command.h"
#include "docker_worker/engine_api.h"
#include "docker_worker/http_client.h"
#include "docker_worker/json.h"
#include "docker_worker/sha256.h"
#include "docker_worker/slugid.h"
#include "docker_worker/tar_builder.h"
#include "docker_worker/worker_config.h"
#include "docker_worker/worker_labels.h"
#include "fakes/temp_dir.h"
#include "support/gpg_keys.h"
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

// Each test its own task id: ctest runs them in parallel, and some look for their containers.
const char* kTaskId = "Kq8Z4bY9T0u6iGkTjv3yAw";
const char* kEnvTaskId = "Wm2xQ0eRRZ6d1sQ6pS3Y1g";

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
                      {"--task-id", kEnvTaskId});
  CHECK(r->process.exit_code == 0);
  const std::string& out = r->stdout_text;
  CHECK(out.find("FOO=bar baz\r\n") != std::string::npos);
  CHECK(out.find("TASK_ID=" + std::string(kEnvTaskId) + "\r\n") != std::string::npos);
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
  auto containers = ContainersOfTask(task_id);
  REQUIRE(containers.size() == 1);
  // Labelled as this `run`'s, so a daemon with the same (default) worker id never sweeps it.
  const std::string worker_id = WorkerConfig::Defaults().worker_id;
  const std::string owner = containers[0].labels[kWorkerIdLabel];
  const std::string prefix = worker_id + "/run-";
  CHECK(owner.rfind(prefix, 0) == 0);
  CHECK(owner.size() > prefix.size());
  CHECK(owner.find_first_not_of("0123456789", prefix.size()) == std::string::npos);
  {
    EngineApi docker(EngineApi::SocketFromEnvironment());
    auto daemons = docker.ListContainers({WorkerLabelFilter(worker_id), "docker-worker.task-id=" + task_id});
    REQUIRE(daemons.ok());
    CHECK(daemons->empty());
  }
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

TEST_CASE("binary: no shared library an idle worker would carry for formats it never writes",
          "[integration]") {
  // Each of these is loaded at start-up when linked, and costs resident memory for nothing (the
  // xar/7-Zip/zip writers of libarchive's format table need them; see tar_builder.cc).
  const std::string readelf = testing::FindProgram("readelf");
  REQUIRE(!readelf.empty());  // binutils, from build-essential
  TempDir dir;
  REQUIRE(testing::RunProcess({readelf, "-d", testing::WorkerBinary()}, {}, dir / "o", dir / "e")
              .exit_code == 0);
  const std::string needed = ReadFile(dir / "o");
  REQUIRE(needed.find("(NEEDED)") != std::string::npos);
  for (const char* lib : {"libxml2", "libicu", "liblzma", "libbz2", "libnettle", "libarchive",
                          "libcurl", "libssl", "libsqlite", "libgpgme", "libsodium"}) {
    INFO(lib);
    CHECK(needed.find(std::string("[") + lib) == std::string::npos);
  }
}

// ------------------------------------------------------------------------------ encryptedEnv

// A worker key (throw-away, made by gpg) and a `run` config naming it.
struct WorkerKey {
  testing::GpgKeyPair keys;
  TempDir dir;
  std::string config = dir / "config.json";
  WorkerKey() {
    INFO(keys.error());
    REQUIRE(keys.ok());
    WriteFile(config, R"({"dockerWorkerPrivateKey": ")" + keys.private_key_path() + "\"}");
  }
  // An entry valid from a minute ago for an hour.
  std::string Entry(const std::string& task_id, const std::string& name, const std::string& value) {
    const int64_t now = ToEpochMillis(SystemClock().Now());
    auto entry = EncryptEnvEntry(keys.PublicKey(), EnvMessagePlaintext(task_id, name, value,
                                                                       now - 60000, now + 3600000));
    INFO(entry.status().message());
    REQUIRE(entry.ok());
    return *entry;
  }
};

std::string Sha256Of(const std::string& text) {
  Sha256 h;
  h.Update(text);
  return h.HexDigest();
}

TEST_CASE("run: encryptedEnv variables reach the task, never its configuration or filesystem",
          "[integration]") {
  WorkerKey key;
  const std::string task_id = NewSlugId();
  const std::string value_a = "enc-value-A-" + NewSlugId();
  const std::string value_b = "enc value B with spaces and = signs " + NewSlugId();
  Run r;
  WriteFile(r.dir / "payload.json",
            R"({"image": "taskenv/busybox:latest", "maxRunTime": 120, "env": {"PLAIN": "plain"},
                "command": ["sh", "-c", "while [ ! -e /tmp/go ]; do sleep 0.05; done; printf %s \"$SECRET_A\" | sha256sum; echo \"B length ${#SECRET_B}\"; echo \"PLAIN=$PLAIN\"; ls -a /.taskcluster-secret-env; echo \"ls exit $?\""],
                "encryptedEnv": [")" + key.Entry(task_id, "SECRET_A", value_a) + R"(", ")" +
                key.Entry(task_id, "SECRET_B", value_b) + R"("]})");
  testing::Subprocess p(
      r.Args(r.dir / "payload.json", {"--task-id", task_id, "--config", key.config}), {},
      r.dir / "stdout", r.dir / "stderr");

  // While the task waits: its configuration as anyone with the engine sees it.
  std::vector<ContainerInfo> containers;
  for (int i = 0; i < 600 && containers.empty(); ++i) {
    containers = ContainersOfTask(task_id);
    if (containers.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  REQUIRE(containers.size() == 1);
  HttpClient http(EngineApi::SocketFromEnvironment());
  HttpRequest inspect;
  inspect.url = "http://docker/v1.41/containers/" + containers[0].id + "/json";
  // The engine lists a new container a moment before it can be inspected: retry a 404 briefly.
  auto inspected = http.Send(inspect);
  for (int i = 0; i < 100 && inspected.ok() && inspected->status == 404; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    inspected = http.Send(inspect);
  }
  if (!inspected.ok() || !inspected->ok()) {  // say why, without waiting for maxRunTime
    p.Signal(SIGINT);
    r.process = p.Wait();
    r.Finish();
    FAIL("inspect failed: " << (inspected.ok() ? std::to_string(inspected->status) + " " +
                                                      inspected->body
                                                : inspected.status().message())
                            << "\nrun exit " << r.process.exit_code << "\n"
                            << r.stdout_text << "\n" << r.stderr_text);
  }
  CHECK(inspected->body.find(value_a) == std::string::npos);
  CHECK(inspected->body.find(value_b) == std::string::npos);
  CHECK(inspected->body.find("SECRET_A=") == std::string::npos);
  CHECK(inspected->body.find("\"PLAIN=plain\"") != std::string::npos);
  CHECK(inspected->body.find(R"("Entrypoint":["/.taskcluster-secret-env/env-exec")") !=
        std::string::npos);
  TarBuilder go;
  go.AddFile("go", "");
  auto tar = go.Finish();
  REQUIRE(tar.ok());
  EngineApi docker(EngineApi::SocketFromEnvironment());
  REQUIRE(docker.PutArchive(containers[0].id, "/tmp", *tar).ok());

  r.process = p.Wait();
  r.Finish();
  CHECK(r.process.exit_code == 0);
  CHECK(r.State() == "completed");
  const std::string& log = r.stdout_text;
  CHECK(log.find(Sha256Of(value_a) + "  -") != std::string::npos);
  CHECK(log.find("B length " + std::to_string(value_b.size()) + "\r\n") != std::string::npos);
  CHECK(log.find("PLAIN=plain\r\n") != std::string::npos);
  // The launcher removed the variables (and itself) before the command ran.
  CHECK(log.find("ls: /.taskcluster-secret-env: No such file or directory") != std::string::npos);
  for (const std::string* text : {&r.stdout_text, &r.stderr_text}) {
    CHECK(text->find(value_a) == std::string::npos);
    CHECK(text->find(value_b) == std::string::npos);
  }
  CHECK(ContainersOfTask(task_id).empty());
}

TEST_CASE("run: encryptedEnv keeps the image's entrypoint, default command, user and exit code",
          "[integration]") {
  WorkerKey key;
  const std::string task_id = NewSlugId();
  const std::string entry = key.Entry(task_id, "SECRET_A", "twelve chars");
  // taskenv_nobody: ENTRYPOINT ["/bin/sh", "-c"], USER 65534.
  auto with_command = RunPayload(
      R"({"image": "taskenv_nobody:latest", "maxRunTime": 60, "encryptedEnv": [")" + entry +
          R"("], "command": ["echo uid $(id -u) length ${#SECRET_A}; ls -A /.taskcluster-secret-env | wc -l; exit 7"]})",
      {"--task-id", task_id, "--config", key.config});
  CHECK(with_command->State() == "failed");
  CHECK(json::GetInt(with_command->result, "exitCode") == 7);
  CHECK(with_command->stdout_text.find("uid 65534 length 12\r\n0\r\n") != std::string::npos);

  auto image_default = RunPayload(R"({"image": "taskenv_nobody:latest", "maxRunTime": 60,
                                      "encryptedEnv": [")" + entry + R"("]})",
                                  {"--task-id", task_id, "--config", key.config});
  CHECK(image_default->State() == "completed");
  CHECK(image_default->stdout_text.find("image-default-command as 65534\r\n") != std::string::npos);

  auto not_found = RunPayload(R"({"image": "taskenv/busybox:latest", "maxRunTime": 60,
                                  "command": ["no-such-program"], "encryptedEnv": [")" + entry +
                                  R"("]})", {"--task-id", task_id, "--config", key.config});
  CHECK(not_found->State() == "failed");
  CHECK(json::GetInt(not_found->result, "exitCode") == 127);
  CHECK(not_found->stdout_text.find("env-exec: no-such-program: No such file or directory") !=
        std::string::npos);
}

TEST_CASE("run: a secret data violation fails the task and names neither variable nor value",
          "[integration]") {
  WorkerKey key;
  const std::string task_id = NewSlugId();
  const std::string value = "violating-value-" + NewSlugId();
  auto r = RunPayload(R"({"image": "taskenv/busybox:latest", "maxRunTime": 60,
                          "command": ["true"], "encryptedEnv": [")" +
                          key.Entry(NewSlugId(), "SECRET_NAME_X", value) + R"("]})",
                      {"--task-id", task_id, "--config", key.config});
  CHECK(r->process.exit_code == 1);
  CHECK(r->State() == "failed");
  CHECK(r->stdout_text.find("[taskcluster:error] Docker configuration could not be created.") !=
        std::string::npos);
  static const std::regex kViolation(
      "secret data violation -- the taskId of the env payload does not match the taskId of the "
      "task; incidentId: ([0-9a-f-]{36})");
  std::smatch m;
  REQUIRE(std::regex_search(r->stdout_text, m, kViolation));
  CHECK(r->stderr_text.find(m[1].str()) != std::string::npos);  // the operator's detail
  for (const std::string* text : {&r->stdout_text, &r->stderr_text}) {
    CHECK(text->find("SECRET_NAME_X") == std::string::npos);
    CHECK(text->find(value) == std::string::npos);
  }
  CHECK(ContainersOfTask(task_id).empty());
}

TEST_CASE("run: encryptedEnv needs a configured key, an unusable key stops the worker",
          "[integration]") {
  WorkerKey key;
  const std::string task_id = NewSlugId();
  const std::string payload = R"({"image": "taskenv/busybox:latest", "maxRunTime": 60,
                                  "command": ["true"], "encryptedEnv": [")" +
                              key.Entry(task_id, "SECRET_A", "v") + R"("]})";
  auto no_key = RunPayload(payload, {"--task-id", task_id});
  CHECK(no_key->State() == "failed");
  CHECK(no_key->stdout_text.find("encryptedEnv is not supported on this worker: no "
                                 "dockerWorkerPrivateKey is configured") != std::string::npos);

  WriteFile(key.config, R"({"dockerWorkerPrivateKey": "/nonexistent/worker-key.asc"})");
  auto bad_key = RunPayload(payload, {"--task-id", task_id, "--config", key.config});
  CHECK(bad_key->process.exit_code == 64);
  CHECK(bad_key->stderr_text.find("dockerWorkerPrivateKey") != std::string::npos);
  CHECK(bad_key->stderr_text.find("/nonexistent/worker-key.asc") != std::string::npos);
}

// -------------------------------------------------------------------------------- caches

// A cache root of the test's own, given to `run` through --config.
struct CacheRoot {
  TempDir dir;
  std::string config = dir / "worker.json";
  std::string root = dir / "caches";
  CacheRoot() { WriteFile(config, R"({"cache": {"volumeCachePath": ")" + root + R"("}})"); }
  std::vector<std::string> Args(const std::string& task_id = NewSlugId()) const {
    return {"--config", config, "--scope", "docker-worker:cache:*", "--task-id", task_id};
  }
  // Instance directories of cache `name`.
  std::vector<std::string> Instances(const std::string& name) const {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(root + "/" + name, ec)) {
      if (e.is_directory()) out.push_back(e.path().string());
    }
    return out;
  }
};

TEST_CASE("run: caches: a second task sees the first task's file", "[integration]") {
  CacheRoot caches;
  auto first = RunPayload(R"({"image": "taskenv/busybox:latest", "maxRunTime": 60,
      "cache": {"build": "/home/cache"},
      "command": ["sh", "-c", "test ! -e /home/cache/f && echo $TASK_ID > /home/cache/f"]})",
                          caches.Args());
  CHECK(first->State() == "completed");
  CHECK(first->stdout_text.find("] using cache \"build\" -> /home/cache\n") != std::string::npos);
  auto second = RunPayload(R"({"image": "taskenv/busybox:latest", "maxRunTime": 60,
      "cache": {"build": "/home/cache"}, "command": ["sh", "-c", "printf saw-; cat /home/cache/f"]})",
                           caches.Args());
  CHECK(second->State() == "completed");
  const std::string first_id = json::GetString(first->result, "taskId").value_or("?");
  CHECK(second->stdout_text.find("saw-" + first_id + "\r\n") != std::string::npos);
  CHECK(caches.Instances("build").size() == 1);
}

TEST_CASE("run: caches: concurrent tasks get different instances", "[integration]") {
  CacheRoot caches;
  // Each task marks its instance and waits for the test's go.
  const std::string payload = R"({"image": "taskenv/busybox:latest", "maxRunTime": 60,
      "cache": {"shared": "/c"}, "command": ["sh", "-c",
      "touch /c/marker-$TASK_ID; i=0; while [ ! -e /c/go ]; do i=$((i+1)); [ $i -gt 600 ] && exit 9; sleep 0.05; done; ls /c | grep -c marker"]})";
  Run a, b;
  std::vector<std::unique_ptr<testing::Subprocess>> procs;
  for (Run* r : {&a, &b}) {
    WriteFile(r->dir / "payload.json", payload);
    procs.push_back(std::make_unique<testing::Subprocess>(
        r->Args(r->dir / "payload.json", caches.Args()), std::map<std::string, std::string>{},
        r->dir / "stdout", r->dir / "stderr"));
  }
  // Bounded poll of the two processes: both instances marked.
  std::vector<std::string> instances;
  for (int i = 0; i < 300; ++i) {
    instances = caches.Instances("shared");
    int marked = 0;
    for (const auto& dir : instances) {
      for (const auto& e : std::filesystem::directory_iterator(dir)) {
        marked += e.path().filename().string().rfind("marker-", 0) == 0;
      }
    }
    if (marked == 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  REQUIRE(instances.size() == 2);
  for (const auto& dir : instances) WriteFile(dir + "/go", "");
  for (auto& p : procs) CHECK(p->Wait().exit_code == 0);
  a.Finish();
  b.Finish();
  CHECK(a.State() == "completed");
  CHECK(b.State() == "completed");
  // Each saw only its own marker: one per instance.
  INFO(a.stdout_text);
  CHECK(a.stdout_text.find("=== Task Starting ===\n1\r\n") != std::string::npos);
  CHECK(b.stdout_text.find("=== Task Starting ===\n1\r\n") != std::string::npos);
}

TEST_CASE("run: caches: onExitStatus.purgeCaches empties the cache of a failed run",
          "[integration]") {
  CacheRoot caches;
  auto failed = RunPayload(R"({"image": "taskenv/busybox:latest", "maxRunTime": 60,
      "cache": {"c": "/c"}, "onExitStatus": {"purgeCaches": [3]},
      "command": ["sh", "-c", "echo junk > /c/junk; exit 3"]})",
                           caches.Args());
  CHECK(failed->State() == "failed");
  CHECK(caches.Instances("c").empty());
  auto kept = RunPayload(R"({"image": "taskenv/busybox:latest", "maxRunTime": 60,
      "cache": {"c": "/c"}, "onExitStatus": {"purgeCaches": [3]},
      "command": ["sh", "-c", "test ! -e /c/junk && echo keep > /c/keep; exit 4"]})",
                         caches.Args());
  CHECK(kept->State() == "failed");
  CHECK(json::GetInt(kept->result, "exitCode") == 4);
  auto instances = caches.Instances("c");
  REQUIRE(instances.size() == 1);
  CHECK(ReadFile(instances[0] + "/keep") == "keep\n");
}

TEST_CASE("run: caches: bad names fail with a clear message and create nothing",
          "[integration]") {
  CacheRoot caches;
  struct Case {
    const char* cache;
    const char* message;
  };
  for (Case c : {Case{R"({"a::b": "/c"})",
                      "Invalid key name was provided.  Ensure that the cache name does not "
                      "contain \"::\"."},
                 Case{R"({"../escape": "/c"})",
                      "Invalid cache name \"../escape\": it must not contain \"/\"."},
                 Case{R"({"a:b": "/c"})",
                      "Invalid cache name \"a:b\": it must not contain \":\"."}}) {
    INFO(c.cache);
    auto r = RunPayload(R"({"image": "taskenv/busybox:latest", "maxRunTime": 60, "command": ["true"],
                            "cache": )" + std::string(c.cache) + "}",
                        caches.Args());
    CHECK(r->State() == "failed");
    CHECK(r->stdout_text.find("Docker configuration could not be created.") != std::string::npos);
    CHECK(r->stdout_text.find(c.message) != std::string::npos);
  }
  CHECK_FALSE(std::filesystem::exists(caches.root));
  CHECK_FALSE(std::filesystem::exists(caches.dir / "escape"));
}

}  // namespace
}  // namespace docker_worker
