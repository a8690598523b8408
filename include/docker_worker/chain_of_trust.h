// Chain of trust, version 1 (upstream's `chainOfTrust` feature): the document that certifies a
// run (its task, worker, image and the SHA-256 of every artifact it uploaded), its detached
// ed25519 signature, and the checks a consumer makes against downloaded artifacts.
//
// Keys are libsodium/NaCl ed25519 keys in base64 (standard alphabet, padding optional,
// surrounding whitespace ignored): a signing key file holds the 64-byte secret key (32-byte
// seed followed by the 32-byte public key), a public key file the 32 public bytes. Errors about
// a key say what is wrong with it (unreadable, not base64, wrong length, halves that do not
// match) and never show key bytes. SigningKey wipes its secret when destroyed.
//
// BuildDocument returns the exact bytes that are uploaded and signed: the document serialised
// as JavaScript's JSON.stringify(doc, null, 2) (see js_stringify.h), members in upstream's
// order. Everything here is pure (apart from reading the named files) and thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "docker_worker/json.h"
#include "docker_worker/status.h"

namespace docker_worker::cot {

// Artifact names the chainOfTrust feature creates.
inline constexpr const char* kCertifiedLogName = "public/logs/certified.log";
inline constexpr const char* kDocumentName = "public/chain-of-trust.json";
inline constexpr const char* kSignatureName = "public/chain-of-trust.json.sig";

inline constexpr size_t kSignatureBytes = 64;

// An ed25519 public key (32 bytes).
class PublicKey {
 public:
  // Base64 of the 32-byte public key, or of a 64-byte secret key (its public half is used).
  static Result<PublicKey> Parse(std::string_view base64_text);
  // Parse() of a file's content; errors name the file.
  static Result<PublicKey> ReadFile(const std::string& path);

  // True when `signature` (64 raw bytes) is this key's signature of exactly `message`.
  bool Verify(std::string_view message, std::string_view signature) const;
  std::string Base64() const;
  const std::array<unsigned char, 32>& bytes() const { return bytes_; }

 private:
  friend class SigningKey;
  std::array<unsigned char, 32> bytes_{};
};

// An ed25519 secret key (64 bytes: seed + public key), checked on parsing: the public half
// must be the one the seed derives.
class SigningKey {
 public:
  static Result<SigningKey> Parse(std::string_view base64_text);
  // Parse() of a file's content; errors name the file (never its content).
  static Result<SigningKey> ReadFile(const std::string& path);

  SigningKey(const SigningKey& other);
  SigningKey& operator=(const SigningKey& other);
  ~SigningKey();

  // The detached signature (64 raw bytes) of `message`.
  std::string Sign(std::string_view message) const;
  PublicKey public_key() const;

 private:
  SigningKey() = default;
  std::array<unsigned char, 64> secret_{};
};

// What the document says. `task` is the task definition as claimed (copied, never modified).
struct DocumentInputs {
  std::map<std::string, std::string> artifacts;  // artifact name -> lower-case hex SHA-256
  const json::Value* task = nullptr;             // null: written as {}
  std::string task_id;
  int run_id = 0;
  std::string worker_group;
  std::string worker_id;
  std::string public_ip;
  std::string private_ip;
  std::string image_hash;           // docker image id, "sha256:..."
  std::string image_artifact_hash;  // "sha256:<hex>" of a task/indexed image; "" = omitted
  std::string instance_id;          // "" = omitted (likewise the next two)
  std::string instance_type;
  std::string region;
};

// The document text, as uploaded and signed:
//   {chainOfTrustVersion: 1, artifacts: {name: {sha256}}, task, taskId, runId, workerGroup,
//    workerId, environment: {publicIpAddress, privateIpAddress, imageHash, [imageArtifactHash],
//    [instanceId], [instanceType], [region]}}
std::string BuildDocument(const DocumentInputs& in);

// The `artifacts` of a document: name -> expected hex SHA-256. kInvalidArgument when the text
// is not JSON, chainOfTrustVersion is not 1, or an entry lacks a 64-hex-digit sha256.
Result<std::map<std::string, std::string>> ArtifactHashes(std::string_view document);

// Lower-case hex SHA-256 of a file's bytes; kNotFound when it cannot be opened.
Result<std::string> Sha256OfFile(const std::string& path);

// One artifact of a document compared with a downloaded copy.
struct ArtifactCheck {
  enum class State { kOk, kMismatch, kMissing, kBadName };
  std::string name;
  State state = State::kOk;
  std::string expected;  // from the document
  std::string actual;    // of the file; "" unless kOk/kMismatch
};

// Compares every entry of `expected` with the file `root`/<name>, in name order. A name that
// is not a safe relative path (ValidateArtifactName) is kBadName and never opened.
std::vector<ArtifactCheck> CheckArtifactFiles(const std::map<std::string, std::string>& expected,
                                              const std::string& root);

}  // namespace docker_worker::cot
