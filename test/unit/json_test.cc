// json::Parse on hostile input: deep nesting, trailing garbage, integral doubles.
#include "docker_worker/json.h"

#include <pthread.h>

#include <catch2/catch.hpp>

#include <functional>

#include "docker_worker/schema_validator.h"
#include "docker_worker/task_definition.h"

namespace docker_worker {
namespace {

// Runs `fn` on a thread with a 128 KiB stack: anything recursing once per nesting level of a
// 200000-deep document crashes the test binary instead of passing on a roomy main stack.
void OnSmallStack(const std::function<void()>& fn) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 128 * 1024);
  pthread_t thread;
  auto trampoline = [](void* arg) -> void* {
    (*static_cast<const std::function<void()>*>(arg))();
    return nullptr;
  };
  REQUIRE(pthread_create(&thread, &attr, trampoline, const_cast<std::function<void()>*>(&fn)) == 0);
  pthread_join(thread, nullptr);
  pthread_attr_destroy(&attr);
}

std::string Deep(int levels) { return std::string(levels, '[') + std::string(levels, ']'); }

TEST_CASE("json: deep nesting is parsed without recursion", "[unit]") {
  bool ok = false;
  OnSmallStack([&] { ok = json::Parse(Deep(200000)).ok(); });  // a recursive pass would crash
  CHECK(ok);
}

TEST_CASE("json: depth of a parsed value, and consumers that recurse refuse deep documents",
          "[unit]") {
  auto shallow = json::Parse(R"({"a": [[1]]})");
  REQUIRE(shallow.ok());
  CHECK(json::DepthWithin(*shallow, 3));
  CHECK_FALSE(json::DepthWithin(*shallow, 2));
  CHECK(json::DepthWithin(*json::Parse("1"), 0));

  auto deep = json::Parse(R"({"payload": )" + Deep(200000) + "}");
  REQUIRE(deep.ok());
  auto schema = SchemaValidator::FromText(R"({"type": "object"})");
  REQUIRE(schema.ok());
  OnSmallStack([&] {
    CHECK_FALSE(json::DepthWithin(*deep, json::kMaxDocumentDepth));
    auto errors = schema->Validate(*deep);
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].message == "the document nests deeper than 100 levels");
    auto task = TaskDefinition::FromJson(std::move(*deep), {"p", "w", SystemClock().Now()});
    REQUIRE_FALSE(task.ok());
    CHECK(task.status().message() == "the task definition nests deeper than 100 levels");
  });
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
