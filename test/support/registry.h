// Docker registries for tests, on 127.0.0.1 (a loopback registry is insecure by default for the
// engine, so plain HTTP works).
//
// TestRegistry runs Debian's `docker-registry` (distribution 2.8) with htpasswd basic auth
// (bcrypt, from `htpasswd -B`): the constructor writes a config and the password file into a
// temp dir, starts `docker-registry serve CONFIG` on a free port and waits (bounded polling)
// until it answers; it fails the test (Catch REQUIRE) if that does not happen. Push() seeds it
// from a local image through the Engine API. The destructor removes from the engine every image
// name pushed (the same names tests pull) and kills the registry.
//
// StalledRegistry is a fake registry that answers the API version check (GET /v2/) and then
// holds every other request (manifests, blobs) unanswered until it is destroyed.
//
// Neither is thread-safe; one per test.
#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "docker_worker/status.h"
#include "fakes/temp_dir.h"
#include "support/subprocess.h"
#include "support/test_http_server.h"

namespace docker_worker::testing {

class TestRegistry {
 public:
  // `users`: user name -> password.
  explicit TestRegistry(const std::map<std::string, std::string>& users);
  ~TestRegistry();
  TestRegistry(const TestRegistry&) = delete;
  TestRegistry& operator=(const TestRegistry&) = delete;

  std::string host() const;  // "127.0.0.1:PORT"
  // Tags the local image `source` as host()/`repository`:`tag`, pushes it with the credentials
  // and removes that local name again, so a pull of it has to go to the registry.
  Status Push(const std::string& source, const std::string& repository, const std::string& tag,
              const std::string& user, const std::string& password);

 private:
  TempDir dir_;
  int port_ = 0;
  std::unique_ptr<Subprocess> process_;
  std::vector<std::string> pushed_;  // host()/repository:tag
};

class StalledRegistry {
 public:
  StalledRegistry();
  ~StalledRegistry();
  StalledRegistry(const StalledRegistry&) = delete;
  StalledRegistry& operator=(const StalledRegistry&) = delete;

  std::string host() const;  // "127.0.0.1:PORT"
  std::vector<TestRequest> requests() const;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
  std::unique_ptr<TestHttpServer> server_;  // destroyed after the gate opened
};

}  // namespace docker_worker::testing
