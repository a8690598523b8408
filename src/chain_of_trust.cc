#include "docker_worker/chain_of_trust.h"

#include <sodium.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

#include "docker_worker/read_file.h"
#include "docker_worker/base64.h"
#include "docker_worker/js_stringify.h"
#include "docker_worker/run_queue.h"
#include "docker_worker/sha256.h"

namespace docker_worker::cot {
namespace {

constexpr size_t kMaxKeyFileBytes = 4096;

Status SodiumReady() {
  static const int init = sodium_init();
  if (init < 0) return Status(Code::kInternal, "libsodium failed to initialise");
  return Status::Ok();
}

// Decoded bytes of base64 `text` (standard alphabet, with or without padding, whitespace
// ignored). The caller wipes the result.
Result<std::vector<unsigned char>> DecodeBase64(std::string_view text) {
  if (text.size() > kMaxKeyFileBytes) {
    return Status(Code::kInvalidArgument, "too long to be a base64 ed25519 key");
  }
  auto decoded = Base64Decode(text, {Base64::kStandard, Base64::kStandardUnpadded}, " \t\r\n");
  if (!decoded) return Status(Code::kInvalidArgument, "not valid base64");
  std::vector<unsigned char> bin(decoded->begin(), decoded->end());
  sodium_memzero(decoded->data(), decoded->size());
  return bin;
}

void Wipe(std::vector<unsigned char>& v) {
  if (!v.empty()) sodium_memzero(v.data(), v.size());
}

void WipeString(std::string& s) {
  if (!s.empty()) sodium_memzero(s.data(), s.size());
}

// Key::Parse of the text of `path`, the text wiped afterwards; errors name the path.
template <typename Key>
Result<Key> ParseKeyFile(const std::string& path) {
  auto text = ReadWholeFile(path, {.max_bytes = kMaxKeyFileBytes, .secret = true});
  if (!text.ok()) return text.status();
  auto key = Key::Parse(*text);
  WipeString(*text);
  if (!key.ok()) return key.status().Prefixed(path + ": ");
  return key;
}

}  // namespace

Result<PublicKey> PublicKey::Parse(std::string_view base64_text) {
  if (Status s = SodiumReady(); !s.ok()) return s;
  auto bin = DecodeBase64(base64_text);
  if (!bin.ok()) return bin.status().Prefixed("ed25519 public key: ");
  PublicKey key;
  if (bin->size() == crypto_sign_PUBLICKEYBYTES) {
    std::memcpy(key.bytes_.data(), bin->data(), key.bytes_.size());
  } else if (bin->size() == crypto_sign_SECRETKEYBYTES) {
    std::memcpy(key.bytes_.data(), bin->data() + crypto_sign_SEEDBYTES, key.bytes_.size());
  } else {
    size_t size = bin->size();
    Wipe(*bin);
    return Status(Code::kInvalidArgument,
                  "ed25519 public key: decodes to " + std::to_string(size) +
                      " bytes; expected 32 (a public key) or 64 (a secret key)");
  }
  Wipe(*bin);
  return key;
}

Result<PublicKey> PublicKey::ReadFile(const std::string& path) {
  return ParseKeyFile<PublicKey>(path);
}

bool PublicKey::Verify(std::string_view message, std::string_view signature) const {
  if (!SodiumReady().ok() || signature.size() != crypto_sign_BYTES) return false;
  return crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(signature.data()),
                                     reinterpret_cast<const unsigned char*>(message.data()),
                                     message.size(), bytes_.data()) == 0;
}

std::string PublicKey::Base64() const {
  return Base64Encode(bytes_.data(), bytes_.size());
}

Result<SigningKey> SigningKey::Parse(std::string_view base64_text) {
  if (Status s = SodiumReady(); !s.ok()) return s;
  auto bin = DecodeBase64(base64_text);
  if (!bin.ok()) return bin.status().Prefixed("ed25519 secret key: ");
  if (bin->size() != crypto_sign_SECRETKEYBYTES) {
    size_t size = bin->size();
    Wipe(*bin);
    return Status(Code::kInvalidArgument,
                  "ed25519 secret key: decodes to " + std::to_string(size) +
                      " bytes; expected 64 (32-byte seed + 32-byte public key)");
  }
  SigningKey key;
  std::memcpy(key.secret_.data(), bin->data(), key.secret_.size());
  Wipe(*bin);
  unsigned char pk[crypto_sign_PUBLICKEYBYTES];
  unsigned char sk[crypto_sign_SECRETKEYBYTES];
  crypto_sign_seed_keypair(pk, sk, key.secret_.data());
  bool match = sodium_memcmp(pk, key.secret_.data() + crypto_sign_SEEDBYTES, sizeof pk) == 0;
  sodium_memzero(sk, sizeof sk);
  if (!match) {
    return Status(Code::kInvalidArgument,
                  "ed25519 secret key: its public half does not match its seed (corrupt key)");
  }
  return key;
}

Result<SigningKey> SigningKey::ReadFile(const std::string& path) {
  return ParseKeyFile<SigningKey>(path);
}

SigningKey::SigningKey(const SigningKey& other) : secret_(other.secret_) {}

SigningKey& SigningKey::operator=(const SigningKey& other) {
  secret_ = other.secret_;
  return *this;
}

SigningKey::~SigningKey() { sodium_memzero(secret_.data(), secret_.size()); }

std::string SigningKey::Sign(std::string_view message) const {
  std::string sig(crypto_sign_BYTES, '\0');
  crypto_sign_detached(reinterpret_cast<unsigned char*>(sig.data()), nullptr,
                       reinterpret_cast<const unsigned char*>(message.data()), message.size(),
                       secret_.data());
  return sig;
}

PublicKey SigningKey::public_key() const {
  PublicKey pk;
  std::memcpy(pk.bytes_.data(), secret_.data() + crypto_sign_SEEDBYTES, pk.bytes_.size());
  return pk;
}

std::string BuildDocument(const DocumentInputs& in) {
  json::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  d.AddMember("chainOfTrustVersion", 1, a);
  json::Value artifacts(rapidjson::kObjectType);
  for (const auto& [name, sha] : in.artifacts) {
    json::Value entry(rapidjson::kObjectType);
    entry.AddMember("sha256", json::Str(sha, a), a);
    artifacts.AddMember(json::Str(name, a), entry, a);
  }
  d.AddMember("artifacts", artifacts, a);
  json::Value task(rapidjson::kObjectType);
  if (in.task) task.CopyFrom(*in.task, a);
  d.AddMember("task", task, a);
  d.AddMember("taskId", json::Str(in.task_id, a), a);
  d.AddMember("runId", in.run_id, a);
  d.AddMember("workerGroup", json::Str(in.worker_group, a), a);
  d.AddMember("workerId", json::Str(in.worker_id, a), a);
  json::Value env(rapidjson::kObjectType);
  env.AddMember("publicIpAddress", json::Str(in.public_ip, a), a);
  env.AddMember("privateIpAddress", json::Str(in.private_ip, a), a);
  env.AddMember("imageHash", json::Str(in.image_hash, a), a);
  auto optional = [&](const char* key, const std::string& value) {
    if (!value.empty()) env.AddMember(rapidjson::StringRef(key), json::Str(value, a), a);
  };
  optional("imageArtifactHash", in.image_artifact_hash);
  optional("instanceId", in.instance_id);
  optional("instanceType", in.instance_type);
  optional("region", in.region);
  d.AddMember("environment", env, a);
  return JsStringify(d, 2);
}

Result<std::map<std::string, std::string>> ArtifactHashes(std::string_view document) {
  auto doc = json::Parse(document);
  if (!doc.ok()) return doc.status().Prefixed("chain-of-trust document: ");
  if (!doc->IsObject()) {
    return Status(Code::kInvalidArgument, "chain-of-trust document: not a JSON object");
  }
  if (json::GetInt(*doc, "chainOfTrustVersion") != 1) {
    return Status(Code::kInvalidArgument, "chain-of-trust document: chainOfTrustVersion is not 1");
  }
  const json::Value* artifacts = json::FindObject(*doc, "artifacts");
  if (!artifacts) {
    return Status(Code::kInvalidArgument, "chain-of-trust document: no \"artifacts\" object");
  }
  std::map<std::string, std::string> out;
  for (const auto& m : artifacts->GetObject()) {
    std::string name(m.name.GetString(), m.name.GetStringLength());
    std::optional<std::string> sha;
    if (m.value.IsObject()) sha = json::GetString(m.value, "sha256");
    bool hex =
        sha && sha->size() == 64 && sha->find_first_not_of("0123456789abcdef") == std::string::npos;
    if (!hex) {
      return Status(Code::kInvalidArgument, "chain-of-trust document: artifact \"" + name +
                                                "\" has no 64-digit hex sha256");
    }
    out[name] = *sha;  // a repeated name: the last one counts, as in JSON.parse
  }
  return out;
}

Result<std::string> Sha256OfFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status(Code::kNotFound, "cannot read " + path);
  Sha256 sha;
  std::vector<char> buf(1 << 16);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    std::streamsize n = in.gcount();
    if (n > 0) sha.Update(std::string_view(buf.data(), static_cast<size_t>(n)));
  }
  if (in.bad()) return Status(Code::kInvalidArgument, "cannot read " + path);
  return sha.HexDigest();
}

std::vector<ArtifactCheck> CheckArtifactFiles(const std::map<std::string, std::string>& expected,
                                              const std::string& root) {
  namespace fs = std::filesystem;
  std::vector<ArtifactCheck> checks;
  for (const auto& [name, sha] : expected) {
    ArtifactCheck c{name, ArtifactCheck::State::kOk, sha, ""};
    std::error_code ec;
    if (!ValidateArtifactName(name).ok()) {
      c.state = ArtifactCheck::State::kBadName;
    } else if (fs::path path = fs::path(root) / name; !fs::is_regular_file(path, ec)) {
      c.state = ArtifactCheck::State::kMissing;
    } else if (auto actual = Sha256OfFile(path.string()); !actual.ok()) {
      c.state = ArtifactCheck::State::kMissing;
    } else {
      c.actual = *actual;
      c.state = c.actual == sha ? ArtifactCheck::State::kOk : ArtifactCheck::State::kMismatch;
    }
    checks.push_back(std::move(c));
  }
  return checks;
}

}  // namespace docker_worker::cot
