// The linked libraries: the static minimal libcurl must still do what the worker needs of it.
#include "docker_worker/library_versions.h"

#include <catch2/catch.hpp>

namespace docker_worker {
namespace {

TEST_CASE("library versions: libcurl has http, https over TLS, unix sockets and gzip", "[unit]") {
  CHECK(CurlCapabilityProblems() == "");
}

TEST_CASE("library versions: the one-line summary names curl's TLS library", "[unit]") {
  std::string v = LinkedLibraryVersions();
  CHECK(v.find("libcurl ") == 0);
  CHECK(v.find("OpenSSL/") != std::string::npos);
  CHECK(v.find("libarchive ") != std::string::npos);
  CHECK(v.find("SQLite ") != std::string::npos);
}

}  // namespace
}  // namespace docker_worker
