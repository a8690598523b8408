#include "docker_worker/schema_validator.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "docker_worker/embedded_schemas.h"
#include "docker_worker/json.h"

namespace docker_worker {
namespace {

json::Document ParseOrDie(std::string_view text) {
  auto doc = json::Parse(text);
  INFO(text);
  REQUIRE(doc.ok());
  return std::move(doc).value();
}

SchemaValidator Compile(std::string_view schema_text) {
  auto v = SchemaValidator::FromText(schema_text);
  INFO((v.ok() ? "" : v.status().message()));
  REQUIRE(v.ok());
  return *v;
}

// Validation errors of `doc_text`, formatted one per element.
std::vector<std::string> Errors(const SchemaValidator& v, std::string_view doc_text) {
  std::vector<std::string> lines;
  for (const auto& e : v.Validate(ParseOrDie(doc_text))) lines.push_back(FormatValidationError(e));
  return lines;
}

using Lines = std::vector<std::string>;

const SchemaValidator& ConfigSchema() {
  static const SchemaValidator v = [] {
    auto r = SchemaValidator::FromEmbedded("config");
    REQUIRE(r.ok());
    return *r;
  }();
  return v;
}

TEST_CASE("the embedded payload and config schemas compile", "[schema]") {
  auto payload = SchemaValidator::FromEmbedded("payload");
  INFO((payload.ok() ? "" : payload.status().message()));
  CHECK(payload.ok());
  auto config = SchemaValidator::FromEmbedded("config");
  INFO((config.ok() ? "" : config.status().message()));
  CHECK(config.ok());
}

TEST_CASE("an unknown embedded schema is NotFound", "[schema]") {
  auto v = SchemaValidator::FromEmbedded("no-such-schema");
  REQUIRE_FALSE(v.ok());
  CHECK(v.status().code() == Code::kNotFound);
  CHECK_THAT(v.status().message(), Catch::Contains("no-such-schema"));
}

TEST_CASE("schema text that is not JSON or not a usable schema is an Internal error", "[schema]") {
  auto not_json = SchemaValidator::FromText("{\"type\": ");
  REQUIRE_FALSE(not_json.ok());
  CHECK(not_json.status().code() == Code::kInternal);

  auto not_object = SchemaValidator::FromText("[1, 2]");
  REQUIRE_FALSE(not_object.ok());
  CHECK(not_object.status().code() == Code::kInternal);

  auto bad_keyword = SchemaValidator::FromText(R"({"type": "string", "minLength": "three"})");
  REQUIRE_FALSE(bad_keyword.ok());
  CHECK(bad_keyword.status().code() == Code::kInternal);
  CHECK_THAT(bad_keyword.status().message(), Catch::Contains("minLength"));

  auto remote_ref = SchemaValidator::FromText(R"({"$ref": "https://example.com/other.json#/x"})");
  REQUIRE_FALSE(remote_ref.ok());
  CHECK(remote_ref.status().code() == Code::kInternal);
}

TEST_CASE("FormatValidationError writes the root as /", "[schema]") {
  CHECK(FormatValidationError({"", "missing required property \"image\""}) ==
        "/: missing required property \"image\"");
  CHECK(FormatValidationError({"/maxRunTime", "must be >= 1"}) == "/maxRunTime: must be >= 1");
}

TEST_CASE("JsonPointerAppend escapes ~ and /", "[schema]") {
  CHECK(JsonPointerAppend("", "artifacts") == "/artifacts");
  CHECK(JsonPointerAppend("/artifacts", "public/x") == "/artifacts/public~1x");
  CHECK(JsonPointerAppend("/a", "~tilde") == "/a/~0tilde");
  CHECK(JsonPointerAppend("/a", "") == "/a/");
}

TEST_CASE("SortAndDeduplicate orders by path then message and drops repeats", "[schema]") {
  std::vector<ValidationError> errors = {{"/b", "x"}, {"", "z"},   {"/a", "y"},
                                         {"/a", "b"}, {"/b", "x"}, {"", "z"}};
  SortAndDeduplicate(errors);
  std::vector<ValidationError> want = {{"", "z"}, {"/a", "b"}, {"/a", "y"}, {"/b", "x"}};
  CHECK(errors == want);
}

TEST_CASE("type errors name the expected and the actual type", "[schema]") {
  auto v = Compile(R"({
    "type": "object",
    "properties": {
      "n": {"type": "integer"},
      "x": {"type": "number"},
      "s": {"type": ["string", "null"]},
      "t": {"type": ["string", "integer", "boolean"]},
      "list": {"type": "array", "items": {"$ref": "#/definitions/flag"}}
    },
    "definitions": {"flag": {"type": "boolean"}}
  })");
  CHECK(Errors(v, R"({"n": 1, "x": 2, "s": null, "t": true, "list": [true]})").empty());
  CHECK(Errors(v, R"({"n": "1"})") == Lines{"/n: expected integer, got string"});
  CHECK(Errors(v, R"({"n": 1.25})") == Lines{"/n: expected integer, got number"});
  CHECK(Errors(v, R"({"n": 7.0})").empty());  // json::Parse makes 7.0 an integer
  CHECK(Errors(v, R"({"x": "2"})") == Lines{"/x: expected number, got string"});
  CHECK(Errors(v, R"({"s": 3})") == Lines{"/s: expected string or null, got integer"});
  CHECK(Errors(v, R"({"t": {}})") == Lines{"/t: expected string, integer or boolean, got object"});
  CHECK(Errors(v, R"({"list": [true, 1, "no"]})") ==
        Lines{"/list/1: expected boolean, got integer", "/list/2: expected boolean, got string"});
  CHECK(Errors(v, "[]") == Lines{"/: expected object, got array"});
}

TEST_CASE("required properties are reported on their object", "[schema]") {
  auto v = Compile(R"({
    "type": "object",
    "required": ["a", "b"],
    "properties": {"inner": {"type": "object", "required": ["c"]}}
  })");
  CHECK(Errors(v, R"({"inner": {}})") == Lines{"/: missing required property \"a\"",
                                               "/: missing required property \"b\"",
                                               "/inner: missing required property \"c\""});
}

TEST_CASE("every unknown property is named, with a hint when one is close", "[schema]") {
  auto v = Compile(R"({
    "type": "object",
    "additionalProperties": false,
    "properties": {
      "command": {}, "maxRunTime": {}, "environment": {}, "capabilities": {}, "log": {}
    }
  })");
  // valijson itself names only the first unknown key; all of them are reported.
  CHECK(Errors(v, R"({"cmd": 1, "maxRuntime": 2, "enviroment": 3, "zzz": 4, "lg": 5})") ==
        Lines{"/cmd: unknown property \"cmd\"; did you mean \"command\"?",
              "/enviroment: unknown property \"enviroment\"; did you mean \"environment\"?",
              "/lg: unknown property \"lg\"; did you mean \"log\"?",
              "/maxRuntime: unknown property \"maxRuntime\"; did you mean \"maxRunTime\"?",
              "/zzz: unknown property \"zzz\""});
  CHECK(Errors(v, R"({"capabilites": {}})") ==
        Lines{"/capabilites: unknown property \"capabilites\"; did you mean \"capabilities\"?"});
  // A key that is merely short is not "close" to everything.
  CHECK(Errors(v, R"({"x": 1})") == Lines{"/x: unknown property \"x\""});
  // Keys needing JSON pointer escapes.
  CHECK(Errors(v, R"({"a/b": 1})") == Lines{"/a~1b: unknown property \"a/b\""});
}

TEST_CASE("patternProperties and additionalProperties schemas are honoured", "[schema]") {
  auto v = Compile(R"({
    "type": "object",
    "additionalProperties": false,
    "properties": {
      "known": {"type": "string"},
      "map": {"type": "object", "additionalProperties": {"type": "integer"}}
    },
    "patternProperties": {"^x-": {"type": "boolean"}}
  })");
  CHECK(Errors(v, R"({"known": "k", "x-a": true, "map": {"a": 1}})").empty());
  CHECK(Errors(v, R"({"x-a": 1, "map": {"a": "1"}, "other": 0})") ==
        Lines{"/map/a: expected integer, got string", "/other: unknown property \"other\"",
              "/x-a: expected boolean, got integer"});
}

TEST_CASE("enum, const, bounds, lengths and patterns get plain messages", "[schema]") {
  auto v = Compile(R"({
    "type": "object",
    "properties": {
      "kind": {"type": "string", "enum": ["file", "directory", "volume"]},
      "one": {"enum": ["only"]},
      "fixed": {"const": 3},
      "n": {"type": "integer", "minimum": 1, "maximum": 10},
      "f": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
      "m": {"type": "integer", "multipleOf": 5},
      "name": {"type": "string", "minLength": 2, "maxLength": 4, "pattern": "^[a-z]+$"},
      "list": {"type": "array", "minItems": 1, "maxItems": 2, "uniqueItems": true},
      "obj": {"type": "object", "minProperties": 1}
    }
  })");
  CHECK(Errors(v, R"({"kind": "link"})") ==
        Lines{"/kind: must be one of \"file\", \"directory\", \"volume\""});
  CHECK(Errors(v, R"({"one": "other"})") == Lines{"/one: must be \"only\""});
  CHECK(Errors(v, R"({"fixed": 4})") == Lines{"/fixed: must be 3"});
  CHECK(Errors(v, R"({"n": 0})") == Lines{"/n: must be >= 1"});
  CHECK(Errors(v, R"({"n": 11})") == Lines{"/n: must be <= 10"});
  CHECK(Errors(v, R"({"f": 0})") == Lines{"/f: must be > 0"});
  CHECK(Errors(v, R"({"f": 1})") == Lines{"/f: must be < 1"});
  CHECK(Errors(v, R"({"m": 7})") == Lines{"/m: must be a multiple of 5"});
  CHECK(Errors(v, R"({"name": "a"})") == Lines{"/name: must be at least 2 characters long"});
  CHECK(Errors(v, R"({"name": "abcde"})") == Lines{"/name: must be at most 4 characters long"});
  CHECK(Errors(v, R"({"name": "AB"})") ==
        Lines{"/name: \"AB\" does not match the pattern \"^[a-z]+$\""});
  CHECK(Errors(v, R"({"list": []})") == Lines{"/list: must have at least 1 items"});
  CHECK(Errors(v, R"({"list": [1, 2, 3]})") == Lines{"/list: must have at most 2 items"});
  CHECK(Errors(v, R"({"list": [1, 1]})") ==
        Lines{"/list: must not contain duplicate items (items 0 and 1 are equal)"});
  CHECK(Errors(v, R"({"obj": {}})") == Lines{"/obj: must have at least 1 properties"});
}

TEST_CASE("date-time formats are checked on strings only", "[schema]") {
  auto v = Compile(R"({
    "type": "object",
    "properties": {"when": {"type": "string", "format": "date-time"}}
  })");
  CHECK(Errors(v, R"({"when": "2030-01-01T00:00:00.000Z"})").empty());
  CHECK(Errors(v, R"({"when": "2030-01-01T00:00:00+05:30"})").empty());
  CHECK(Errors(v, R"({"when": "soon"})") == Lines{"/when: \"soon\" is not an RFC 3339 date-time"});
  CHECK(Errors(v, R"({"when": "2030-02-30T00:00:00Z"})") ==
        Lines{"/when: \"2030-02-30T00:00:00Z\" is not an RFC 3339 date-time"});
  // Another type: only the type error, and no exception from the format check.
  CHECK(Errors(v, R"({"when": {"days": 1}})") == Lines{"/when: expected string, got object"});
  CHECK(Errors(v, R"({"when": 5})") == Lines{"/when: expected string, got integer"});
}

TEST_CASE("oneOf reports the alternative the value means, or one summary line", "[schema]") {
  auto v = Compile(R"({
    "type": "object",
    "properties": {
      "image": {
        "errorMessage": "must be a name or a typed object",
        "oneOf": [
          {"type": "string", "minLength": 1},
          {"type": "object", "required": ["type", "name"], "additionalProperties": false,
           "properties": {"type": {"const": "a"}, "name": {"type": "string"}}},
          {"type": "object", "required": ["type", "path"], "additionalProperties": false,
           "properties": {"type": {"enum": ["b"]}, "path": {"$ref": "#/definitions/path"}}}
        ]
      },
      "plain": {"oneOf": [{"type": "integer"}, {"type": "boolean"}]},
      "both": {"oneOf": [{"type": "integer"}, {"type": "number"}]}
    },
    "definitions": {"path": {"type": "string"}}
  })");
  CHECK(Errors(v, R"({"image": "x", "plain": 1})").empty());
  CHECK(Errors(v, R"({"image": {"type": "a", "name": "n"}})").empty());
  CHECK(Errors(v, R"({"image": {"type": "b", "path": "p"}})").empty());
  // Only the string alternative takes a string: its own error.
  CHECK(Errors(v, R"({"image": ""})") == Lines{"/image: must be at least 1 characters long"});
  // The object names its alternative through "type".
  CHECK(Errors(v, R"({"image": {"type": "b"}})") ==
        Lines{"/image: missing required property \"path\""});
  CHECK(
      Errors(v, R"({"image": {"type": "b", "path": 1, "nmae": "x"}})") ==
      Lines{"/image/nmae: unknown property \"nmae\"", "/image/path: expected string, got integer"});
  CHECK(Errors(v, R"({"image": {"type": "a", "nmae": "x"}})") ==
        Lines{"/image: missing required property \"name\"",
              "/image/nmae: unknown property \"nmae\"; did you mean \"name\"?"});
  // Nothing to go by: the summary.
  CHECK(Errors(v, R"({"image": 1})") == Lines{"/image: must be a name or a typed object"});
  CHECK(Errors(v, R"({"image": {"type": "c"}})") ==
        Lines{"/image: must be a name or a typed object"});
  CHECK(Errors(v, R"({"image": {}})") == Lines{"/image: must be a name or a typed object"});
  CHECK(Errors(v, R"({"plain": "x"})") == Lines{"/plain: does not match any of the allowed forms"});
  CHECK(Errors(v, R"({"both": 3})") == Lines{"/both: matches more than one of the allowed forms"});
}

TEST_CASE("valijson's wrapper errors never show", "[schema]") {
  auto v = Compile(R"({
    "type": "object",
    "properties": {
      "a": {"type": "object", "additionalProperties": {"$ref": "#/definitions/item"}},
      "b": {"type": "array", "items": {"$ref": "#/definitions/item"}},
      "c": {"anyOf": [{"type": "string"}, {"type": "integer"}]}
    },
    "definitions": {"item": {"type": "object", "required": ["k"]}}
  })");
  auto lines = Errors(v, R"({"a": {"x": {}}, "b": [{}], "c": true})");
  for (const auto& line : lines) {
    CHECK_THAT(line, !Catch::Contains("Failed to validate"));
  }
  CHECK(lines == Lines{"/a/x: missing required property \"k\"",
                       "/b/0: missing required property \"k\"",
                       "/c: expected string or integer, got boolean"});
}

TEST_CASE("a validator can be copied and used from many threads", "[schema]") {
  auto v = SchemaValidator::FromEmbedded("payload");
  REQUIRE(v.ok());
  SchemaValidator copy = *v;
  auto doc = ParseOrDie(R"({"image": 1, "maxRunTime": "x", "cmd": [], "artifacts": {"a": {}}})");
  const auto expected = v->Validate(doc);
  REQUIRE(expected.size() == 5);
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        if (copy.Validate(doc) != expected) ++mismatches[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(mismatches == std::vector<int>(4, 0));
}

// ---------------------------------------------------------------------------------------------
// The configuration schema.

TEST_CASE("upstream config.yml sections validate against the config schema", "[schema][config]") {
  const std::filesystem::path dir = std::filesystem::path(DW_SOURCE_DIR) / "test/data/config";
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".json") continue;
    ++files;
    auto doc = json::ParseFile(entry.path().string());
    INFO(entry.path().string());
    REQUIRE(doc.ok());
    CHECK(ConfigSchema().Validate(*doc).empty());
  }
  CHECK(files >= 2);
}

TEST_CASE("the config schema names unknown and misspelt keys", "[schema][config]") {
  CHECK(Errors(ConfigSchema(), R"({"capacty": 2})") ==
        Lines{"/capacty: unknown property \"capacty\"; did you mean \"capacity\"?"});
  CHECK(Errors(ConfigSchema(), R"({"dockerConfig": {"allowPriviledged": true}})") ==
        Lines{"/dockerConfig/allowPriviledged: unknown property \"allowPriviledged\"; did you mean "
              "\"allowPrivileged\"?"});
  CHECK(Errors(ConfigSchema(), R"({"features": {"taskclusterProxy": {"enable": true}}})") ==
        Lines{"/features/taskclusterProxy/enable: unknown property \"enable\"; did you mean "
              "\"enabled\"?"});
  CHECK(Errors(ConfigSchema(), R"({"features": {"superFeature": {"enabled": true}}})") ==
        Lines{"/features/superFeature: unknown property \"superFeature\""});
}

TEST_CASE("the config schema checks types and ranges", "[schema][config]") {
  CHECK(Errors(ConfigSchema(), R"({"capacity": "2"})") ==
        Lines{"/capacity: expected integer, got string"});
  CHECK(Errors(ConfigSchema(), R"({"capacity": -1})") == Lines{"/capacity: must be >= 0"});
  CHECK(Errors(ConfigSchema(), R"({"dockerConfig": {"randomizationFactor": 1.5}})") ==
        Lines{"/dockerConfig/randomizationFactor: must be <= 1"});
  CHECK(Errors(ConfigSchema(), R"({"dockerConfig": {"pullIdleTimeout": 500}})") ==
        Lines{"/dockerConfig/pullIdleTimeout: must be >= 1000"});
  CHECK(Errors(ConfigSchema(), R"({"task": {"reclaimDivisor": 0}})") ==
        Lines{"/task/reclaimDivisor: must be > 0"});
  CHECK(Errors(ConfigSchema(), R"({"liveLog": {"port": 70000}})") ==
        Lines{"/liveLog/port: must be <= 65535"});
  CHECK(Errors(ConfigSchema(), R"({"registries": {"quay.io/mozilla": {"username": "u"}}})") ==
        Lines{"/registries/quay.io~1mozilla: missing required property \"password\""});
}

TEST_CASE("the config schema accepts our own keys and worker-runner's", "[schema][config]") {
  CHECK(Errors(ConfigSchema(), R"({
    "dockerSocket": "/var/run/docker.sock",
    "liveLog": {"listenAddress": "0.0.0.0", "port": 0, "publicHostname": "worker.example.com"},
    "rootUrl": "https://tc.example.com",
    "taskcluster": {"clientId": "c", "accessToken": "t", "certificate": "{\"version\":1}"},
    "workerLocation": "{\"cloud\":\"aws\"}",
    "provisionerId": "p", "workerType": "t", "workerGroup": "g", "workerId": "i",
    "workerNodeType": "m5.large", "instanceType": "m5.large", "instanceId": "i-1",
    "region": "us-east-1", "publicIp": "1.2.3.4", "privateIp": "10.0.0.1", "host": "h",
    "registries": {"quay.io/mozilla": {"username": "u", "password": "p", "email": "e@x"}},
    "dockerConfig": {"defaultRegistry": "mirror.example.com", "pullIdleTimeout": 2000},
    "shutdown": {"enabled": true, "afterIdleSeconds": 900, "nodeTerminationPoll": 5000},
    "deviceManagement": {"phone": {"enabled": false, "sims": 1, "type": "flame"}},
    "signingKeyLocation": "/etc/k", "dockerWorkerPrivateKey": "/etc/p",
    "features": {"relengAPIProxy": {"enabled": true, "image": "i", "token": "t"}}
  })")
            .empty());
}

TEST_CASE("the config schema has a switch for every payload feature", "[schema][config]") {
  auto payload_schema = ParseOrDie(EmbeddedSchema("payload"));
  const json::Value& features = payload_schema["properties"]["features"]["properties"];
  REQUIRE(features.IsObject());
  int count = 0;
  for (const auto& m : features.GetObject()) {
    std::string name = m.name.GetString();
    ++count;
    INFO(name);
    CHECK(
        Errors(ConfigSchema(), "{\"features\": {\"" + name + "\": {\"enabled\": false}}}").empty());
  }
  CHECK(count == 12);
}

}  // namespace
}  // namespace docker_worker
