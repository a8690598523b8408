// Which registry credentials apply to an image repository, and the X-Registry-Auth value.
#include "docker_worker/registry_auth.h"

#include <catch2/catch.hpp>

#include "docker_worker/base64.h"
#include "docker_worker/json.h"

namespace docker_worker {
namespace {

WorkerConfig WithRegistries(std::map<std::string, RegistryCredentials> registries) {
  WorkerConfig c = WorkerConfig::Defaults();
  c.registries = std::move(registries);
  return c;
}

std::string KeyFor(std::string_view repository, const WorkerConfig& c) {
  RegistryCredentialMatch m = FindRegistryCredentials(repository, c);
  return m.credentials ? m.key : "-";
}

TEST_CASE("registry credentials: host/user wins over host, as upstream", "[unit]") {
  auto c = WithRegistries({{"reg.example.com", {"h", "p1", ""}},
                           {"reg.example.com/team", {"t", "p2", ""}},
                           {"other.example.com/", {"o", "p3", ""}}});
  CHECK(KeyFor("reg.example.com/team/app", c) == "reg.example.com/team");
  CHECK(FindRegistryCredentials("reg.example.com/team/app", c).credentials->username == "t");
  CHECK(FindRegistryCredentials("reg.example.com/team/app", c).registry == "reg.example.com");
  CHECK(KeyFor("reg.example.com/elsewhere/app", c) == "reg.example.com");
  CHECK(KeyFor("other.example.com/any/app", c) == "other.example.com/");
  CHECK(KeyFor("third.example.com/team/app", c) == "-");
}

TEST_CASE("registry credentials: two components use dockerConfig.defaultRegistry", "[unit]") {
  auto c = WithRegistries({{"registry.hub.docker.com/team", {"t", "p", ""}},
                           {"mirror.local/other", {"m", "p", ""}}});
  CHECK(KeyFor("team/app", c) == "registry.hub.docker.com/team");
  CHECK(KeyFor("someone/app", c) == "-");
  c.default_registry = "mirror.local";
  CHECK(KeyFor("other/app", c) == "mirror.local/other");
  CHECK(KeyFor("team/app", c) == "-");
  CHECK(FindRegistryCredentials("other/app", c).registry == "mirror.local");
}

TEST_CASE("registry credentials: one-component names never authenticate", "[unit]") {
  auto c = WithRegistries({{"registry.hub.docker.com", {"u", "p", ""}}});
  CHECK(KeyFor("ubuntu", c) == "-");
  CHECK(FindRegistryCredentials("ubuntu", c).registry.empty());
  CHECK(KeyFor("library/ubuntu", c) == "registry.hub.docker.com");
}

TEST_CASE("registry credentials: a host:port first component is the registry", "[unit]") {
  // Deliberate difference: upstream looked up "registry.hub.docker.com/127.0.0.1:5000".
  auto c = WithRegistries({{"127.0.0.1:5000", {"u", "p", ""}},
                           {"localhost/team", {"l", "p", ""}}});
  CHECK(KeyFor("127.0.0.1:5000/app", c) == "127.0.0.1:5000");
  CHECK(KeyFor("127.0.0.1:5000/team/app", c) == "127.0.0.1:5000");
  CHECK(KeyFor("127.0.0.1:5000/a/b/c", c) == "127.0.0.1:5000");
  CHECK(KeyFor("localhost/team/app", c) == "localhost/team");
  CHECK(KeyFor("localhost/app", c) == "-");  // "app" is the image, not a user
  CHECK(FindRegistryCredentials("127.0.0.1:5000/app", c).registry == "127.0.0.1:5000");
}

TEST_CASE("registry auth header: base64url JSON the engine decodes", "[unit]") {
  RegistryCredentials creds{"alice", "p?>>?>", "a@example.com"};
  std::string header = RegistryAuthHeader(creds, "127.0.0.1:5000");
  CHECK(header.find_first_of("+/") == std::string::npos);
  auto decoded = Base64Decode(header, {Base64::kUrlSafe});
  REQUIRE(decoded);
  auto doc = json::Parse(*decoded);
  REQUIRE(doc.ok());
  CHECK(json::GetString(*doc, "username") == "alice");
  CHECK(json::GetString(*doc, "password") == "p?>>?>");
  CHECK(json::GetString(*doc, "email") == "a@example.com");
  CHECK(json::GetString(*doc, "serveraddress") == "127.0.0.1:5000");
  // The engine reads only the URL-safe alphabet: this password would put '+' or '/' in the
  // standard one.
  CHECK(Base64Encode(*decoded).find_first_of("+/") != std::string::npos);
  std::string no_email = *Base64Decode(RegistryAuthHeader({"u", "p", ""}, "h"), {Base64::kUrlSafe});
  CHECK(no_email.find("email") == std::string::npos);
}

TEST_CASE("worker config: registries, defaultRegistry and pullIdleTimeout are read", "[unit]") {
  CHECK(WorkerConfig::Defaults().pull_idle_timeout_ms == 60000);
  CHECK(WorkerConfig::Defaults().default_registry == "registry.hub.docker.com");
  auto doc = json::Parse(R"({"dockerConfig": {"defaultRegistry": "m.example.com",
                                               "pullIdleTimeout": 2000},
                             "registries": {"m.example.com/team": {"username": "u",
                                                                    "password": "p"}}})");
  REQUIRE(doc.ok());
  auto c = WorkerConfig::FromJson(*doc);
  REQUIRE(c.ok());
  CHECK(c->pull_idle_timeout_ms == 2000);
  CHECK(KeyFor("team/app", *c) == "m.example.com/team");
  auto bad = json::Parse(R"({"registries": {"h": {"username": "u", "pasword": "leak-me"}}})");
  REQUIRE(bad.ok());
  auto refused = WorkerConfig::FromJson(*bad);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().message().find("/registries/h") != std::string::npos);
  CHECK(refused.status().message().find("leak-me") == std::string::npos);
}

}  // namespace
}  // namespace docker_worker
