#include "support/registry.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <thread>

#include "docker_worker/engine_api.h"
#include "docker_worker/http_client.h"
#include "docker_worker/registry_auth.h"

namespace docker_worker::testing {
namespace {

// A port nothing listens on right now (the kernel's choice for an ephemeral bind).
int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  ::close(fd);
  REQUIRE(ok);
  return ntohs(addr.sin_port);
}

HttpClient& Engine() {
  static HttpClient client(EngineApi::SocketFromEnvironment());
  return client;
}

// One Engine API call; the stream's {"error": ...} lines count as failures too.
Status EngineCall(const std::string& method, const std::string& path,
                  const std::string& registry_auth = "") {
  HttpRequest request;
  request.method = method;
  request.url = "http://docker/v1.41" + path;
  request.total_timeout = std::chrono::seconds(60);
  if (!registry_auth.empty()) request.headers.Set("X-Registry-Auth", registry_auth);
  auto response = Engine().Send(request);
  if (!response.ok()) return response.status();
  if (!response->ok() || response->body.find("\"error\"") != std::string::npos) {
    return Status(Code::kInternal, method + " " + path + ": HTTP " +
                                       std::to_string(response->status) + " " + response->body);
  }
  return Status::Ok();
}

// Bounded polling of an external process: true once the registry at `host` answers (401, since
// it wants basic auth), false if it exits first or is not up within 20 s.
bool WaitUntilServing(const std::string& host, Subprocess& process) {
  HttpClient http;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < give_up && process.Running()) {
    HttpRequest ping;
    ping.url = "http://" + host + "/v2/";
    ping.connect_timeout = std::chrono::seconds(2);
    ping.total_timeout = std::chrono::seconds(2);
    auto response = http.Send(ping);
    if (response.ok() && response->status == 401) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

}  // namespace

TestRegistry::TestRegistry(const std::map<std::string, std::string>& users) {
  const std::string registry = FindProgram("docker-registry");
  const std::string htpasswd = FindProgram("htpasswd");
  INFO("needs Debian's docker-registry and apache2-utils (scripts/setup installs them)");
  REQUIRE(!registry.empty());
  REQUIRE(!htpasswd.empty());
  std::string passwords;
  for (const auto& [user, password] : users) {
    auto r = RunProcess({htpasswd, "-Bbn", user, password}, {}, dir_ / "entry", dir_ / "err");
    REQUIRE(r.exit_code == 0);
    passwords += ReadFile(dir_ / "entry");
  }
  WriteFile(dir_ / "htpasswd", passwords);
  std::remove((dir_ / "entry").c_str());
  // Another process may take the free port before the registry binds it: then it exits, and
  // the next attempt takes another port.
  bool up = false;
  for (int attempt = 0; attempt < 3 && !up; ++attempt) {
    port_ = FreePort();
    WriteFile(dir_ / "config.yml",
              "version: 0.1\n"
              "log:\n  level: error\n"
              "storage:\n  filesystem:\n    rootdirectory: " + (dir_ / "data") + "\n" +
              "http:\n  addr: " + host() + "\n  secret: test-only\n" +
              "auth:\n  htpasswd:\n    realm: test\n    path: " + (dir_ / "htpasswd") + "\n");
    process_ = std::make_unique<Subprocess>(
        std::vector<std::string>{registry, "serve", dir_ / "config.yml"},
        std::map<std::string, std::string>{}, dir_ / "registry.out", dir_ / "registry.err");
    up = WaitUntilServing(host(), *process_);
  }
  INFO("docker-registry stderr: " << ReadFile(dir_ / "registry.err"));
  REQUIRE(up);
}

TestRegistry::~TestRegistry() {
  for (const std::string& name : pushed_) EngineCall("DELETE", "/images/" + name);
  process_.reset();  // SIGKILL and reap
}

std::string TestRegistry::host() const { return "127.0.0.1:" + std::to_string(port_); }

Status TestRegistry::Push(const std::string& source, const std::string& repository,
                          const std::string& tag, const std::string& user,
                          const std::string& password) {
  const std::string target = host() + "/" + repository;
  pushed_.push_back(target + ":" + tag);
  Status s = EngineCall("POST", "/images/" + source + "/tag?repo=" + UrlEscape(target) +
                                    "&tag=" + UrlEscape(tag));
  if (s.ok()) {
    s = EngineCall("POST", "/images/" + target + "/push?tag=" + UrlEscape(tag),
                   RegistryAuthHeader({user, password, ""}, host()));
  }
  Status removed = EngineCall("DELETE", "/images/" + target + ":" + tag);
  return s.ok() ? removed : s;
}

StalledRegistry::StalledRegistry() {
  server_ = std::make_unique<TestHttpServer>([this](const TestRequest& r) {
    if (r.uri == "/v2/") {
      return TestResponse{200, {{"Docker-Distribution-API-Version", "registry/2.0"}}, "{}"};
    }
    std::unique_lock lock(mu_);
    // Held until the destructor opens the gate (the bound only guards against a bug there).
    cv_.wait_for(lock, std::chrono::minutes(2), [&] { return released_; });
    return TestResponse{503, {}, ""};
  });
}

StalledRegistry::~StalledRegistry() {
  {
    std::lock_guard lock(mu_);
    released_ = true;
  }
  cv_.notify_all();
  server_.reset();
}

std::string StalledRegistry::host() const { return "127.0.0.1:" + std::to_string(server_->port()); }

std::vector<TestRequest> StalledRegistry::requests() const { return server_->requests(); }

}  // namespace docker_worker::testing
