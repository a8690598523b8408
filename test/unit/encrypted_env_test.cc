// encryptedEnv checks without GnuPG: the decryption step is injected (the "ciphertext" is the
// plaintext itself), so order, loose comparison and message format are tested directly.
#include "docker_worker/encrypted_env.h"
#include "docker_worker/slugid.h"

#include <sodium.h>

#include <catch2/catch.hpp>
#include <regex>
#include <sstream>

#include "docker_worker/encrypt_env_command.h"
#include "docker_worker/status.h"

namespace docker_worker {
namespace {

constexpr int64_t kNow = 1700000000000;
const std::string kTaskId = "fN1SbArXTPSVFNUvaOlinQ";
const std::string kSecretName = "SUPER_SECRET_NAME_x7";
const std::string kSecretValue = "hunter2-value-q9";

std::string B64(const std::string& bin) {
  std::string out(sodium_base64_ENCODED_LEN(bin.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bin.data()),
                    bin.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

// A message as JSON with `fields` spliced in (each "\"key\": value", overriding defaults).
std::string Message(std::map<std::string, std::string> fields) {
  std::map<std::string, std::string> all = {
      {"messageVersion", "1"},
      {"taskId", "\"" + kTaskId + "\""},
      {"startTime", std::to_string(kNow - 1000)},
      {"endTime", std::to_string(kNow + 1000)},
      {"name", "\"" + kSecretName + "\""},
      {"value", "\"" + kSecretValue + "\""},
  };
  for (auto& [k, v] : fields) {
    if (v == "<absent>") {
      all.erase(k);
    } else {
      all[k] = v;
    }
  }
  std::string json = "{";
  for (auto& [k, v] : all) json += (json.size() > 1 ? "," : "") + ("\"" + k + "\":" + v);
  return json + "}";
}

Result<std::string> Identity(const std::string& m) { return m; }

struct Outcome {
  Result<EnvVars> result;
  std::string detail;
};

Outcome Run(const std::vector<std::string>& plaintexts, const EnvVars& payload_env = {},
            int64_t now = kNow) {
  std::vector<std::string> entries;
  for (const auto& p : plaintexts) entries.push_back(B64(p));
  std::string detail;
  auto r = DecryptEncryptedEnvWith(Identity, entries, payload_env, kTaskId, now, &detail);
  return {std::move(r), detail};
}

const std::regex kViolation(
    "secret data violation -- (.*); incidentId: "
    "([0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})");

// The failure message after "secret data violation -- ", checking format, resolution, the
// shared incident id and that no secret leaked.
std::string Violation(const Outcome& o) {
  REQUIRE_FALSE(o.result.ok());
  const Status& s = o.result.status();
  REQUIRE(s.resolution().has_value());
  CHECK(s.resolution()->state == RunState::kFailed);
  std::smatch m;
  REQUIRE(std::regex_match(s.message(), m, kViolation));
  CHECK(o.detail.find(m[2].str()) != std::string::npos);
  for (const std::string* text : {&s.message(), &o.detail}) {
    CHECK(text->find(kSecretName) == std::string::npos);
    CHECK(text->find(kSecretValue) == std::string::npos);
  }
  return m[1].str();
}

const char* kConflict = "an environment variable conflicts with an existing environment variable";
const char* kDuplicated = "an environment variable has been duplicated in the task payload";
const char* kVersion = "the version of the message is not supported";
const char* kTaskIdMismatch = "the taskId of the env payload does not match the taskId of the task";
const char* kFuture = "the start time in the env payload is in the future";
const char* kPast = "the end time in the env payload is in the past";

TEST_CASE("encryptedEnv: valid entries are returned in order", "[unit]") {
  auto o =
      Run({Message({}), Message({{"name", "\"OTHER\""}, {"value", "\"v2\""}})}, {{"PLAIN", "x"}});
  REQUIRE(o.result.ok());
  REQUIRE(o.result->size() == 2);
  CHECK((*o.result)[0] == std::pair<std::string, std::string>(kSecretName, kSecretValue));
  CHECK((*o.result)[1] == std::pair<std::string, std::string>("OTHER", "v2"));
  CHECK(o.detail.empty());
}

TEST_CASE("encryptedEnv: reserved names fail first (check 1)", "[unit]") {
  for (const char* name : {"TASK_ID", "RUN_ID"}) {
    // Every later check would fail too: the first one wins.
    auto o = Run({Message({{"name", std::string("\"") + name + "\""},
                           {"messageVersion", "2"},
                           {"taskId", "\"other\""},
                           {"startTime", std::to_string(kNow + 5000)}})},
                 {{name, "x"}});
    CHECK(Violation(o) == kConflict);
    CHECK(o.detail.find("check 1") != std::string::npos);
  }
}

TEST_CASE("encryptedEnv: duplicates of payload.env or an earlier entry fail (check 2)", "[unit]") {
  auto o = Run({Message({{"messageVersion", "2"}})}, {{kSecretName, "plain"}});
  CHECK(Violation(o) == kDuplicated);
  o = Run({Message({}), Message({{"value", "\"another\""}})});
  CHECK(Violation(o) == kDuplicated);
  CHECK(o.detail.find("encryptedEnv[1]") != std::string::npos);
}

TEST_CASE("encryptedEnv: messageVersion compares loosely with 1 (check 3)", "[unit]") {
  for (const char* ok : {"1", "1.0", "\"1\"", "\" 1 \"", "\"1.0\"", "\"0x1\"", "\"1e0\"", "true"}) {
    INFO(ok);
    CHECK(Run({Message({{"messageVersion", ok}})}).result.ok());
  }
  for (const char* bad :
       {"2", "0", "\"2\"", "\"\"", "\"one\"", "\"1x\"", "null", "false", "[1]", "{}", "<absent>"}) {
    INFO(bad);
    auto o = Run({Message({{"messageVersion", bad}, {"taskId", "\"other\""}})});
    CHECK(Violation(o) == kVersion);
  }
}

TEST_CASE("encryptedEnv: LooselyEqualsOne follows JavaScript ==", "[unit]") {
  auto doc =
      json::Parse(R"([1, 1.5, "1", "\t1\n", "01", "+1", "-1", "1.", "Infinity", true, null])");
  REQUIRE(doc.ok());
  const auto& a = *doc;
  CHECK(LooselyEqualsOne(a[0]));
  CHECK_FALSE(LooselyEqualsOne(a[1]));
  CHECK(LooselyEqualsOne(a[2]));
  CHECK(LooselyEqualsOne(a[3]));
  CHECK(LooselyEqualsOne(a[4]));
  CHECK(LooselyEqualsOne(a[5]));
  CHECK_FALSE(LooselyEqualsOne(a[6]));
  CHECK(LooselyEqualsOne(a[7]));
  CHECK_FALSE(LooselyEqualsOne(a[8]));
  CHECK(LooselyEqualsOne(a[9]));
  CHECK_FALSE(LooselyEqualsOne(a[10]));
}

TEST_CASE("encryptedEnv: taskId must be the task's (check 4)", "[unit]") {
  for (const char* bad : {"\"aaaaaaaaaaaaaaaaaaaaaa\"", "42", "null", "<absent>"}) {
    INFO(bad);
    auto o = Run({Message({{"taskId", bad}, {"startTime", std::to_string(kNow + 5000)}})});
    CHECK(Violation(o) == kTaskIdMismatch);
  }
}

TEST_CASE("encryptedEnv: the time window is checked, start then end (checks 5, 6)", "[unit]") {
  auto o = Run(
      {Message({{"startTime", std::to_string(kNow + 1)}, {"endTime", std::to_string(kNow - 1)}})});
  CHECK(Violation(o) == kFuture);
  o = Run({Message({{"endTime", std::to_string(kNow - 1)}})});
  CHECK(Violation(o) == kPast);
  // Both bounds are inclusive.
  CHECK(Run({Message({{"startTime", std::to_string(kNow)}, {"endTime", std::to_string(kNow)}})})
            .result.ok());
  CHECK(Run({Message({{"startTime", "1.7e12"}})}).result.ok());
}

TEST_CASE("encryptedEnv: plaintexts of the wrong shape are rejected", "[unit]") {
  for (const std::string& bad :
       {std::string("not json"), std::string("[]"), std::string("\"x\""),
        Message({{"name", "<absent>"}}), Message({{"name", "7"}}), Message({{"name", "\"\""}}),
        Message({{"name", "\"A=B\""}}), Message({{"name", "\"A\\u0000B\""}}),
        Message({{"value", "<absent>"}}), Message({{"value", "7"}}),
        Message({{"value", "\"a\\u0000b\""}}), Message({{"startTime", "<absent>"}}),
        Message({{"startTime", "\"0\""}}), Message({{"endTime", "null"}})}) {
    INFO(bad);
    CHECK(Violation(Run({bad})) == "the decrypted env entry is not a valid env message");
  }
}

TEST_CASE("encryptedEnv: bad base64 and decryption failures", "[unit]") {
  std::string detail;
  auto r = DecryptEncryptedEnvWith(Identity, {"%%% not base64 %%%"}, {}, kTaskId, kNow, &detail);
  CHECK(Violation({r, detail}) == "the encrypted env entry is not valid base64");

  auto fails = [](const std::string&) -> Result<std::string> {
    return Status(Code::kInvalidArgument, "decryption failed: No secret key");
  };
  r = DecryptEncryptedEnvWith(fails, {B64(Message({}))}, {}, kTaskId, kNow, &detail);
  CHECK(Violation({r, detail}) == "the encrypted env entry could not be decrypted");
  CHECK(detail.find("No secret key") != std::string::npos);

  // Whitespace, missing padding and the URL-safe alphabet are accepted, like Node's Buffer.
  std::string b64 = B64(Message({}) + "  ");
  std::string wrapped = b64.substr(0, 10) + "\n" + b64.substr(10);
  CHECK(DecryptEncryptedEnvWith(Identity, {wrapped}, {}, kTaskId, kNow, nullptr).ok());
}

TEST_CASE("encryptedEnv: no decryptor configured", "[unit]") {
  std::string detail = "stale";
  auto r = DecryptEncryptedEnv(nullptr, {}, {}, kTaskId, kNow, &detail);
  REQUIRE(r.ok());
  CHECK(r->empty());
  CHECK(detail.empty());
  r = DecryptEncryptedEnv(nullptr, {B64(Message({}))}, {}, kTaskId, kNow, &detail);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() ==
        "encryptedEnv is not supported on this worker: no dockerWorkerPrivateKey is configured");
  CHECK(r.status().resolution() == Resolution::Failed());
}

TEST_CASE("encryptedEnv: incident ids are fresh v4 UUIDs", "[unit]") {
  std::string a = NewUuidV4(), b = NewUuidV4();
  CHECK(a != b);
  CHECK(std::regex_match(
      a, std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")));
}

TEST_CASE("encrypt-env: message plaintext and durations", "[unit]") {
  std::string p = EnvMessagePlaintext(kTaskId, "N", "v\"q", 10, 20);
  auto doc = json::Parse(p);
  REQUIRE(doc.ok());
  CHECK(json::GetInt(*doc, "messageVersion") == 1);
  CHECK(json::GetString(*doc, "taskId") == kTaskId);
  CHECK(json::GetInt(*doc, "startTime") == 10);
  CHECK(json::GetInt(*doc, "endTime") == 20);
  CHECK(json::GetString(*doc, "name") == "N");
  CHECK(json::GetString(*doc, "value") == "v\"q");
  // The product's plaintext passes the checks.
  CHECK(Run({EnvMessagePlaintext(kTaskId, "N", "v", kNow, kNow)}).result.ok());

  CHECK(ParseValidFor("30m") == 30 * 60 * 1000);
  CHECK(ParseValidFor("1h") == 3600 * 1000);
  CHECK(ParseValidFor("2d") == int64_t{2} * 24 * 3600 * 1000);
  CHECK(ParseValidFor("3600s") == 3600 * 1000);
  CHECK(ParseValidFor("1h30m") == 90 * 60 * 1000);
  for (const char* bad :
       {"", "1", "h", "0s", "-1h", "1x", "1h ", "1.5h", "99999999999999999999d", "4000d"}) {
    INFO(bad);
    CHECK_FALSE(ParseValidFor(bad).has_value());
  }
}

TEST_CASE("encrypt-env: usage errors exit 64 naming the flag", "[unit]") {
  auto run = [](std::vector<std::string> args, std::string* err_text = nullptr) {
    std::ostringstream out, err;
    int code = EncryptEnvCommand(args, out, err);
    CHECK(out.str().empty());
    CHECK(err.str().find(kSecretValue) == std::string::npos);
    if (err_text) *err_text = err.str();
    return code;
  };
  const std::vector<std::string> good = {
      "--public-key", "/nonexistent/key.asc", "--task-id", kTaskId, "--name", "N", "--value",
      kSecretValue};
  struct Case {
    std::vector<std::string> args;
    std::string expect;
  };
  std::vector<Case> cases = {
      {{}, "--public-key is required"},
      {{"--public-key", "k", "--name", "N", "--value", "v"}, "--task-id is required"},
      {{"--public-key", "k", "--task-id", kTaskId, "--value", "v"}, "--name is required"},
      {{"--public-key", "k", "--task-id", kTaskId, "--name", "N"},
       "give exactly one of --value-file and --value"},
      {{"--public-key", "k", "--task-id", kTaskId, "--name", "N", "--value", "v", "--value-file",
        "f"},
       "give exactly one of --value-file and --value"},
      {{"--bogus", "1"}, "unknown option --bogus"},
      {{"stray"}, "unexpected argument stray"},
      {{"--name"}, "missing value for --name"},
      {{"--name", "A", "--name=B"}, "--name given more than once"},
  };
  auto with = [&](const std::string& flag, const std::string& value) {
    std::vector<std::string> args = good;
    for (size_t i = 0; i < args.size(); i += 2) {
      if (args[i] == flag) {
        args[i + 1] = value;
        return args;
      }
    }
    args.push_back(flag);
    args.push_back(value);
    return args;
  };
  cases.push_back({with("--task-id", "short"), "--task-id"});
  cases.push_back({with("--name", "A=B"), "--name"});
  cases.push_back({with("--name", ""), "--name"});
  cases.push_back({with("--name", "TASK_ID"), "--name"});
  cases.push_back({with("--valid-for", "soon"), "--valid-for"});
  cases.push_back({good, "/nonexistent/key.asc"});
  std::vector<std::string> from_file = with("--value-file", "/nonexistent/value.txt");
  from_file.erase(from_file.begin() + 6, from_file.begin() + 8);  // drop --value
  cases.push_back({from_file, "--value-file: "});
  cases.push_back({from_file, "/nonexistent/value.txt"});
  for (const Case& c : cases) {
    std::string err;
    CHECK(run(c.args, &err) == 64);
    INFO(err);
    CHECK(err.find(c.expect) != std::string::npos);
    CHECK(err.find("usage: docker-worker encrypt-env") != std::string::npos);
  }

  std::ostringstream out, err;
  CHECK(EncryptEnvCommand({"--help"}, out, err) == 0);
  CHECK(out.str().find("usage: docker-worker encrypt-env") == 0);
}

}  // namespace
}  // namespace docker_worker
