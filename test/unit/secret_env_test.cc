// Secret env delivery: the launcher argv and the archive placed in the container.
#include "docker_worker/secret_env.h"

#include <archive.h>
#include <archive_entry.h>

#include <catch2/catch.hpp>
#include <map>

#include "docker_worker/env_exec_binary.h"

namespace docker_worker {
namespace {

using Strings = std::vector<std::string>;

struct Entry {
  unsigned type = 0;
  unsigned perm = 0;
  int64_t uid = -1;
  std::string content;
};

std::map<std::string, Entry> ReadTar(const std::string& bytes) {
  std::map<std::string, Entry> out;
  archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  REQUIRE(archive_read_open_memory(a, bytes.data(), bytes.size()) == ARCHIVE_OK);
  archive_entry* e = nullptr;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    Entry entry{archive_entry_filetype(e), archive_entry_perm(e), archive_entry_uid(e), {}};
    char buf[8192];
    la_ssize_t n;
    while ((n = archive_read_data(a, buf, sizeof buf)) > 0) entry.content.append(buf, n);
    out[archive_entry_pathname(e)] = entry;
  }
  archive_read_free(a);
  return out;
}

TEST_CASE("secret env: the launcher runs what Docker would have run", "[unit]") {
  const EnvVars secrets = {{"A", "1"}};
  struct Case {
    Strings entrypoint, cmd, command, expected;
  };
  const std::vector<Case> cases = {
      {{}, {"/bin/sh"}, {"echo", "hi"}, {"echo", "hi"}},       // command replaces CMD
      {{}, {"/bin/sh", "-c", "x"}, {}, {"/bin/sh", "-c", "x"}},  // no command: image CMD
      {{"/bin/sh", "-c"}, {"default"}, {"echo $A"}, {"/bin/sh", "-c", "echo $A"}},
      {{"/entry"}, {"a", "b"}, {}, {"/entry", "a", "b"}},
      {{"/entry"}, {}, {}, {"/entry"}},
  };
  for (const auto& c : cases) {
    auto launch = PrepareSecretEnv(secrets, ImageInfo{"sha256:x", {}, 0, c.entrypoint, c.cmd},
                                   c.command);
    REQUIRE(launch.ok());
    CHECK(launch->entrypoint ==
          Strings{"/.taskcluster-secret-env/env-exec", "/.taskcluster-secret-env/env"});
    CHECK(launch->cmd == c.expected);
  }
}

TEST_CASE("secret env: no command anywhere is Docker's refusal", "[unit]") {
  auto launch = PrepareSecretEnv({{"A", "1"}}, ImageInfo{}, {});
  REQUIRE_FALSE(launch.ok());
  CHECK(launch.status().message() == "No command specified");
}

TEST_CASE("secret env: the archive holds the launcher and the variables, nothing else",
          "[unit]") {
  auto launch = PrepareSecretEnv({{"FIRST", "one"}, {"SECOND", "two words = x"}, {"EMPTY", ""}},
                                 ImageInfo{"sha256:x", {}, 0, {}, {"sh"}}, {});
  REQUIRE(launch.ok());
  auto entries = ReadTar(launch->archive);
  REQUIRE(entries.size() == 3);
  const Entry& dir = entries.at(".taskcluster-secret-env/");
  CHECK(dir.type == AE_IFDIR);
  CHECK(dir.perm == 0777);  // any image user may remove the files
  const Entry& exec = entries.at(".taskcluster-secret-env/env-exec");
  CHECK(exec.type == AE_IFREG);
  CHECK(exec.perm == 0555);
  CHECK(exec.uid == 0);
  CHECK(exec.content == std::string(EnvExecBinary()));
  CHECK(exec.content.substr(0, 4) == "\x7f" "ELF");
  const Entry& env = entries.at(".taskcluster-secret-env/env");
  CHECK(env.perm == 0444);
  CHECK(env.content == std::string("FIRST=one\0SECOND=two words = x\0EMPTY=\0", 38));
}

TEST_CASE("secret env: malformed variables are refused without showing the value", "[unit]") {
  const ImageInfo image{"sha256:x", {}, 0, {}, {"sh"}};
  for (const EnvVars& bad : {EnvVars{{"A=B", "hidden-value"}}, EnvVars{{"", "hidden-value"}},
                             EnvVars{{"A", std::string("hidden\0value", 12)}}, EnvVars{}}) {
    auto launch = PrepareSecretEnv(bad, image, {});
    REQUIRE_FALSE(launch.ok());
    CHECK(launch.status().message().find("hidden") == std::string::npos);
  }
}

}  // namespace
}  // namespace docker_worker
