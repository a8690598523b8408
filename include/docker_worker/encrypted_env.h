// The `encryptedEnv` payload feature: secret environment variables encrypted to the worker's key.
//
// Each payload.encryptedEnv entry is base64 of a binary OpenPGP message encrypted to the worker's
// public key. Its plaintext is JSON:
//   {"messageVersion": 1, "taskId": "<taskId>", "startTime": <ms>, "endTime": <ms>,
//    "name": "<VAR>", "value": "<secret>"}
// DecryptEncryptedEnv decrypts every entry in order and applies upstream's checks, in upstream's
// order, stopping at the first failure:
//   1. name is TASK_ID or RUN_ID       "an environment variable conflicts with an existing
//   environment variable"
//   2. name in payload.env or an earlier entry
//                                      "an environment variable has been duplicated in the task
//                                      payload"
//   3. messageVersion != 1 (loose: 1, "1", " 1.0", true pass)
//                                      "the version of the message is not supported"
//   4. taskId != the task's id         "the taskId of the env payload does not match the taskId of
//   the task"
//   5. startTime > now                 "the start time in the env payload is in the future"
//   6. now > endTime                   "the end time in the env payload is in the past"
// Before those, an entry fails when it is not base64 ("the encrypted env entry is not valid
// base64"), cannot be decrypted with the worker's key ("the encrypted env entry could not be
// decrypted"), or its plaintext is not such an object with a string name (non-empty, no '=' or
// NUL), a string value (no NUL) and numeric startTime/endTime ("the decrypted env entry is not a
// valid env message"; upstream let missing times pass, which was a bug).
//
// Every failure is Status::TaskFailed with the message
//   "secret data violation -- <message>; incidentId: <uuid v4>"
// and, when `log_detail` is given, a line for the worker's own log naming the entry index, the
// failed check (and GPGME's reason for a decryption failure) and the same incident id. Neither
// ever contains the decrypted name or value. With entries but no decryptor the run fails with
// "encryptedEnv is not supported on this worker: no dockerWorkerPrivateKey is configured".
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "docker_worker/json.h"
#include "docker_worker/status.h"

namespace docker_worker {

class GpgHome;

// The worker's private key (config dockerWorkerPrivateKey) imported into a private GnuPG home
// (see GpgHome). Created once per daemon or `run` invocation; Decrypt may be called from several
// task threads at once (calls are serialised). The destructor stops the home's gpg-agent and
// removes the home.
class EnvDecryptor {
 public:
  // Errors name the path: missing or unreadable file, no OpenPGP secret key in it, or GnuPG
  // unavailable. Never includes the key material.
  static Result<std::unique_ptr<EnvDecryptor>> FromKeyFile(const std::string& armored_key_path);
  // The same, except that an empty path (no key configured) gives a null decryptor. A
  // configured key that cannot be used is an error: the worker refuses to start (upstream ran
  // on without it, and every encryptedEnv task then failed).
  static Result<std::unique_ptr<EnvDecryptor>> FromConfiguredKey(const std::string& path);
  ~EnvDecryptor();

  // Plaintext bytes of a binary (or armored) OpenPGP message encrypted to the key. The error
  // message carries GPGME's reason only.
  Result<std::string> Decrypt(const std::string& binary_message);

 private:
  explicit EnvDecryptor(std::unique_ptr<GpgHome> home);
  std::unique_ptr<GpgHome> home_;
};

using EnvVars = std::vector<std::pair<std::string, std::string>>;  // name -> value, in order

// `decryptor` null: none configured. `payload_env` is Payload::env. Returns the variables to
// add to the container's environment, in entry order (empty for no entries).
Result<EnvVars> DecryptEncryptedEnv(EnvDecryptor* decryptor,
                                    const std::vector<std::string>& entries,
                                    const EnvVars& payload_env, const std::string& task_id,
                                    int64_t now_ms, std::string* log_detail = nullptr);

// The same with the decryption step injected (tests; other key stores).
using DecryptFn = std::function<Result<std::string>(const std::string& binary_message)>;
Result<EnvVars> DecryptEncryptedEnvWith(const DecryptFn& decrypt,
                                        const std::vector<std::string>& entries,
                                        const EnvVars& payload_env, const std::string& task_id,
                                        int64_t now_ms, std::string* log_detail = nullptr);

// JavaScript's `value == 1` for JSON values: the number 1, a string whose numeric value is 1
// (surrounding whitespace allowed, "0x1" too), or true.
bool LooselyEqualsOne(const json::Value& value);

}  // namespace docker_worker
