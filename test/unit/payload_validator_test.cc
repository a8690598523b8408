#include "docker_worker/payload_validator.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "docker_worker/json.h"
#include "docker_worker/time_format.h"

namespace docker_worker {
namespace {

namespace fs = std::filesystem;
using Lines = std::vector<std::string>;

const fs::path kPayloads = fs::path(DW_SOURCE_DIR) / "test/data/payloads";

json::Document ParseOrDie(std::string_view text) {
  auto doc = json::Parse(text);
  INFO(text);
  REQUIRE(doc.ok());
  return std::move(doc).value();
}

Lines Format(const std::vector<ValidationError>& errors) {
  Lines lines;
  for (const auto& e : errors) lines.push_back(FormatValidationError(e));
  return lines;
}

Lines PayloadErrors(std::string_view text) { return Format(ValidatePayload(ParseOrDie(text))); }
Lines TaskErrors(std::string_view text) { return Format(ValidateTaskDefinition(ParseOrDie(text))); }

// Either check, chosen the way `docker-worker validate` chooses.
Lines FileErrors(const fs::path& path) {
  auto doc = json::ParseFile(path.string());
  INFO(path.string());
  REQUIRE(doc.ok());
  return Format(LooksLikeTaskDefinition(*doc) ? ValidateTaskDefinition(*doc)
                                              : ValidatePayload(*doc));
}

Lines ReadLines(const fs::path& path) {
  std::ifstream in(path);
  Lines lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

std::vector<fs::path> JsonFiles(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == ".json") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

TimePoint At(std::string_view iso) {
  auto t = ParseIso(iso);
  REQUIRE(t.ok());
  return *t;
}

TEST_CASE("every example under test/data/payloads/valid is valid", "[payload]") {
  auto files = JsonFiles(kPayloads / "valid");
  CHECK(files.size() >= 9);
  for (const auto& file : files) {
    INFO(file.filename().string());
    CHECK(FileErrors(file) == Lines{});
  }
}

TEST_CASE("every example under test/data/payloads/invalid gives exactly its .expected errors",
          "[payload]") {
  auto files = JsonFiles(kPayloads / "invalid");
  CHECK(files.size() >= 30);
  for (const auto& file : files) {
    fs::path expected = file;
    expected.replace_extension(".expected");
    INFO(file.filename().string());
    REQUIRE(fs::exists(expected));
    Lines want = ReadLines(expected);
    CHECK_FALSE(want.empty());
    CHECK(FileErrors(file) == want);
  }
}

TEST_CASE("the minimal payloads of both upstream schemas are valid", "[payload]") {
  CHECK(PayloadErrors(R"({"image": "busybox", "maxRunTime": 1})").empty());
  CHECK(PayloadErrors(R"({"image": {"type": "docker-image", "name": "busybox"}, "maxRunTime": 1})")
            .empty());
  CHECK(
      PayloadErrors(
          R"({"image": {"type": "indexed-image", "namespace": "n", "path": "p"}, "maxRunTime": 1})")
          .empty());
  CHECK(PayloadErrors(
            R"({"image": {"type": "task-image", "taskId": "t", "path": "p"}, "maxRunTime": 1})")
            .empty());
}

TEST_CASE("maxRunTime written as 3600.0 is an integer", "[payload]") {
  auto doc = ParseOrDie(R"({"image": "busybox", "maxRunTime": 3600.0})");
  CHECK(doc["maxRunTime"].IsInt64());
  CHECK(ValidatePayload(doc).empty());
  // No upper bound (the monorepo dropped the standalone 7-day maximum).
  CHECK(PayloadErrors(R"({"image": "busybox", "maxRunTime": 2592000})").empty());
  CHECK(PayloadErrors(R"({"image": "busybox", "maxRunTime": -5})") ==
        Lines{"/maxRunTime: must be >= 1"});
  CHECK(PayloadErrors(R"({"image": "busybox", "maxRunTime": 18446744073709551615})") ==
        Lines{"/maxRunTime: is too large (at most 9223372036854775807)"});
  CHECK(PayloadErrors(R"({"image": "busybox", "maxRunTime": 1e300})") ==
        Lines{"/maxRunTime: expected integer, got number"});
}

TEST_CASE("every feature of either upstream schema is accepted on its own", "[payload]") {
  for (const char* feature : {"localLiveLog", "artifacts", "chainOfTrust", "bulkLog",
                              "taskclusterProxy", "balrogVPNProxy", "balrogStageVPNProxy", "dind",
                              "relengAPIProxy", "dockerSave", "interactive", "allowPtrace"}) {
    INFO(feature);
    for (const char* value : {"true", "false"}) {
      std::string payload = std::string(R"({"image": "busybox", "maxRunTime": 5, "features": {")") +
                            feature + "\": " + value + "}}";
      CHECK(PayloadErrors(payload).empty());
    }
  }
  CHECK(PayloadErrors(R"({"image": "i", "maxRunTime": 5, "features": {"azureLivelog": true}})") ==
        Lines{"/features/azureLivelog: unknown property \"azureLivelog\""});
  CHECK(PayloadErrors(R"({"image": "i", "maxRunTime": 5, "features": {"chainOfTrust": 1}})") ==
        Lines{"/features/chainOfTrust: expected boolean, got integer"});
}

TEST_CASE("capabilities: privileged, every device, disableSeccomp", "[payload]") {
  CHECK(PayloadErrors(R"({"image": "i", "maxRunTime": 5, "capabilities": {
      "privileged": true, "disableSeccomp": false,
      "devices": {"loopbackVideo": true, "loopbackAudio": true, "hostSharedMemory": true, "kvm": true}}})")
            .empty());
  CHECK(
      PayloadErrors(
          R"({"image": "i", "maxRunTime": 5, "capabilities": {"devices": {"phone": {"type": "x"}}}})") ==
      Lines{"/capabilities/devices/phone: unknown property \"phone\""});
  CHECK(PayloadErrors(
            R"({"image": "i", "maxRunTime": 5, "capabilities": {"disableSeccomp": "yes"}})") ==
        Lines{"/capabilities/disableSeccomp: expected boolean, got string"});
}

TEST_CASE("artifacts: file, directory, volume, with and without expires", "[payload]") {
  CHECK(PayloadErrors(R"({"image": "i", "maxRunTime": 5, "artifacts": {
      "public/f": {"type": "file", "path": "/f"},
      "public/d": {"type": "directory", "path": "/d", "expires": "2030-01-01T00:00:00.000Z"},
      "public/v": {"type": "volume", "path": "/v", "expires": "2030-01-01T00:00:00Z"}}})")
            .empty());
  CHECK(PayloadErrors(R"({"image": "i", "maxRunTime": 5, "artifacts": {"a": {"path": "/a"}}})") ==
        Lines{"/artifacts/a: missing required property \"type\""});
  CHECK(PayloadErrors(R"({"image": "i", "maxRunTime": 5, "artifacts": {"a": {"type": "file"}}})") ==
        Lines{"/artifacts/a: missing required property \"path\""});
  CHECK(PayloadErrors(R"({"image": "i", "maxRunTime": 5, "artifacts": {"a": "/a"}})") ==
        Lines{"/artifacts/a: expected object, got string"});
  CHECK(PayloadErrors(
            R"({"image": "i", "maxRunTime": 5, "artifacts": [{"type": "file", "path": "/a"}]})") ==
        Lines{"/artifacts: expected object, got array"});
}

TEST_CASE("each image object form requires its own keys", "[payload]") {
  CHECK(PayloadErrors(R"({"image": {"type": "docker-image"}, "maxRunTime": 5})") ==
        Lines{"/image: missing required property \"name\""});
  CHECK(PayloadErrors(R"({"image": {"type": "indexed-image"}, "maxRunTime": 5})") ==
        Lines{"/image: missing required property \"namespace\"",
              "/image: missing required property \"path\""});
  CHECK(PayloadErrors(R"({"image": {"type": "task-image", "path": "p"}, "maxRunTime": 5})") ==
        Lines{"/image: missing required property \"taskId\""});
  CHECK(PayloadErrors(R"({"image": {"name": "busybox"}, "maxRunTime": 5})") ==
        Lines{"/image: must be an image name string or an object with type \"docker-image\", "
              "\"indexed-image\" or \"task-image\""});
  CHECK(PayloadErrors(R"({"image": null, "maxRunTime": 5})") ==
        Lines{"/image: must be an image name string or an object with type \"docker-image\", "
              "\"indexed-image\" or \"task-image\""});
  CHECK(
      PayloadErrors(
          R"({"image": {"type": "docker-image", "name": "b", "namespace": "n"}, "maxRunTime": 5})") ==
      Lines{"/image/namespace: unknown property \"namespace\""});
}

TEST_CASE("env, cache, command, onExitStatus, log, supersederUrl, encryptedEnv", "[payload]") {
  CHECK(PayloadErrors(R"({"image": "i", "maxRunTime": 5,
      "env": {"A": "1"}, "cache": {"c": "/c"}, "command": ["a", "b"],
      "onExitStatus": {"retry": [1], "purgeCaches": [2, 3]},
      "log": "public/logs/mine.log", "supersederUrl": "https://example.com/s",
      "encryptedEnv": ["AAAA"]})")
            .empty());
  CHECK(PayloadErrors(R"({"image": "i", "maxRunTime": 5, "encryptedEnv": [1]})") ==
        Lines{"/encryptedEnv/0: expected string, got integer"});
  CHECK(PayloadErrors(R"({"image": "i", "maxRunTime": 5, "onExitStatus": {"retry": [1.5]}})") ==
        Lines{"/onExitStatus/retry/0: expected integer, got number"});
  CHECK(PayloadErrors(R"({"image": "i", "maxRunTime": 5, "env": ["A=1"]})") ==
        Lines{"/env: expected object, got array"});
}

TEST_CASE("several problems are all reported, sorted by path", "[payload]") {
  CHECK(
      PayloadErrors(
          R"({"maxRunTime": "1", "comand": [], "artifacts": {"b": {"type": "dir", "path": 1}}})") ==
      Lines{"/: missing required property \"image\"",
            "/artifacts/b/path: expected string, got integer",
            "/artifacts/b/type: must be one of \"file\", \"directory\", \"volume\"",
            "/comand: unknown property \"comand\"; did you mean \"command\"?",
            "/maxRunTime: expected integer, got string"});
}

TEST_CASE("LooksLikeTaskDefinition wants an object with a payload object", "[payload]") {
  CHECK(LooksLikeTaskDefinition(ParseOrDie(R"({"payload": {}})")));
  CHECK(LooksLikeTaskDefinition(ParseOrDie(R"({"payload": {"image": "i"}, "expires": "x"})")));
  CHECK_FALSE(LooksLikeTaskDefinition(ParseOrDie(R"({"image": "i", "maxRunTime": 1})")));
  CHECK_FALSE(LooksLikeTaskDefinition(ParseOrDie(R"({"payload": "x"})")));
  CHECK_FALSE(LooksLikeTaskDefinition(ParseOrDie(R"([{"payload": {}}])")));
  CHECK_FALSE(LooksLikeTaskDefinition(ParseOrDie("null")));
}

TEST_CASE("task definitions: shape and payload prefix", "[payload][task]") {
  CHECK(TaskErrors(R"({"payload": {"image": "i", "maxRunTime": 5}})").empty());
  CHECK(TaskErrors("42") == Lines{"/: a task definition must be an object, got integer"});
  CHECK(TaskErrors(R"({"expires": "2030-01-01T00:00:00Z"})") ==
        Lines{"/: missing required property \"payload\""});
  CHECK(TaskErrors(R"({"payload": []})") == Lines{"/payload: expected object, got array"});
  CHECK(TaskErrors(R"({"payload": {"image": "i"}})") ==
        Lines{"/payload: missing required property \"maxRunTime\""});
  CHECK(TaskErrors(R"({"expires": 1, "payload": {"image": "i", "maxRunTime": 5}})") ==
        Lines{"/expires: expected string, got integer"});
}

TEST_CASE("task definitions: artifact expiry against the task's expiry, both ways",
          "[payload][task]") {
  const std::string head =
      R"({"expires": "2029-06-01T00:00:00.000Z", "payload": {"image": "i", "maxRunTime": 5, "artifacts": {"public/a": {"type": "file", "path": "/a", "expires": ")";
  const std::string tail = R"("}}}})";
  CHECK(TaskErrors(head + "2029-05-31T23:59:59.999Z" + tail).empty());
  CHECK(TaskErrors(head + "2029-06-01T00:00:00.000Z" + tail).empty());  // equal is fine
  CHECK(TaskErrors(head + "2029-06-01T00:00:00.001Z" + tail) ==
        Lines{"/payload/artifacts/public~1a/expires: expires 2029-06-01T00:00:00.001Z is after "
              "the task's expires 2029-06-01T00:00:00.000Z"});
  // Offsets are honoured: 01:00+02:00 is 23:00Z the day before.
  CHECK(TaskErrors(head + "2029-06-01T01:00:00+02:00" + tail).empty());
  CHECK(TaskErrors(head + "2029-06-01T01:00:00-02:00" + tail) ==
        Lines{"/payload/artifacts/public~1a/expires: expires 2029-06-01T03:00:00.000Z is after "
              "the task's expires 2029-06-01T00:00:00.000Z"});
  // No task expiry: nothing to compare with.
  CHECK(
      TaskErrors(
          R"({"payload": {"image": "i", "maxRunTime": 5, "artifacts": {"a": {"type": "file", "path": "/a", "expires": "2999-01-01T00:00:00Z"}}}})")
          .empty());
}

TEST_CASE("CheckArtifactExpiry on its own", "[payload][task]") {
  auto payload = ParseOrDie(R"({"artifacts": {
      "early": {"type": "file", "path": "/e", "expires": "2026-01-01T00:00:00Z"},
      "late": {"type": "file", "path": "/l", "expires": "2031-01-01T00:00:00Z"},
      "none": {"type": "file", "path": "/n"},
      "garbled": {"type": "file", "path": "/g", "expires": "later"},
      "odd": {"type": "file", "path": "/o", "expires": 5},
      "weird": "not an object"}})");
  auto errors = CheckArtifactExpiry(payload, At("2030-01-01T00:00:00Z"), "");
  CHECK(Format(errors) ==
        Lines{"/artifacts/garbled/expires: \"later\" is not an RFC 3339 date-time",
              "/artifacts/late/expires: expires 2031-01-01T00:00:00.000Z is after the task's "
              "expires 2030-01-01T00:00:00.000Z"});
  auto prefixed = CheckArtifactExpiry(payload, At("2032-01-01T00:00:00Z"), "/payload");
  CHECK(Format(prefixed) ==
        Lines{"/payload/artifacts/garbled/expires: \"later\" is not an RFC 3339 date-time"});
  CHECK(
      CheckArtifactExpiry(ParseOrDie(R"({"image": "i"})"), At("2030-01-01T00:00:00Z"), "").empty());
  CHECK(CheckArtifactExpiry(ParseOrDie(R"({"artifacts": []})"), At("2030-01-01T00:00:00Z"), "")
            .empty());
}

}  // namespace
}  // namespace docker_worker
