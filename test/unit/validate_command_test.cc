#include "docker_worker/validate_command.h"

#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace docker_worker {
namespace {

namespace fs = std::filesystem;

const fs::path kPayloads = fs::path(DW_SOURCE_DIR) / "test/data/payloads";

struct Run {
  int code;
  std::string out;
  std::string err;
};

Run Validate(const std::vector<std::string>& args, const std::string& stdin_text = "") {
  std::istringstream in(stdin_text);
  std::ostringstream out, err;
  int code = ValidateCommand(args, in, out, err);
  return {code, out.str(), err.str()};
}

// A file in a fresh temporary directory, removed with it.
class TempFile {
 public:
  explicit TempFile(const std::string& content) {
    dir_ = fs::temp_directory_path() /
           ("dw-validate-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    fs::create_directories(dir_);
    path_ = dir_ / "doc.json";
    std::ofstream(path_) << content;
  }
  ~TempFile() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string path() const { return path_.string(); }

 private:
  static inline int counter_ = 0;
  fs::path dir_;
  fs::path path_;
};

TEST_CASE("validate: a valid payload prints valid and exits 0", "[validate]") {
  Run r = Validate({(kPayloads / "valid/string-image.json").string()});
  CHECK(r.code == 0);
  CHECK(r.out == "valid\n");
  CHECK(r.err.empty());
}

TEST_CASE("validate: a valid task definition prints valid and exits 0", "[validate]") {
  Run r = Validate({(kPayloads / "valid/task-definition.json").string()});
  CHECK(r.code == 0);
  CHECK(r.out == "valid\n");
}

TEST_CASE("validate: an invalid payload prints every error and exits 1", "[validate]") {
  Run r = Validate({(kPayloads / "invalid/typo-cmd.json").string()});
  CHECK(r.code == 1);
  CHECK(r.out == "/cmd: unknown property \"cmd\"; did you mean \"command\"?\n");
  CHECK(r.err.empty());

  TempFile f(R"({"maxRunTime": "soon", "image": {"type": "indexed-image", "path": "p"}})");
  r = Validate({f.path()});
  CHECK(r.code == 1);
  CHECK(r.out ==
        "/image: missing required property \"namespace\"\n"
        "/maxRunTime: expected integer, got string\n");
}

TEST_CASE("validate: a task whose artifact outlives it exits 1", "[validate]") {
  Run r = Validate({(kPayloads / "invalid/task-artifact-expires-after-task.json").string()});
  CHECK(r.code == 1);
  CHECK(r.out ==
        "/payload/artifacts/public~1late.txt/expires: expires 2030-01-01T00:00:00.000Z is after "
        "the task's expires 2029-01-01T00:00:00.000Z\n");
}

TEST_CASE("validate: a missing file exits 64 with one line naming it", "[validate]") {
  const std::string missing = "/nonexistent/dir/payload.json";
  Run r = Validate({missing});
  CHECK(r.code == 64);
  CHECK(r.out.empty());
  CHECK_THAT(r.err, Catch::Contains(missing));
  CHECK_THAT(r.err, Catch::Contains("No such file"));
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
}

TEST_CASE("validate: a directory exits 64", "[validate]") {
  Run r = Validate({fs::temp_directory_path().string()});
  CHECK(r.code == 64);
  CHECK_THAT(r.err, Catch::Contains(fs::temp_directory_path().string()));
}

TEST_CASE("validate: a file that is not JSON exits 64 with the offset", "[validate]") {
  TempFile f("{\"image\": \"busybox\",\n \"maxRunTime\": }");
  Run r = Validate({f.path()});
  CHECK(r.code == 64);
  CHECK(r.out.empty());
  CHECK_THAT(r.err, Catch::Contains(f.path()));
  CHECK_THAT(r.err, Catch::Contains("offset 36"));
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
}

TEST_CASE("validate: wrong usage exits 64 with a usage line", "[validate]") {
  for (const auto& args :
       std::vector<std::vector<std::string>>{{}, {"a.json", "b.json"}, {"--strict", "a.json"}}) {
    Run r = Validate(args);
    INFO(args.size());
    CHECK(r.code == 64);
    CHECK(r.out.empty());
    CHECK_THAT(r.err, Catch::Contains("usage: docker-worker validate FILE"));
  }
}

TEST_CASE("validate: --help prints the usage and exits 0", "[validate]") {
  Run r = Validate({"--help"});
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::StartsWith("usage: docker-worker validate FILE"));
}

TEST_CASE("validate: - reads standard input", "[validate]") {
  Run ok = Validate({"-"}, R"({"image": "busybox", "maxRunTime": 3600.0})");
  CHECK(ok.code == 0);
  CHECK(ok.out == "valid\n");

  Run bad = Validate({"-"}, R"({"payload": {"image": "busybox"}})");
  CHECK(bad.code == 1);
  CHECK(bad.out == "/payload: missing required property \"maxRunTime\"\n");

  Run broken = Validate({"-"}, "not json");
  CHECK(broken.code == 64);
  CHECK_THAT(broken.err, Catch::Contains("standard input"));
  CHECK_THAT(broken.err, Catch::Contains("offset 1"));
}

}  // namespace
}  // namespace docker_worker
