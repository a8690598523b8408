// Chain of trust: keys, the document's exact bytes, signatures and tamper detection, the
// artifact checks, and the chainOfTrust feature on the fakes.
#include "docker_worker/chain_of_trust.h"

#include <sodium.h>

#include <catch2/catch.hpp>
#include <thread>

#include "docker_worker/base64.h"
#include "docker_worker/features.h"
#include "docker_worker/task_run.h"
#include "fakes/fake_docker_engine.h"
#include "fakes/fake_run_queue.h"
#include "fakes/manual_clock.h"
#include "fakes/temp_dir.h"

namespace docker_worker {
namespace {

using testing::FakeDockerEngine;
using testing::FakeRunQueue;
using testing::ManualClock;
using testing::ReadFile;
using testing::TempDir;
using testing::WriteFile;

const char* kXfooSha = "cebff86446aff2b1039749f09ef2922f9ad4f35ea2576a84e206708d8e8bf7b4";
const char* kBarSha = "7d865e959b2466918c9863afca942d0fb89d7c9ac0c99bafc3749504ded97730";

// A fresh key pair as base64 texts (secret: 64 bytes, public: 32 bytes).
struct KeyPair {
  std::string secret_b64;
  std::string public_b64;
  unsigned char pk[crypto_sign_PUBLICKEYBYTES];
  unsigned char sk[crypto_sign_SECRETKEYBYTES];
  KeyPair() {
    REQUIRE(sodium_init() >= 0);
    crypto_sign_keypair(pk, sk);
    secret_b64 = Base64Encode(sk, sizeof sk);
    public_b64 = Base64Encode(pk, sizeof pk);
  }
};

// ---------------------------------------------------------------------------------------------
// Keys

TEST_CASE("cot: a 64-byte base64 secret key parses, its public half is derived", "[unit]") {
  KeyPair kp;
  auto key = cot::SigningKey::Parse(kp.secret_b64 + "\n");
  REQUIRE(key.ok());
  CHECK(key->public_key().Base64() == kp.public_b64);
  auto pub = cot::PublicKey::Parse(kp.public_b64);
  REQUIRE(pub.ok());
  CHECK(pub->Base64() == kp.public_b64);
  // A secret key file is accepted where a public key is expected.
  auto from_secret = cot::PublicKey::Parse(kp.secret_b64);
  REQUIRE(from_secret.ok());
  CHECK(from_secret->Base64() == kp.public_b64);
  // Padding is optional.
  std::string unpadded = kp.secret_b64;
  while (!unpadded.empty() && unpadded.back() == '=') unpadded.pop_back();
  CHECK(cot::SigningKey::Parse(unpadded).ok());
}

TEST_CASE("cot: keys of the wrong length or not base64 are refused without key bytes", "[unit]") {
  KeyPair kp;
  auto short_key = cot::SigningKey::Parse(kp.public_b64);  // 32 bytes
  REQUIRE_FALSE(short_key.ok());
  CHECK(short_key.status().message() ==
        "ed25519 secret key: decodes to 32 bytes; expected 64 (32-byte seed + 32-byte public "
        "key)");
  auto not_b64 = cot::SigningKey::Parse("this is *not* base64!");
  REQUIRE_FALSE(not_b64.ok());
  CHECK(not_b64.status().message() == "ed25519 secret key: not valid base64");
  auto empty = cot::SigningKey::Parse("");
  REQUIRE_FALSE(empty.ok());
  CHECK(empty.status().message().find("decodes to 0 bytes") != std::string::npos);
  auto bad_pub = cot::PublicKey::Parse(Base64Encode(kp.pk, 31));
  REQUIRE_FALSE(bad_pub.ok());
  CHECK(bad_pub.status().message().find("decodes to 31 bytes") != std::string::npos);

  // Secret key whose public half is not the seed's.
  unsigned char tampered[crypto_sign_SECRETKEYBYTES];
  std::memcpy(tampered, kp.sk, sizeof tampered);
  tampered[40] ^= 1;
  auto mismatched = cot::SigningKey::Parse(Base64Encode(tampered, sizeof tampered));
  REQUIRE_FALSE(mismatched.ok());
  CHECK(mismatched.status().message().find("does not match its seed") != std::string::npos);
  for (const auto* s : {&short_key.status(), &mismatched.status()}) {
    CHECK(s->message().find(kp.public_b64.substr(0, 12)) == std::string::npos);
    CHECK(s->message().find(kp.secret_b64.substr(0, 12)) == std::string::npos);
  }
}

TEST_CASE("cot: key files: errors name the path, never the content", "[unit]") {
  TempDir dir;
  KeyPair kp;
  auto missing = cot::SigningKey::ReadFile(dir / "nope.key");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().message() ==
        "cannot read " + (dir / "nope.key") + ": No such file or directory");
  WriteFile(dir / "short.key", kp.public_b64 + "\n");
  auto bad = cot::SigningKey::ReadFile(dir / "short.key");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().rfind(dir / "short.key" + ": ed25519 secret key: decodes to 32",
                                     0) == 0);
  CHECK(bad.status().message().find(kp.public_b64) == std::string::npos);
  WriteFile(dir / "good.key", kp.secret_b64 + "\n");
  CHECK(cot::SigningKey::ReadFile(dir / "good.key").ok());
  WriteFile(dir / "good.pub", kp.public_b64);
  CHECK(cot::PublicKey::ReadFile(dir / "good.pub").ok());
}

// ---------------------------------------------------------------------------------------------
// Signatures

TEST_CASE("cot: sign and verify round trip, any changed byte fails", "[unit]") {
  KeyPair kp;
  auto key = cot::SigningKey::Parse(kp.secret_b64);
  REQUIRE(key.ok());
  std::string message = "{\n  \"chainOfTrustVersion\": 1\n}";
  std::string sig = key->Sign(message);
  CHECK(sig.size() == cot::kSignatureBytes);
  auto pub = cot::PublicKey::Parse(kp.public_b64);
  REQUIRE(pub.ok());
  CHECK(pub->Verify(message, sig));
  // libsodium's own verifier agrees (detached signature over the exact bytes).
  CHECK(crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(sig.data()),
                                    reinterpret_cast<const unsigned char*>(message.data()),
                                    message.size(), kp.pk) == 0);
  for (size_t i = 0; i < message.size(); ++i) {
    std::string changed = message;
    changed[i] ^= 0x20;
    CHECK_FALSE(pub->Verify(changed, sig));
  }
  CHECK_FALSE(pub->Verify(message + "\n", sig));
  std::string bad_sig = sig;
  bad_sig[10] ^= 1;
  CHECK_FALSE(pub->Verify(message, bad_sig));
  CHECK_FALSE(pub->Verify(message, sig.substr(0, 63)));
  KeyPair other;
  CHECK_FALSE(cot::PublicKey::Parse(other.public_b64)->Verify(message, sig));
}

// ---------------------------------------------------------------------------------------------
// The document

TEST_CASE("cot: the document has upstream's fields, order and 2-space layout", "[unit]") {
  auto task = json::Parse(R"({"provisionerId": "prov", "workerType": "wt",
      "scopes": [], "extra": {}, "payload": {"image": "busybox", "maxRunTime": 600,
      "env": {"A": "caf\u00e9 \"q\""}}, "tags": {"2": "b", "1": "a"}})");
  REQUIRE(task.ok());
  cot::DocumentInputs in;
  in.artifacts = {{"public/xfoo", kXfooSha}, {"public/bar", kBarSha}};
  in.task = &*task;
  in.task_id = "dSlITZ4yQgmvxxAi4A8fHQ";
  in.run_id = 2;
  in.worker_group = "local";
  in.worker_id = "worker-1";
  in.public_ip = "203.0.113.7";
  in.private_ip = "10.0.0.7";
  in.image_hash = "sha256:abc";
  in.region = "us-east-1";
  std::string expected = std::string(R"({
  "chainOfTrustVersion": 1,
  "artifacts": {
    "public/bar": {
      "sha256": "7d865e959b2466918c9863afca942d0fb89d7c9ac0c99bafc3749504ded97730"
    },
    "public/xfoo": {
      "sha256": "cebff86446aff2b1039749f09ef2922f9ad4f35ea2576a84e206708d8e8bf7b4"
    }
  },
  "task": {
    "provisionerId": "prov",
    "workerType": "wt",
    "scopes": [],
    "extra": {},
    "payload": {
      "image": "busybox",
      "maxRunTime": 600,
      "env": {
        "A": "caf)") + "\xC3\xA9" +
                         R"( \"q\""
      }
    },
    "tags": {
      "1": "a",
      "2": "b"
    }
  },
  "taskId": "dSlITZ4yQgmvxxAi4A8fHQ",
  "runId": 2,
  "workerGroup": "local",
  "workerId": "worker-1",
  "environment": {
    "publicIpAddress": "203.0.113.7",
    "privateIpAddress": "10.0.0.7",
    "imageHash": "sha256:abc",
    "region": "us-east-1"
  }
})";
  CHECK(cot::BuildDocument(in) == expected);

  // Optional environment members appear only when known, in upstream's order.
  in.image_artifact_hash = "sha256:def";
  in.instance_id = "i-123";
  in.instance_type = "m5.large";
  std::string doc = cot::BuildDocument(in);
  CHECK(doc.find(R"(    "imageHash": "sha256:abc",
    "imageArtifactHash": "sha256:def",
    "instanceId": "i-123",
    "instanceType": "m5.large",
    "region": "us-east-1"
  }
})") != std::string::npos);
  auto hashes = cot::ArtifactHashes(doc);
  REQUIRE(hashes.ok());
  CHECK(*hashes == in.artifacts);
}

TEST_CASE("cot: an empty run still makes a well-formed document", "[unit]") {
  cot::DocumentInputs in;
  std::string doc = cot::BuildDocument(in);
  CHECK(doc.find("  \"artifacts\": {},\n  \"task\": {},\n") != std::string::npos);
  CHECK(doc.find("\"imageHash\": \"\"\n  }\n}") != std::string::npos);
  CHECK(doc.find("imageArtifactHash") == std::string::npos);
  CHECK(doc.find("instanceId") == std::string::npos);
}

TEST_CASE("cot: documents that are not version 1 or have bad hashes are refused", "[unit]") {
  CHECK_FALSE(cot::ArtifactHashes("not json").ok());
  CHECK_FALSE(cot::ArtifactHashes("[]").ok());
  CHECK(cot::ArtifactHashes(R"({"chainOfTrustVersion": 2, "artifacts": {}})").status().message() ==
        "chain-of-trust document: chainOfTrustVersion is not 1");
  CHECK_FALSE(cot::ArtifactHashes(R"({"chainOfTrustVersion": 1})").ok());
  CHECK(cot::ArtifactHashes(R"({"chainOfTrustVersion": 1, "artifacts": {"a": {"sha256": "AB"}}})")
            .status()
            .message() == "chain-of-trust document: artifact \"a\" has no 64-digit hex sha256");
  auto ok = cot::ArtifactHashes(R"({"chainOfTrustVersion": 1, "artifacts": {}})");
  REQUIRE(ok.ok());
  CHECK(ok->empty());
}

TEST_CASE("cot: artifact files are checked: ok, one changed byte, missing, unsafe name", "[unit]") {
  TempDir dir;
  WriteFile(dir / "public/xfoo", "xfoo\n");
  WriteFile(dir / "public/bar", "baR\n");
  WriteFile(dir / "secret", "bar\n");
  std::map<std::string, std::string> expected = {{"public/xfoo", kXfooSha},
                                                 {"public/bar", kBarSha},
                                                 {"public/gone", kBarSha},
                                                 {"../secret", kBarSha}};
  auto checks = cot::CheckArtifactFiles(expected, dir / "public/..");
  REQUIRE(checks.size() == 4);
  using State = cot::ArtifactCheck::State;
  CHECK(checks[0].name == "../secret");
  CHECK(checks[0].state == State::kBadName);
  CHECK(checks[1].name == "public/bar");
  CHECK(checks[1].state == State::kMismatch);
  CHECK(checks[1].expected == kBarSha);
  CHECK(checks[1].actual.size() == 64);
  CHECK(checks[2].name == "public/gone");
  CHECK(checks[2].state == State::kMissing);
  CHECK(checks[3].name == "public/xfoo");
  CHECK(checks[3].state == State::kOk);
  CHECK(checks[3].actual == kXfooSha);
}

// ---------------------------------------------------------------------------------------------
// The feature

struct CotHarness {
  WorkerConfig config = WorkerConfig::Defaults();
  FakeDockerEngine docker;
  FakeRunQueue queue;
  ManualClock clock;
  TempDir dir;
  KeyPair keys;
  std::unique_ptr<TaskRun> run;

  CotHarness() {
    docker.AddImage("busybox:latest", "sha256:busybox");
    config.worker_id = "worker-1";
    config.worker_group = "group-1";
    config.public_ip = "203.0.113.7";
    config.private_ip = "10.0.0.7";
    config.ed25519_signing_key_location = dir / "cot.key";
    WriteFile(config.ed25519_signing_key_location, keys.secret_b64 + "\n");
  }

  TaskRun& Make(const std::string& payload) {
    auto doc = json::Parse(R"({"provisionerId": "prov", "workerType": "wt",
        "expires": "2030-01-01T00:00:00.000Z", "payload": )" +
                           payload + "}");
    REQUIRE(doc.ok());
    auto def = TaskDefinition::FromJson(std::move(*doc), {"prov", "wt", clock.Now()});
    REQUIRE(def.ok());
    run = std::make_unique<TaskRun>(TaskRun::Inputs{
        .config = config,
        .task = std::move(*def),
        .task_id = "dSlITZ4yQgmvxxAi4A8fHQ",
        .run_id = 1,
        .queue = queue,
        .docker = docker,
        .clock = clock,
        .work_dir = dir / "work",
        .backing_log_path = dir / "live_backing.log",
        .log_sinks = {},
        .before_resolve = {},
        .live_log_server = nullptr,
        .expand_scopes = {},
    });
    return *run;
  }

  std::string Content(const std::string& name) {
    auto arts = queue.artifacts();
    return arts.count(name) ? arts[name].content : "";
  }
};

const char* kCotPayload = R"({"image": "busybox:latest", "maxRunTime": 60,
    "features": {"chainOfTrust": true},
    "artifacts": {"public/xfoo": {"type": "file", "path": "/out/xfoo"},
                  "public/bar": {"type": "file", "path": "/out/bar"}}})";

TEST_CASE("chainOfTrust: signs the hashes of every artifact and of the certified log", "[unit]") {
  CotHarness h;
  h.docker.AddFile("/out/xfoo", "xfoo\n");
  h.docker.AddFile("/out/bar", "bar\n");
  RunResult r = h.Make(kCotPayload).Run();
  REQUIRE(r.resolution == Resolution::Completed());
  auto arts = h.queue.artifacts();
  REQUIRE(arts.count(cot::kDocumentName));
  REQUIRE(arts.count(cot::kSignatureName));
  REQUIRE(arts.count(cot::kCertifiedLogName));
  const auto& doc = arts[cot::kDocumentName];
  const auto& sig = arts[cot::kSignatureName];
  const auto& log = arts[cot::kCertifiedLogName];
  CHECK(doc.artifact.content_type == "text/plain");
  CHECK(sig.artifact.content_type == "application/octet-stream");
  CHECK(log.artifact.content_type == "text/plain");
  for (const auto* a : {&doc, &sig, &log}) {
    CHECK(a->artifact.kind == Artifact::Kind::kFile);
    CHECK(a->artifact.expires == arts["public/xfoo"].artifact.expires);
  }
  // The certified log is the backing log, byte for byte.
  CHECK(log.content == ReadFile(h.dir / "live_backing.log"));
  CHECK(log.content == arts["public/logs/live_backing.log"].content);

  auto pub = cot::PublicKey::Parse(h.keys.public_b64);
  REQUIRE(pub.ok());
  CHECK(sig.content.size() == 64);
  CHECK(pub->Verify(doc.content, sig.content));

  auto hashes = cot::ArtifactHashes(doc.content);
  REQUIRE(hashes.ok());
  CHECK(hashes->at("public/xfoo") == kXfooSha);
  CHECK(hashes->at("public/bar") == kBarSha);
  CHECK(hashes->at(cot::kCertifiedLogName) == h.run->log().sha256_hex());
  CHECK(hashes->size() == 3);  // the live log's backing upload comes after (reverse order)

  auto parsed = json::Parse(doc.content);
  REQUIRE(parsed.ok());
  CHECK(json::GetString(*parsed, "taskId") == "dSlITZ4yQgmvxxAi4A8fHQ");
  CHECK(json::GetInt(*parsed, "runId") == 1);
  CHECK(json::GetString(*parsed, "workerGroup") == "group-1");
  CHECK(json::GetString(*parsed, "workerId") == "worker-1");
  const json::Value* task = json::FindObject(*parsed, "task");
  REQUIRE(task);
  CHECK(json::GetString(*task, "expires") == "2030-01-01T00:00:00.000Z");
  CHECK(json::FindObject(*task, "payload") != nullptr);
  const json::Value* env = json::FindObject(*parsed, "environment");
  REQUIRE(env);
  CHECK(json::GetString(*env, "publicIpAddress") == "203.0.113.7");
  CHECK(json::GetString(*env, "privateIpAddress") == "10.0.0.7");
  CHECK(json::GetString(*env, "imageHash") == "sha256:busybox");
  CHECK(json::Find(*env, "imageArtifactHash") == nullptr);
  CHECK(json::GetString(*env, "instanceId") == "standalone");  // the config default
  CHECK(json::GetString(*env, "region") == "none");
  CHECK(json::Find(*env, "instanceType") == nullptr);
  // The document is the serialisation of itself (JSON.stringify(x, null, 2)).
  CHECK(doc.content.rfind("{\n  \"chainOfTrustVersion\": 1,\n  \"artifacts\": {\n", 0) == 0);
}

TEST_CASE("chainOfTrust: a failed task is certified too", "[unit]") {
  CotHarness h;
  h.docker.behaviour = [](const ContainerSpec&) {
    return FakeDockerEngine::Behaviour{"oops\n", 3, false};
  };
  RunResult r = h.Make(kCotPayload).Run();
  CHECK(r.resolution == Resolution::Failed());
  CHECK(h.queue.artifacts().count(cot::kDocumentName) == 1);
}

TEST_CASE("chainOfTrust: a missing or bad key fails the task before the container runs", "[unit]") {
  CotHarness h;
  SECTION("missing") { h.config.ed25519_signing_key_location = h.dir / "absent.key"; }
  SECTION("wrong length") { WriteFile(h.config.ed25519_signing_key_location, h.keys.public_b64); }
  RunResult r = h.Make(kCotPayload).Run();
  CHECK(r.resolution == Resolution::Failed());
  CHECK(h.docker.created().empty());
  std::string log = h.Content("public/logs/live_backing.log");
  CHECK(log.find("Error calling 'created' for chainOfTrust : cannot load the "
                 "ed25519 signing key (config ed25519SigningKeyLocation): ") != std::string::npos);
  CHECK(log.find(h.config.ed25519_signing_key_location) != std::string::npos);
  CHECK(log.find(h.keys.public_b64) == std::string::npos);
  CHECK(h.queue.artifacts().count(cot::kDocumentName) == 0);
  CHECK(h.queue.artifacts().count(cot::kCertifiedLogName) == 0);
}

TEST_CASE("chainOfTrust: nothing is certified when the run is canceled or aborted", "[unit]") {
  bool cancel = GENERATE(true, false);
  CotHarness h;
  h.docker.behaviour = [](const ContainerSpec&) {
    return FakeDockerEngine::Behaviour{"", 0, true};
  };
  auto& run = h.Make(kCotPayload);
  RunResult r;
  std::thread t([&] { r = run.Run(); });
  h.docker.WaitUntilRunning();
  if (cancel) {
    run.Cancel();
  } else {
    run.Abort("worker-shutdown");
  }
  t.join();
  auto arts = h.queue.artifacts();
  CHECK(arts.count(cot::kDocumentName) == 0);
  CHECK(arts.count(cot::kSignatureName) == 0);
  CHECK(arts.count(cot::kCertifiedLogName) == 0);
  if (!cancel) CHECK(arts.count("public/logs/live_backing.log") == 1);
}

// The feature object directly: Stop honours the outcome flags, and names are reserved.
struct FeatureHarness {
  WorkerConfig config = WorkerConfig::Defaults();
  FakeDockerEngine docker;
  FakeRunQueue queue;
  ManualClock clock;
  TempDir dir;
  KeyPair keys;
  TaskDefinition task;
  TaskLog log{clock};
  std::unique_ptr<TaskContext> ctx;

  FeatureHarness() {
    config.ed25519_signing_key_location = dir / "cot.key";
    WriteFile(config.ed25519_signing_key_location, keys.secret_b64);
    auto doc = json::Parse(R"({"payload": {}})");
    task = *TaskDefinition::FromJson(std::move(*doc), {"p", "w", clock.Now()});
    auto sink = FileLogSink::Create(dir / "backing.log");
    REQUIRE(sink.ok());
    log.AddSink(std::shared_ptr<LogSink>(std::move(*sink)));
    log.Info("hello");
    log.Close();
    ctx =
        std::make_unique<TaskContext>(config, task, "dSlITZ4yQgmvxxAi4A8fHQ", 0, queue, docker, log,
                                      clock, std::stop_token(), dir / "work", dir / "backing.log");
  }
};

TEST_CASE("chainOfTrust: Stop skips canceled and aborted runs, certifies others", "[unit]") {
  FeatureHarness h;
  auto feature = MakeChainOfTrustFeature();
  CHECK(feature->Name() == "chainOfTrust");
  CHECK(feature->ReservedArtifacts(*h.ctx) ==
        std::vector<std::string>{"public/logs/certified.log", "public/chain-of-trust.json",
                                 "public/chain-of-trust.json.sig"});
  REQUIRE(feature->Start(*h.ctx).ok());
  RunOutcome canceled;
  canceled.canceled = true;
  CHECK(feature->Stop(*h.ctx, canceled).ok());
  RunOutcome aborted;
  aborted.aborted = true;
  CHECK(feature->Stop(*h.ctx, aborted).ok());
  CHECK(h.queue.artifacts().empty());
  RunOutcome failed;
  failed.resolution = Resolution::Failed();
  CHECK(feature->Stop(*h.ctx, failed).ok());
  CHECK(h.queue.artifacts().size() == 3);
  std::lock_guard lock(h.ctx->mu);
  CHECK(h.ctx->artifact_hashes.at(cot::kCertifiedLogName) == h.log.sha256_hex());
}

TEST_CASE("chainOfTrust: Stop without a loaded key does nothing", "[unit]") {
  FeatureHarness h;
  auto feature = MakeChainOfTrustFeature();
  CHECK(feature->Stop(*h.ctx, RunOutcome{}).ok());  // Start never ran (an earlier Link failed)
  CHECK(h.queue.artifacts().empty());
}

TEST_CASE("chainOfTrust: an upload failure is an error naming the artifact", "[unit]") {
  FeatureHarness h;
  h.queue.fail_names = {cot::kSignatureName};
  auto feature = MakeChainOfTrustFeature();
  REQUIRE(feature->Start(*h.ctx).ok());
  Status s = feature->Stop(*h.ctx, RunOutcome{});
  REQUIRE_FALSE(s.ok());
  CHECK(s.message() ==
        "chainOfTrust: cannot upload public/chain-of-trust.json.sig: upload refused");
}

TEST_CASE("chainOfTrust: a backing log that is not the whole task log is not certified", "[unit]") {
  FeatureHarness h;
  WriteFile(h.dir / "backing.log", "something else\n");
  auto feature = MakeChainOfTrustFeature();
  REQUIRE(feature->Start(*h.ctx).ok());
  Status s = feature->Stop(*h.ctx, RunOutcome{});
  REQUIRE_FALSE(s.ok());
  CHECK(s.message().find("is not the whole task log") != std::string::npos);
  CHECK(h.queue.artifacts().empty());
}

}  // namespace
}  // namespace docker_worker
