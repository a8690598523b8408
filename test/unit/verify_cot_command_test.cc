// `docker-worker verify-cot`: output lines and exit codes over folders laid out like `run
// --output` and `submit --output`.
#include "docker_worker/verify_cot_command.h"

#include <sodium.h>

#include <catch2/catch.hpp>
#include <sstream>

#include "docker_worker/base64.h"
#include "docker_worker/chain_of_trust.h"
#include "fakes/temp_dir.h"

namespace docker_worker {
namespace {

using testing::ReadFile;
using testing::TempDir;
using testing::WriteFile;

const char* kXfooSha = "cebff86446aff2b1039749f09ef2922f9ad4f35ea2576a84e206708d8e8bf7b4";
const char* kBarSha = "7d865e959b2466918c9863afca942d0fb89d7c9ac0c99bafc3749504ded97730";

// A signed run in `root` (the folder artifact names are relative to) and its keys in `dir`.
struct SignedRun {
  TempDir dir;
  std::string root;
  std::string pub_path = dir / "cot.pub";
  std::string secret_path = dir / "cot.key";

  explicit SignedRun(const std::string& layout = "") : root(dir / ("out" + layout)) {
    REQUIRE(sodium_init() >= 0);
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
    unsigned char sk[crypto_sign_SECRETKEYBYTES];
    crypto_sign_keypair(pk, sk);
    WriteFile(pub_path, Base64Encode(pk, sizeof pk) + "\n");
    WriteFile(secret_path, Base64Encode(sk, sizeof sk) + "\n");
    WriteFile(root + "/public/xfoo", "xfoo\n");
    WriteFile(root + "/public/dir/bar", "bar\n");
    cot::DocumentInputs in;
    in.artifacts = {{"public/xfoo", kXfooSha}, {"public/dir/bar", kBarSha}};
    in.task_id = "dSlITZ4yQgmvxxAi4A8fHQ";
    std::string doc = cot::BuildDocument(in);
    auto key = cot::SigningKey::ReadFile(secret_path);
    REQUIRE(key.ok());
    WriteFile(root + "/" + cot::kDocumentName, doc);
    WriteFile(root + "/" + cot::kSignatureName, key->Sign(doc));
  }

  std::string out_dir() const { return dir / "out"; }
};

struct Outcome {
  int code;
  std::string out;
  std::string err;
};

Outcome Verify(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  int code = VerifyCotCommand(args, out, err);
  return {code, out.str(), err.str()};
}

TEST_CASE("verify-cot: a good run verifies, one line per artifact", "[unit]") {
  SignedRun run;
  auto r = Verify({run.out_dir(), "--public-key", run.pub_path});
  CHECK(r.code == 0);
  CHECK(r.out ==
        "signature ok  public/chain-of-trust.json.sig\n"
        "ok        public/dir/bar\n"
        "ok        public/xfoo\n"
        "verify-cot: 2 artifacts: 2 ok, 0 mismatched, 0 missing; signature ok; chain of trust "
        "verified\n");
  CHECK(r.err.empty());
  // The worker's secret key file works as the key too, and --public-key=KEY.
  CHECK(Verify({"--public-key=" + run.secret_path, run.out_dir()}).code == 0);
}

TEST_CASE("verify-cot: `run --output` layout (DIR/artifacts/<name>) is found", "[unit]") {
  SignedRun run("/artifacts");
  auto r = Verify({run.out_dir(), "--public-key", run.pub_path});
  CHECK(r.code == 0);
  CHECK(r.out.find("chain of trust verified") != std::string::npos);
}

TEST_CASE("verify-cot: a changed artifact byte is a MISMATCH naming it", "[unit]") {
  SignedRun run;
  WriteFile(run.root + "/public/xfoo", "xfoO\n");
  auto r = Verify({run.out_dir(), "--public-key", run.pub_path});
  CHECK(r.code == 1);
  CHECK(r.out.find("ok        public/dir/bar\n") != std::string::npos);
  CHECK(r.out.find("MISMATCH  public/xfoo (expected " + std::string(kXfooSha) + ", got ") !=
        std::string::npos);
  CHECK(r.out.find("2 artifacts: 1 ok, 1 mismatched, 0 missing; signature ok; chain of trust "
                   "NOT verified") != std::string::npos);
}

TEST_CASE("verify-cot: a missing artifact is reported", "[unit]") {
  SignedRun run;
  std::filesystem::remove(run.root + "/public/dir/bar");
  auto r = Verify({run.out_dir(), "--public-key", run.pub_path});
  CHECK(r.code == 1);
  CHECK(r.out.find("missing   public/dir/bar\n") != std::string::npos);
}

TEST_CASE("verify-cot: a changed document byte breaks the signature", "[unit]") {
  SignedRun run;
  std::string path = run.root + "/" + cot::kDocumentName;
  std::string doc = ReadFile(path);
  doc[doc.find("dSlITZ4y")] = 'e';
  WriteFile(path, doc);
  auto r = Verify({run.out_dir(), "--public-key", run.pub_path});
  CHECK(r.code == 1);
  CHECK(r.out.rfind("signature BAD  public/chain-of-trust.json.sig\n", 0) == 0);
  CHECK(r.out.find("signature BAD; chain of trust NOT verified") != std::string::npos);
}

TEST_CASE("verify-cot: another key or no signature fails", "[unit]") {
  SignedRun run;
  SignedRun other;
  CHECK(Verify({run.out_dir(), "--public-key", other.pub_path}).out.find("signature BAD") !=
        std::string::npos);
  std::filesystem::remove(run.root + "/" + cot::kSignatureName);
  auto r = Verify({run.out_dir(), "--public-key", run.pub_path});
  CHECK(r.code == 1);
  CHECK(r.out.rfind("signature missing  ", 0) == 0);
}

TEST_CASE("verify-cot: unsafe artifact names are never opened", "[unit]") {
  SignedRun run;
  cot::DocumentInputs in;
  in.artifacts = {{"../cot.pub", kBarSha}};
  std::string doc = cot::BuildDocument(in);
  auto key = cot::SigningKey::ReadFile(run.secret_path);
  REQUIRE(key.ok());
  WriteFile(run.root + "/" + cot::kDocumentName, doc);
  WriteFile(run.root + "/" + cot::kSignatureName, key->Sign(doc));
  auto r = Verify({run.out_dir(), "--public-key", run.pub_path});
  CHECK(r.code == 1);
  CHECK(r.out.find("BAD NAME  ../cot.pub") != std::string::npos);
}

TEST_CASE("verify-cot: usage errors and bad keys exit 64, no document exits 1", "[unit]") {
  SignedRun run;
  CHECK(Verify({}).code == 64);
  CHECK(Verify({run.out_dir()}).code == 64);
  CHECK(Verify({"--public-key", run.pub_path}).code == 64);
  CHECK(Verify({run.out_dir(), "--public-key"}).code == 64);
  CHECK(Verify({run.out_dir(), "x", "--public-key", run.pub_path}).code == 64);
  CHECK(Verify({run.out_dir(), "--bogus", "--public-key", run.pub_path}).code == 64);
  auto help = Verify({"--help"});
  CHECK(help.code == 0);
  CHECK(help.out.rfind("usage: docker-worker verify-cot DIR --public-key KEY", 0) == 0);

  auto missing_key = Verify({run.out_dir(), "--public-key", run.dir / "nope.pub"});
  CHECK(missing_key.code == 64);
  CHECK(missing_key.err.find("cannot read " + (run.dir / "nope.pub")) != std::string::npos);
  WriteFile(run.dir / "bad.pub", "AAAA\n");
  auto bad_key = Verify({run.out_dir(), "--public-key", run.dir / "bad.pub"});
  CHECK(bad_key.code == 64);
  CHECK(bad_key.err.find("decodes to 3 bytes") != std::string::npos);

  auto not_dir = Verify({run.dir / "nope", "--public-key", run.pub_path});
  CHECK(not_dir.code == 64);
  TempDir empty;
  auto no_doc = Verify({empty.path(), "--public-key", run.pub_path});
  CHECK(no_doc.code == 1);
  CHECK(no_doc.err.find("no public/chain-of-trust.json in " + empty.path()) != std::string::npos);
  WriteFile(run.root + "/" + cot::kDocumentName, "{\"chainOfTrustVersion\": 2}");
  auto bad_doc = Verify({run.out_dir(), "--public-key", run.pub_path});
  CHECK(bad_doc.code == 1);
  CHECK(bad_doc.err.find("chainOfTrustVersion is not 1") != std::string::npos);
}

}  // namespace
}  // namespace docker_worker
