// json::Parse on hostile input: deep nesting, trailing garbage, integral doubles.
#include "docker_worker/json.h"

#include <catch2/catch.hpp>

namespace docker_worker {
namespace {

TEST_CASE("json: deep nesting is parsed without recursion", "[unit]") {
  std::string deep(200000, '[');
  deep += std::string(200000, ']');
  auto doc = json::Parse(deep);  // would overflow the stack with a recursive parser
  CHECK(doc.ok());
}

TEST_CASE("json: trailing content and bad input are errors with an offset", "[unit]") {
  auto doc = json::Parse("{} x");
  REQUIRE_FALSE(doc.ok());
  CHECK(doc.status().message().find("offset") != std::string::npos);
  CHECK_FALSE(json::Parse("").ok());
  CHECK_FALSE(json::Parse("{\"a\":").ok());
}

TEST_CASE("json: integral doubles become integers, like JavaScript", "[unit]") {
  auto doc = json::Parse(R"({"a": 3600.0, "b": 1.5, "c": [2.0]})");
  REQUIRE(doc.ok());
  CHECK(json::GetInt(*doc, "a") == 3600);
  CHECK_FALSE(json::GetInt(*doc, "b"));
  CHECK((*doc)["c"][0].IsInt64());
  CHECK(std::string(json::TypeName((*doc)["b"])) == "number");
}

}  // namespace
}  // namespace docker_worker
