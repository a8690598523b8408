// chainOfTrust end to end: `docker-worker run` with a signing key on the real engine, the
// signature checked by an independent implementation (node's crypto), then `docker-worker
// verify-cot` on the output folder, before and after tampering with an artifact.
#include "docker_worker/chain_of_trust.h"

#include <sodium.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <sstream>

#include "docker_worker/base64.h"
#include "docker_worker/json.h"
#include "fakes/temp_dir.h"
#include "support/subprocess.h"

namespace docker_worker {
namespace {

using testing::ReadFile;
using testing::TempDir;
using testing::WriteFile;

const char* kXfooSha = "cebff86446aff2b1039749f09ef2922f9ad4f35ea2576a84e206708d8e8bf7b4";
const char* kBarSha = "7d865e959b2466918c9863afca942d0fb89d7c9ac0c99bafc3749504ded97730";

// Verifies with node's own Ed25519 (OpenSSL), hashes the artifacts with node's SHA-256 and
// checks the document is exactly JSON.stringify(JSON.parse(doc), null, 2). Prints one word per
// check; exits 0 only when all hold.
const char* kNodeCheck = R"JS(
const crypto = require('crypto');
const fs = require('fs');
const [x, dir] = process.argv.slice(2);
const key = crypto.createPublicKey({key: {kty: 'OKP', crv: 'Ed25519', x}, format: 'jwk'});
const doc = fs.readFileSync(dir + '/public/chain-of-trust.json');
const sig = fs.readFileSync(dir + '/public/chain-of-trust.json.sig');
const results = [];
const valid = crypto.verify(null, doc, key, sig);
results.push(valid ? 'signature-valid' : 'signature-INVALID');
const tampered = Buffer.from(doc);
tampered[tampered.length - 2] ^= 1;
const tamperedValid = crypto.verify(null, tampered, key, sig);
results.push(tamperedValid ? 'tampered-ACCEPTED' : 'tampered-rejected');
const text = doc.toString('utf8');
const parsed = JSON.parse(text);
const same = JSON.stringify(parsed, null, 2) === text;
results.push(same ? 'stringify-identical' : 'stringify-DIFFERENT');
let hashes = true;
for (const [name, {sha256}] of Object.entries(parsed.artifacts)) {
  const actual = crypto.createHash('sha256').update(fs.readFileSync(dir + '/' + name)).digest('hex');
  if (actual !== sha256) { hashes = false; results.push('hash-MISMATCH:' + name); }
}
results.push(hashes ? 'hashes-match' : 'hashes-DIFFER');
console.log(results.join(' '));
process.exit(valid && !tamperedValid && same && hashes ? 0 : 1);
)JS";

TEST_CASE("chainOfTrust: run signs, node verifies, verify-cot checks and catches tampering",
          "[integration]") {
  REQUIRE(sodium_init() >= 0);
  TempDir dir;
  unsigned char pk[crypto_sign_PUBLICKEYBYTES];
  unsigned char sk[crypto_sign_SECRETKEYBYTES];
  crypto_sign_keypair(pk, sk);
  WriteFile(dir / "cot.key", Base64Encode(sk, sizeof sk) + "\n");
  WriteFile(dir / "cot.pub", Base64Encode(pk, sizeof pk) + "\n");
  WriteFile(dir / "config.json", R"({"ed25519SigningKeyLocation": ")" + (dir / "cot.key") +
                                     R"(", "workerGroup": "cot-group", "workerId": "cot-worker",
      "publicIp": "203.0.113.7", "privateIp": "10.0.0.7",
      "features": {"chainOfTrust": {"enabled": true}}})");
  WriteFile(dir / "payload.json", R"({"image": "taskenv/busybox:latest", "maxRunTime": 60,
      "features": {"chainOfTrust": true},
      "command": ["sh", "-c", "mkdir -p /out && printf 'xfoo\\n' > /out/xfoo && printf 'bar\\n' > /out/bar && echo caf\u00e9"],
      "artifacts": {"public/xfoo": {"type": "file", "path": "/out/xfoo"},
                    "public/bar": {"type": "file", "path": "/out/bar"}}})");
  std::string out = dir / "out";
  std::string artifacts = out + "/artifacts";
  auto run =
      testing::RunProcess({testing::WorkerBinary(), "run", dir / "payload.json", "--output", out,
                           "--config", dir / "config.json", "--task-id", "Tq1cR7nGQmS0bWbVqk2f9A"},
                          {}, dir / "run.stdout", dir / "run.stderr");
  INFO(ReadFile(dir / "run.stderr"));
  REQUIRE(run.exit_code == 0);

  // What was certified.
  std::string doc = ReadFile(artifacts + "/" + cot::kDocumentName);
  std::string sig = ReadFile(artifacts + "/" + cot::kSignatureName);
  REQUIRE(!doc.empty());
  CHECK(sig.size() == 64);
  CHECK(ReadFile(artifacts + "/" + cot::kCertifiedLogName) ==
        ReadFile(out + "/logs/live_backing.log"));
  auto hashes = cot::ArtifactHashes(doc);
  REQUIRE(hashes.ok());
  CHECK(hashes->at("public/xfoo") == kXfooSha);
  CHECK(hashes->at("public/bar") == kBarSha);
  CHECK(hashes->count(cot::kCertifiedLogName) == 1);
  auto parsed = json::Parse(doc);
  REQUIRE(parsed.ok());
  CHECK(json::GetString(*parsed, "taskId") == "Tq1cR7nGQmS0bWbVqk2f9A");
  CHECK(json::GetString(*parsed, "workerId") == "cot-worker");
  CHECK(json::GetString(*parsed, "workerGroup") == "cot-group");
  const json::Value* env = json::FindObject(*parsed, "environment");
  REQUIRE(env);
  CHECK(json::GetString(*env, "publicIpAddress") == "203.0.113.7");
  CHECK(json::GetString(*env, "imageHash").value_or("").rfind("sha256:", 0) == 0);
  auto result = json::Parse(ReadFile(out + "/result.json"));
  REQUIRE(result.ok());
  const json::Value* recorded = json::FindObject(*result, "artifacts");
  REQUIRE(recorded);
  CHECK(json::FindObject(*recorded, cot::kSignatureName));
  CHECK(json::GetString(*json::FindObject(*recorded, cot::kSignatureName), "contentType") ==
        "application/octet-stream");
  CHECK(json::GetString(*json::FindObject(*recorded, cot::kDocumentName), "contentType") ==
        "text/plain");

  // An independent implementation: node's crypto (OpenSSL's Ed25519 and SHA-256).
  std::string node = testing::FindProgram("node");
  REQUIRE_FALSE(node.empty());
  WriteFile(dir / "check.js", kNodeCheck);
  auto node_run =
      testing::RunProcess({node, dir / "check.js",
                           Base64Encode(pk, sizeof pk, Base64::kUrlSafeUnpadded), artifacts},
                          {}, dir / "node.stdout", dir / "node.stderr");
  INFO(ReadFile(dir / "node.stdout") + ReadFile(dir / "node.stderr"));
  CHECK(node_run.exit_code == 0);
  CHECK(ReadFile(dir / "node.stdout") ==
        "signature-valid tampered-rejected stringify-identical hashes-match\n");

  // verify-cot on the output folder.
  auto verify = [&](const std::string& tag) {
    return testing::RunProcess(
        {testing::WorkerBinary(), "verify-cot", out, "--public-key", dir / "cot.pub"}, {},
        dir / (tag + ".stdout"), dir / (tag + ".stderr"));
  };
  auto good = verify("verify-good");
  std::string good_out = ReadFile(dir / "verify-good.stdout");
  INFO(good_out + ReadFile(dir / "verify-good.stderr"));
  CHECK(good.exit_code == 0);
  CHECK(good_out.find("signature ok  public/chain-of-trust.json.sig\n") != std::string::npos);
  CHECK(good_out.find("ok        public/xfoo\n") != std::string::npos);
  CHECK(good_out.find("ok        public/bar\n") != std::string::npos);
  CHECK(good_out.find("ok        public/logs/certified.log\n") != std::string::npos);
  CHECK(good_out.find("chain of trust verified") != std::string::npos);

  // One changed byte in an artifact.
  std::string xfoo = artifacts + "/public/xfoo";
  std::filesystem::remove(xfoo);  // the stored copy may be a hard link; replace, don't modify
  WriteFile(xfoo, "xfoO\n");
  auto bad = verify("verify-bad");
  std::string bad_out = ReadFile(dir / "verify-bad.stdout");
  INFO(bad_out + ReadFile(dir / "verify-bad.stderr"));
  CHECK(bad.exit_code == 1);
  CHECK(bad_out.find("MISMATCH  public/xfoo (expected " + std::string(kXfooSha)) !=
        std::string::npos);
  CHECK(bad_out.find("ok        public/bar\n") != std::string::npos);
  CHECK(bad_out.find("chain of trust NOT verified") != std::string::npos);
}

TEST_CASE("chainOfTrust: run with a missing key fails before the container runs", "[integration]") {
  TempDir dir;
  WriteFile(dir / "config.json",
            R"({"ed25519SigningKeyLocation": ")" + (dir / "absent.key") + R"("})");
  WriteFile(dir / "payload.json", R"({"image": "taskenv/busybox:latest", "maxRunTime": 60,
      "features": {"chainOfTrust": true}, "command": ["sh", "-c", "echo RAN-THE-TASK"]})");
  std::string out = dir / "out";
  auto run = testing::RunProcess({testing::WorkerBinary(), "run", dir / "payload.json", "--output",
                                  out, "--config", dir / "config.json"},
                                 {}, dir / "run.stdout", dir / "run.stderr");
  std::string log = ReadFile(dir / "run.stdout");
  INFO(log + ReadFile(dir / "run.stderr"));
  CHECK(run.exit_code == 1);
  CHECK(log.find("ed25519SigningKeyLocation") != std::string::npos);
  CHECK(log.find(dir / "absent.key") != std::string::npos);
  CHECK(log.find("RAN-THE-TASK\r\n") == std::string::npos);
  CHECK_FALSE(std::filesystem::exists(out + "/artifacts/" + cot::kDocumentName));
}

}  // namespace
}  // namespace docker_worker
