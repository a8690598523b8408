// encryptedEnv and encrypt-env against real GnuPG: keys made by the gpg CLI, messages made by the
// product (EncryptEnvEntry, EncryptEnvCommand) and by gpg itself, decrypted by EnvDecryptor.
#include "docker_worker/encrypted_env.h"

#include <sodium.h>
#include <sys/stat.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <regex>
#include <sstream>
#include <thread>

#include "docker_worker/base64.h"
#include "docker_worker/clock.h"
#include "docker_worker/encrypt_env_command.h"
#include "docker_worker/gpg_home.h"
#include "fakes/temp_dir.h"
#include "support/gpg_keys.h"
#include "support/subprocess.h"

namespace docker_worker {
namespace {

using testing::GpgKeyPair;
using testing::ReadFile;
using testing::TempDir;
using testing::WriteFile;

const std::string kTaskId = "fN1SbArXTPSVFNUvaOlinQ";
const std::string kName = "ENC_SECRET_NAME_k3";
const std::string kValue = "s3cr3t-value-Zq81";

int64_t NowMs() { return ToEpochMillis(SystemClock().Now()); }

std::string Unb64(const std::string& text) {
  auto decoded = Base64Decode(text, {Base64::kStandard}, "\n");
  REQUIRE(decoded);
  return *decoded;
}

// One key pair and its decryptor for the whole file (key generation and import cost ~100 ms).
struct Worker {
  GpgKeyPair keys;
  std::unique_ptr<EnvDecryptor> decryptor;
  Worker() {
    REQUIRE(keys.ok());
    auto d = EnvDecryptor::FromKeyFile(keys.private_key_path());
    INFO(d.status().message());
    REQUIRE(d.ok());
    decryptor = std::move(*d);
  }
  std::string Entry(const std::string& plaintext) {
    auto e = EncryptEnvEntry(keys.PublicKey(), plaintext);
    INFO(e.status().message());
    REQUIRE(e.ok());
    return *e;
  }
};

Worker& SharedWorker() {
  static Worker w;
  return w;
}

// The failure message between "secret data violation -- " and "; incidentId", after checking
// that neither the message nor the detail carries the secret name or value.
std::string Violation(const Result<EnvVars>& r, const std::string& detail) {
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().resolution() == Resolution::Failed());
  for (const std::string* text : {&r.status().message(), &detail}) {
    CHECK(text->find(kName) == std::string::npos);
    CHECK(text->find(kValue) == std::string::npos);
  }
  std::smatch m;
  static const std::regex kRe("secret data violation -- (.*); incidentId: ([0-9a-f-]{36})");
  REQUIRE(std::regex_match(r.status().message(), m, kRe));
  CHECK(detail.find(m[2].str()) != std::string::npos);
  return m[1].str();
}

TEST_CASE("encryptedEnv (gpg): the product's entries decrypt and pass the checks",
          "[integration]") {
  Worker& w = SharedWorker();
  int64_t now = NowMs();
  std::string entry = w.Entry(EnvMessagePlaintext(kTaskId, kName, kValue, now - 1000, now + 60000));
  std::string detail;
  auto r = DecryptEncryptedEnv(w.decryptor.get(), {entry}, {{"PLAIN", "p"}}, kTaskId, now, &detail);
  INFO(r.status().message() << " / " << detail);
  REQUIRE(r.ok());
  CHECK(*r == EnvVars{{kName, kValue}});
}

TEST_CASE("encryptedEnv (gpg): every check fails with upstream's message", "[integration]") {
  Worker& w = SharedWorker();
  const int64_t now = NowMs();
  auto msg = [&](const std::string& name, const std::string& version, const std::string& task,
                 int64_t start, int64_t end) {
    return "{\"messageVersion\":" + version + ",\"taskId\":\"" + task +
           "\",\"startTime\":" + std::to_string(start) + ",\"endTime\":" + std::to_string(end) +
           ",\"name\":\"" + name + "\",\"value\":\"" + kValue + "\"}";
  };
  struct Case {
    std::string plaintext;
    EnvVars payload_env;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {msg("TASK_ID", "1", kTaskId, now, now),
       {},
       "an environment variable conflicts with an existing environment variable"},
      {msg("RUN_ID", "1", kTaskId, now, now),
       {},
       "an environment variable conflicts with an existing environment variable"},
      {msg(kName, "2", kTaskId, now, now),
       {{kName, "x"}},
       "an environment variable has been duplicated in the task payload"},
      {msg(kName, "2", kTaskId, now, now), {}, "the version of the message is not supported"},
      {msg(kName, "1", "aaaaaaaaaaaaaaaaaaaaaa", now, now),
       {},
       "the taskId of the env payload does not match the taskId of the task"},
      {msg(kName, "1", kTaskId, now + 60000, now + 120000),
       {},
       "the start time in the env payload is in the future"},
      {msg(kName, "1", kTaskId, now - 120000, now - 60000),
       {},
       "the end time in the env payload is in the past"},
      {"not json at all " + kValue, {}, "the decrypted env entry is not a valid env message"},
  };
  for (const Case& c : cases) {
    INFO(c.expect);
    std::string detail;
    auto r = DecryptEncryptedEnv(w.decryptor.get(), {w.Entry(c.plaintext)}, c.payload_env, kTaskId,
                                 now, &detail);
    CHECK(Violation(r, detail) == c.expect);
  }
  // The loose version compare accepts the string "1".
  std::string detail;
  auto r = DecryptEncryptedEnv(w.decryptor.get(), {w.Entry(msg(kName, "\"1\"", kTaskId, now, now))},
                               {}, kTaskId, now, &detail);
  CHECK(r.ok());
  // A duplicate of an earlier encrypted entry.
  std::string e = w.Entry(msg(kName, "1", kTaskId, now, now));
  r = DecryptEncryptedEnv(w.decryptor.get(), {e, e}, {}, kTaskId, now, &detail);
  CHECK(Violation(r, detail) == "an environment variable has been duplicated in the task payload");
}

TEST_CASE("encryptedEnv (gpg): a message made by the gpg CLI decrypts", "[integration]") {
  Worker& w = SharedWorker();
  TempDir dir;
  const int64_t now = NowMs();
  WriteFile(dir / "plain.json", EnvMessagePlaintext(kTaskId, kName, kValue, now, now + 1000));
  REQUIRE(w.keys.Gpg({"--trust-model", "always", "--recipient", w.keys.fingerprint(), "--output",
                      dir / "msg.gpg", "--encrypt", dir / "plain.json"}) == 0);
  auto r = DecryptEncryptedEnv(w.decryptor.get(), {Base64Encode(ReadFile(dir / "msg.gpg"))}, {}, kTaskId,
                               now, nullptr);
  INFO(r.status().message());
  REQUIRE(r.ok());
  CHECK(*r == EnvVars{{kName, kValue}});
}

TEST_CASE("encrypt-env (gpg): the built binary has the verb, and its entry decrypts",
          "[integration]") {
  Worker& w = SharedWorker();
  TempDir dir;
  auto done = testing::RunProcess({testing::WorkerBinary(), "encrypt-env", "--public-key",
                                   w.keys.public_key_path(), "--task-id", kTaskId, "--name",
                                   kName, "--value", kValue},
                                  {}, dir / "out", dir / "err");
  INFO(ReadFile(dir / "err"));
  REQUIRE(done.exit_code == 0);
  std::string entry = ReadFile(dir / "out");
  REQUIRE(!entry.empty());
  entry.pop_back();  // the newline
  auto r = DecryptEncryptedEnv(w.decryptor.get(), {entry}, {}, kTaskId, NowMs(), nullptr);
  REQUIRE(r.ok());
  CHECK(*r == EnvVars{{kName, kValue}});
}

TEST_CASE("encrypt-env (gpg): --value-file takes the value's bytes from a file or stdin",
          "[integration]") {
  Worker& w = SharedWorker();
  TempDir dir;
  const std::string value = "line one\nline two = \"quoted\"\n";  // kept exactly, newline too
  WriteFile(dir / "value.txt", value);
  auto entry_of = [&](const std::vector<std::string>& args) {
    std::string command = "exec '" + testing::WorkerBinary() + "' encrypt-env";
    for (const auto& a : args) command += " '" + a + "'";
    auto done = testing::RunProcess({"/bin/sh", "-c", command + " < '" + (dir / "value.txt") + "'"},
                                    {}, dir / "out", dir / "err");
    INFO(ReadFile(dir / "err"));
    REQUIRE(done.exit_code == 0);
    std::string entry = ReadFile(dir / "out");
    REQUIRE(!entry.empty());
    entry.pop_back();
    return entry;
  };
  const std::vector<std::string> common = {"--public-key", w.keys.public_key_path(), "--task-id",
                                           kTaskId, "--name", kName};
  for (const std::string& source : {std::string("-"), dir / "value.txt"}) {
    auto args = common;
    args.push_back("--value-file");
    args.push_back(source);
    std::string detail;
    const std::string entry = entry_of(args);
    auto r = DecryptEncryptedEnv(w.decryptor.get(), {entry}, {}, kTaskId, NowMs(), &detail);
    INFO(source << ": " << detail);
    REQUIRE(r.ok());
    CHECK(*r == EnvVars{{kName, value}});
  }
  WriteFile(dir / "nul.txt", std::string("a\0b", 3));
  std::ostringstream out, err;
  auto args = common;
  args.insert(args.end(), {"--value-file", dir / "nul.txt"});
  CHECK(EncryptEnvCommand(args, out, err) == 64);
  CHECK(err.str().find("NUL") != std::string::npos);
}

TEST_CASE("encrypt-env (gpg): the command's entry decrypts with gpg and the worker",
          "[integration]") {
  Worker& w = SharedWorker();
  std::ostringstream out, err;
  const int64_t before = NowMs();
  int code = EncryptEnvCommand({"--public-key", w.keys.public_key_path(), "--task-id", kTaskId,
                                "--name", kName, "--value=" + kValue, "--valid-for", "30m"},
                               out, err);
  const int64_t after = NowMs();
  INFO(err.str());
  REQUIRE(code == 0);
  CHECK(err.str().empty());
  std::string entry = out.str();
  REQUIRE(!entry.empty());
  CHECK(entry.back() == '\n');
  entry.pop_back();
  CHECK(entry.find(kValue) == std::string::npos);

  // gpg reads it (binary, unarmored) and sees upstream's plaintext.
  TempDir dir;
  std::string binary = Unb64(entry);
  CHECK((static_cast<unsigned char>(binary[0]) & 0x80) != 0);  // an OpenPGP packet, not armor
  WriteFile(dir / "msg.gpg", binary);
  REQUIRE(w.keys.Gpg({"--output", dir / "plain.json", "--decrypt", dir / "msg.gpg"}) == 0);
  auto doc = json::Parse(ReadFile(dir / "plain.json"));
  REQUIRE(doc.ok());
  CHECK(json::GetInt(*doc, "messageVersion") == 1);
  CHECK(json::GetString(*doc, "taskId") == kTaskId);
  CHECK(json::GetString(*doc, "name") == kName);
  CHECK(json::GetString(*doc, "value") == kValue);
  int64_t start = json::GetInt(*doc, "startTime").value_or(0);
  CHECK(start >= before);
  CHECK(start <= after);
  CHECK(json::GetInt(*doc, "endTime") == start + 30 * 60 * 1000);

  auto r = DecryptEncryptedEnv(w.decryptor.get(), {entry}, {}, kTaskId, after, nullptr);
  REQUIRE(r.ok());
  CHECK(*r == EnvVars{{kName, kValue}});
}

TEST_CASE("encryptedEnv (gpg): corrupted, foreign and unencrypted messages fail", "[integration]") {
  Worker& w = SharedWorker();
  const int64_t now = NowMs();
  const std::string plaintext = EnvMessagePlaintext(kTaskId, kName, kValue, now, now + 1000);
  const std::string kUndecryptable = "the encrypted env entry could not be decrypted";

  SECTION("corrupted") {
    std::string binary = Unb64(w.Entry(plaintext));
    for (size_t i = binary.size() / 2; i < binary.size() / 2 + 8; ++i) binary[i] ^= 0x5a;
    std::string detail;
    auto r = DecryptEncryptedEnv(w.decryptor.get(), {Base64Encode(binary)}, {}, kTaskId, now, &detail);
    CHECK(Violation(r, detail) == kUndecryptable);
    binary.resize(binary.size() / 3);  // truncated
    r = DecryptEncryptedEnv(w.decryptor.get(), {Base64Encode(binary)}, {}, kTaskId, now, &detail);
    CHECK(Violation(r, detail) == kUndecryptable);
    r = DecryptEncryptedEnv(w.decryptor.get(), {Base64Encode("garbage bytes")}, {}, kTaskId, now, &detail);
    CHECK(Violation(r, detail) == kUndecryptable);
    r = DecryptEncryptedEnv(w.decryptor.get(), {""}, {}, kTaskId, now, &detail);
    CHECK(Violation(r, detail) == kUndecryptable);
  }
  SECTION("bad base64") {
    std::string detail;
    auto r = DecryptEncryptedEnv(w.decryptor.get(), {"!!" + w.Entry(plaintext)}, {}, kTaskId, now,
                                 &detail);
    CHECK(Violation(r, detail) == "the encrypted env entry is not valid base64");
  }
  SECTION("another key") {
    GpgKeyPair other("someone else <other@example.invalid>");
    REQUIRE(other.ok());
    auto entry = EncryptEnvEntry(other.PublicKey(), plaintext);
    REQUIRE(entry.ok());
    std::string detail;
    auto r = DecryptEncryptedEnv(w.decryptor.get(), {*entry}, {}, kTaskId, now, &detail);
    CHECK(Violation(r, detail) == kUndecryptable);
    INFO(detail);
    CHECK(detail.find("decryption failed") != std::string::npos);
  }
  SECTION("not encrypted, or only to a passphrase") {
    TempDir dir;
    WriteFile(dir / "plain.json", plaintext);
    REQUIRE(w.keys.Gpg({"--output", dir / "stored.gpg", "--store", dir / "plain.json"}) == 0);
    REQUIRE(w.keys.Gpg({"--pinentry-mode", "loopback", "--passphrase", "pw", "--output",
                        dir / "sym.gpg", "--symmetric", dir / "plain.json"}) == 0);
    for (const char* file : {"stored.gpg", "sym.gpg"}) {
      INFO(file);
      std::string detail;
      auto r = DecryptEncryptedEnv(w.decryptor.get(), {Base64Encode(ReadFile(dir / file))}, {}, kTaskId, now,
                                   &detail);
      CHECK(Violation(r, detail) == kUndecryptable);
    }
  }
}

TEST_CASE("encryptedEnv (gpg): key file problems name the path", "[integration]") {
  TempDir dir;
  auto missing = EnvDecryptor::FromKeyFile(dir / "absent.asc");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().message().find(dir / "absent.asc") != std::string::npos);
  CHECK(missing.status().message().find("No such file") != std::string::npos);

  WriteFile(dir / "garbage.asc", "this is not a key");
  auto garbage = EnvDecryptor::FromKeyFile(dir / "garbage.asc");
  REQUIRE_FALSE(garbage.ok());
  CHECK(garbage.status().message().find(dir / "garbage.asc") != std::string::npos);

  Worker& w = SharedWorker();
  auto pub = EnvDecryptor::FromKeyFile(w.keys.public_key_path());
  REQUIRE_FALSE(pub.ok());
  CHECK(pub.status().message().find("no OpenPGP secret key") != std::string::npos);
  CHECK(pub.status().message().find(w.keys.public_key_path()) != std::string::npos);

  // encrypt-env: a key file that holds no key is a usage error naming the path.
  std::ostringstream out, err;
  CHECK(EncryptEnvCommand({"--public-key", dir / "garbage.asc", "--task-id", kTaskId, "--name",
                           kName, "--value", kValue},
                          out, err) == 64);
  CHECK(err.str().find(dir / "garbage.asc") != std::string::npos);
  CHECK(err.str().find(kValue) == std::string::npos);
}

TEST_CASE("encryptedEnv (gpg): one decryptor serves several threads", "[integration]") {
  Worker& w = SharedWorker();
  const int64_t now = NowMs();
  std::vector<std::string> entries;
  for (int i = 0; i < 4; ++i) {
    entries.push_back(w.Entry(EnvMessagePlaintext(kTaskId, "V" + std::to_string(i),
                                                  "value" + std::to_string(i), now, now + 1000)));
  }
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      for (int n = 0; n < 3; ++n) {
        auto r = DecryptEncryptedEnv(w.decryptor.get(), {entries[i]}, {}, kTaskId, now, nullptr);
        if (r.ok() && r->size() == 1 && (*r)[0].second == "value" + std::to_string(i)) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(ok == 12);
}

TEST_CASE("encryptedEnv (gpg): the private home's gpg-agent is stopped and the home removed",
          "[integration]") {
  GpgKeyPair keys;
  REQUIRE(keys.ok());
  auto home = GpgHome::Create();
  REQUIRE(home.ok());
  const std::string path = (*home)->path();
  CHECK(path.size() < 40);
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);

  auto imported = (*home)->Import(keys.PrivateKey());
  REQUIRE(imported.ok());
  CHECK(imported->secret_keys == 1);
  CHECK(imported->fingerprints == std::vector<std::string>{keys.fingerprint()});
  CHECK(testing::ProcessMentions(path));  // importing a secret key started the agent

  (*home)->StopAgent();  // KILLAGENT through GPGME; the home still exists
  CHECK(std::filesystem::exists(path));
  CHECK(testing::WaitNoProcessMentions(path));
  (*home)->StopAgent();  // idempotent

  // A stopped agent is restarted on demand.
  auto entry = EncryptEnvEntry(keys.PublicKey(), "hello");
  REQUIRE(entry.ok());
  auto plain = (*home)->Decrypt(Unb64(*entry));
  REQUIRE(plain.ok());
  CHECK(*plain == "hello");
  CHECK(testing::ProcessMentions(path));

  home->reset();
  CHECK_FALSE(std::filesystem::exists(path));
  CHECK(testing::WaitNoProcessMentions(path));
}

}  // namespace
}  // namespace docker_worker
