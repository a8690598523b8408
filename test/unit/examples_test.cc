// The shipped examples stay in step with the schema: hello.json is valid, broken.json shows
// the two errors the demo promises.
#include <catch2/catch.hpp>

#include <sstream>

#include "docker_worker/validate_command.h"

namespace docker_worker {
namespace {

TEST_CASE("examples/hello.json is valid and examples/broken.json is not", "[unit]") {
  std::ostringstream out, err;
  CHECK(ValidateCommand({std::string(DW_SOURCE_DIR) + "/examples/hello.json"}, out, err) == 0);
  CHECK(out.str() == "valid\n");
  std::ostringstream out2, err2;
  CHECK(ValidateCommand({std::string(DW_SOURCE_DIR) + "/examples/broken.json"}, out2, err2) == 1);
  CHECK(out2.str() ==
        "/cmd: unknown property \"cmd\"; did you mean \"command\"?\n"
        "/maxRunTime: expected integer, got string\n");
}

}  // namespace
}  // namespace docker_worker
