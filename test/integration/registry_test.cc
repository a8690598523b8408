// Private registries and stalled pulls, end to end: `docker-worker run` with a worker config,
// the real engine and a real registry (Debian's docker-registry with htpasswd basic auth) that
// each test starts on its own port, seeded from taskenv/busybox.
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>

#include "docker_worker/engine_api.h"
#include "docker_worker/http_client.h"
#include "docker_worker/json.h"
#include "docker_worker/slugid.h"
#include "fakes/temp_dir.h"
#include "support/registry.h"
#include "support/subprocess.h"

namespace docker_worker {
namespace {

using testing::ReadFile;
using testing::TempDir;
using testing::WriteFile;

const char* kUser = "robot";
const char* kPassword = "pw-Zq7xK2-registry-secret";

// One `docker-worker run` of a task on `image` with worker config `config_json`.
struct ImageRun {
  TempDir config_dir;  // holds the password: not searched for leaks
  TempDir dir;         // everything the run printed or wrote
  int exit_code = -1;
  std::string log;     // the task log, from stdout
  std::string state;
  double seconds = 0;

  ImageRun(const std::string& image, const std::string& config_json,
           const std::vector<std::string>& scopes) {
    WriteFile(config_dir / "config.json", config_json);
    WriteFile(config_dir / "payload.json",
              R"({"image": ")" + image +
                  R"(", "maxRunTime": 60, "command": ["sh", "-c", "echo private-image-ran"]})");
    std::vector<std::string> args = {testing::WorkerBinary(), "run", config_dir / "payload.json",
                                     "--output", dir / "out", "--task-id", NewSlugId(),
                                     "--config", config_dir / "config.json"};
    for (const auto& s : scopes) {
      args.push_back("--scope");
      args.push_back(s);
    }
    auto start = std::chrono::steady_clock::now();
    exit_code = testing::RunProcess(args, {}, dir / "stdout", dir / "stderr").exit_code;
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    log = ReadFile(dir / "stdout");
    auto result = json::Parse(ReadFile(dir / "out/result.json"));
    if (result.ok()) state = json::GetString(*result, "state").value_or("");
    INFO(ReadFile(dir / "stderr"));
  }

  bool Logged(const std::string& text) const { return log.find(text) != std::string::npos; }

  // Files of the run (task log, diagnostics, result, backing log, artifacts) holding `secret`.
  std::vector<std::string> FilesContaining(const std::string& secret) const {
    std::vector<std::string> found;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(dir.path())) {
      if (!entry.is_regular_file()) continue;
      if (ReadFile(entry.path()).find(secret) != std::string::npos) found.push_back(entry.path());
    }
    return found;
  }
};

std::string RegistriesConfig(const std::string& key, const std::string& password) {
  // Fast retries, so a wrongly retried error shows as a "retrying" line rather than a slow test.
  return R"({"dockerConfig": {"maxAttempts": 3, "delayFactor": 100},
             "registries": {")" + key + R"(": {"username": ")" + kUser + R"(", "password": ")" +
         password + R"("}}})";
}

// The engine's view of an image (raw inspect JSON), "" when it has none by that name.
std::string InspectRaw(const std::string& name) {
  HttpClient engine(EngineApi::SocketFromEnvironment());
  HttpRequest request;
  request.url = "http://docker/v1.41/images/" + name + "/json";
  auto response = engine.Send(request);
  return response.ok() && response->ok() ? response->body : "";
}

// A registry with basic auth holding host()/robot/busybox:v1.
struct PrivateRegistry {
  testing::TestRegistry registry{{{kUser, kPassword}}};
  PrivateRegistry() {
    Status pushed = registry.Push("taskenv/busybox:latest", "robot/busybox", "v1", kUser, kPassword);
    INFO(pushed.message());
    REQUIRE(pushed.ok());
    REQUIRE(InspectRaw(image()).empty());
  }
  std::string image(const std::string& tag = "v1") const {
    return registry.host() + "/robot/busybox:" + tag;
  }
  std::string scope(const std::string& tag = "v1") const {
    return "docker-worker:image:" + image(tag);
  }
};

TEST_CASE("registry: a private image is pulled with the worker's credentials and the scope",
          "[integration]") {
  PrivateRegistry p;
  ImageRun run(p.image(), RegistriesConfig(p.registry.host() + "/robot", kPassword), {p.scope()});
  CHECK(run.exit_code == 0);
  CHECK(run.state == "completed");
  CHECK(run.Logged("Pulling docker image " + p.image() + " with this worker's credentials for " +
                   p.registry.host()));
  CHECK(run.Logged("private-image-ran"));
  CHECK(run.FilesContaining(kPassword).empty());
  std::string inspect = InspectRaw(p.image());
  CHECK_FALSE(inspect.empty());
  CHECK(inspect.find(kPassword) == std::string::npos);
}

TEST_CASE("registry: without the image scope the task fails with upstream's message",
          "[integration]") {
  PrivateRegistry p;
  ImageRun run(p.image(), RegistriesConfig(p.registry.host(), kPassword),
               {"docker-worker:image:" + p.registry.host() + "/robot/other:v1"});
  CHECK(run.exit_code == 1);
  CHECK(run.state == "failed");
  CHECK(run.Logged("[taskcluster:error] Pulling docker image has failed."));
  CHECK(run.Logged("[taskcluster:error] Error: Not authorized to use {\"name\":\"" + p.image() +
                   "\",\"type\":\"docker-image\"}.  Ensure that the task scopes are correctly "
                   "defined in the task definition"));
  CHECK_FALSE(run.Logged("Pulling docker image " + p.image()));
  CHECK(InspectRaw(p.image()).empty());
  CHECK(run.FilesContaining(kPassword).empty());
}

TEST_CASE("registry: refused credentials fail at once with a message naming the registry",
          "[integration]") {
  PrivateRegistry p;
  const std::string wrong = "wrong-pw-Yv83Lq";
  ImageRun run(p.image(), RegistriesConfig(p.registry.host() + "/robot", wrong), {p.scope()});
  CHECK(run.state == "failed");
  CHECK(run.Logged("Error: the registry " + p.registry.host() +
                   " refused the credentials this worker has for it (worker config "
                   "\"registries\", key \"" + p.registry.host() + "/robot\") when pulling " +
                   p.image()));
  CHECK_FALSE(run.Logged("retrying"));
  CHECK(run.FilesContaining(wrong).empty());
  CHECK(run.FilesContaining(kPassword).empty());
}

TEST_CASE("registry: a private image without configured credentials gets a clear message",
          "[integration]") {
  PrivateRegistry p;
  ImageRun run(p.image(), R"({"dockerConfig": {"maxAttempts": 3, "delayFactor": 100}})", {});
  CHECK(run.state == "failed");
  CHECK(run.Logged("Error: the registry " + p.registry.host() + " refused to serve " + p.image() +
                   " without credentials"));
  CHECK(run.Logged("no basic auth credentials"));  // the engine's own words follow
  CHECK_FALSE(run.Logged("retrying"));
}

TEST_CASE("registry: a missing tag fails at once", "[integration]") {
  PrivateRegistry p;
  ImageRun run(p.image("no-such-tag"), RegistriesConfig(p.registry.host(), kPassword),
               {p.scope("no-such-tag")});
  CHECK(run.state == "failed");
  CHECK(run.Logged("[taskcluster:error] Pulling docker image has failed."));
  CHECK(run.Logged("manifest unknown"));
  CHECK_FALSE(run.Logged("retrying"));
}

TEST_CASE("registry: a stalled pull fails within the idle timeout, and is retried",
          "[integration]") {
  testing::StalledRegistry stalled;
  const std::string image = stalled.host() + "/team/app:1";
  ImageRun run(image,
               R"({"dockerConfig": {"pullIdleTimeout": 1000, "maxAttempts": 2,
                                    "delayFactor": 100}})",
               {});
  CHECK(run.state == "failed");
  CHECK(run.Logged("Pull of " + image +
                   " failed (no pull progress from the Docker engine for 1 s (the registry "
                   "stalled?)); retrying in"));
  CHECK(run.Logged("[taskcluster:error] Error: no pull progress from the Docker engine for 1 s"));
  int manifest_requests = 0;
  for (const auto& r : stalled.requests()) {
    if (r.uri.find("/manifests/") != std::string::npos) ++manifest_requests;
  }
  CHECK(manifest_requests >= 2);  // it really stalled, once per attempt
  // Two attempts of ~1 s (libcurl measures idleness in whole seconds) and a 0.1 s backoff.
  CHECK(run.seconds < 15);
}

}  // namespace
}  // namespace docker_worker
