// ParseImageReference: Docker's reference grammar, as far as the worker needs it.
#include <catch2/catch.hpp>

#include "docker_worker/image_puller.h"

namespace docker_worker {
namespace {

std::string Parsed(const std::string& name) {
  auto ref = ParseImageReference(name);
  if (!ref.ok()) return "error: " + ref.status().message();
  return ref->repository + " | " + ref->tag + " | " + ref->digest;
}

TEST_CASE("image references: repository, tag (default latest) and digest", "[unit]") {
  CHECK(Parsed("ubuntu") == "ubuntu | latest | ");
  CHECK(Parsed("team/app:1.0") == "team/app | 1.0 | ");
  CHECK(Parsed("127.0.0.1:5000/team/app") == "127.0.0.1:5000/team/app | latest | ");
  CHECK(Parsed("127.0.0.1:5000/team/app:v2") == "127.0.0.1:5000/team/app | v2 | ");
  CHECK(Parsed("Registry.Example.com/app@sha256:abc") == "Registry.Example.com/app |  | sha256:abc");
  CHECK(ParseImageReference("team/app").value().ToString() == "team/app:latest");
  CHECK(ParseImageReference("a/b@sha256:0f").value().ToString() == "a/b@sha256:0f");
}

TEST_CASE("image references: bad names are refused, naming the problem", "[unit]") {
  CHECK(Parsed("") == "error: invalid image name \"\": empty");
  CHECK(Parsed("Team/App:1") ==
        "error: invalid image name \"Team/App:1\": repository names must be lower case");
  CHECK(Parsed("app:") == "error: invalid image name \"app:\": empty tag");
  CHECK(Parsed("a//b") == "error: invalid image name \"a//b\": malformed repository path");
  CHECK(Parsed("app name") ==
        "error: invalid image name \"app name\": character ' ' is not allowed");
  CHECK(Parsed("app@latest") ==
        "error: invalid image name \"app@latest\": digest must be algorithm:hex");
}

}  // namespace
}  // namespace docker_worker
