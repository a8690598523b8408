#include "docker_worker/encrypted_env.h"

#include <sodium.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string_view>

#include "docker_worker/read_file.h"
#include "docker_worker/base64.h"
#include "docker_worker/slugid.h"
#include "docker_worker/gpg_home.h"

namespace docker_worker {
namespace {

constexpr const char* kNoKey =
    "encryptedEnv is not supported on this worker: no dockerWorkerPrivateKey is configured";

// Node's Buffer.from(s, "base64") accepted standard and URL-safe alphabets, with or without
// padding, ignoring whitespace.
std::optional<std::string> DecodeBase64(const std::string& text) {
  return Base64Decode(text,
                      {Base64::kStandard, Base64::kStandardUnpadded, Base64::kUrlSafe,
                       Base64::kUrlSafeUnpadded},
                      " \t\r\n");
}

bool IsJsWhitespace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// JavaScript ToNumber for a string, restricted to ASCII; nullopt for NaN.
std::optional<double> JsStringToNumber(std::string_view s) {
  while (!s.empty() && IsJsWhitespace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsJsWhitespace(s.back())) s.remove_suffix(1);
  if (s.empty()) return 0.0;
  std::string str(s);
  if (str.size() > 2 && str[0] == '0' && (str[1] == 'x' || str[1] == 'X')) {
    double v = 0;
    for (size_t i = 2; i < str.size(); ++i) {
      char c = str[i];
      int d = c >= '0' && c <= '9'   ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                     : -1;
      if (d < 0) return std::nullopt;
      v = v * 16 + d;
    }
    return v;
  }
  // Decimal literal only: strtod alone would also take "inf", "nan" and hex floats.
  for (char c : str) {
    if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-')) {
      return std::nullopt;
    }
  }
  char* end = nullptr;
  double v = std::strtod(str.c_str(), &end);
  if (end != str.c_str() + str.size()) return std::nullopt;
  return v;
}

// One decrypted, well-formed message.
struct EnvMessage {
  const json::Value* message_version = nullptr;
  const json::Value* task_id = nullptr;
  double start_time = 0;
  double end_time = 0;
  std::string name;
  std::string value;
};

std::optional<EnvMessage> ParseEnvMessage(const json::Document& doc) {
  if (!doc.IsObject()) return std::nullopt;
  const json::Value* name = json::Find(doc, "name");
  const json::Value* value = json::Find(doc, "value");
  const json::Value* start = json::Find(doc, "startTime");
  const json::Value* end = json::Find(doc, "endTime");
  if (!name || !name->IsString() || !value || !value->IsString()) return std::nullopt;
  if (!start || !start->IsNumber() || !end || !end->IsNumber()) return std::nullopt;
  EnvMessage m;
  m.name.assign(name->GetString(), name->GetStringLength());
  m.value.assign(value->GetString(), value->GetStringLength());
  if (m.name.empty() || m.name.find('=') != std::string::npos ||
      m.name.find('\0') != std::string::npos || m.value.find('\0') != std::string::npos) {
    return std::nullopt;
  }
  m.message_version = json::Find(doc, "messageVersion");
  m.task_id = json::Find(doc, "taskId");
  m.start_time = start->GetDouble();
  m.end_time = end->GetDouble();
  return m;
}

// A failed entry: the task-facing status and the worker-log detail share one incident id.
Status Violation(const char* message, size_t index, const std::string& reason,
                 std::string* log_detail) {
  std::string incident = NewUuidV4();
  if (log_detail) {
    *log_detail =
        "encryptedEnv[" + std::to_string(index) + "]: " + reason + "; incidentId: " + incident;
  }
  return Status::TaskFailed(std::string("secret data violation -- ") + message +
                            "; incidentId: " + incident);
}

bool Contains(const EnvVars& vars, const std::string& name) {
  for (const auto& [k, v] : vars) {
    if (k == name) return true;
  }
  return false;
}

void Wipe(std::string& s) { sodium_memzero(s.data(), s.size()); }

}  // namespace

EnvDecryptor::EnvDecryptor(std::unique_ptr<GpgHome> home) : home_(std::move(home)) {}
EnvDecryptor::~EnvDecryptor() = default;

Result<std::unique_ptr<EnvDecryptor>> EnvDecryptor::FromKeyFile(
    const std::string& armored_key_path) {
  const std::string what = "dockerWorkerPrivateKey " + armored_key_path;
  auto key = ReadWholeFile(armored_key_path, {.secret = true});
  if (!key.ok()) return key.status().Prefixed("dockerWorkerPrivateKey: ");
  auto home = GpgHome::Create();
  if (!home.ok()) {
    Wipe(*key);
    return home.status().Prefixed("cannot load " + what + ": ");
  }
  auto imported = (*home)->Import(*key);
  Wipe(*key);
  if (!imported.ok()) return imported.status().Prefixed("cannot load " + what + ": ");
  if (imported->secret_keys == 0) {
    return Status(Code::kInvalidArgument,
                  "cannot load " + what + ": the file holds no OpenPGP secret key");
  }
  return std::unique_ptr<EnvDecryptor>(new EnvDecryptor(std::move(*home)));
}

Result<std::unique_ptr<EnvDecryptor>> EnvDecryptor::FromConfiguredKey(const std::string& path) {
  if (path.empty()) return std::unique_ptr<EnvDecryptor>();
  return FromKeyFile(path);
}

Result<std::string> EnvDecryptor::Decrypt(const std::string& binary_message) {
  return home_->Decrypt(binary_message);
}

bool LooselyEqualsOne(const json::Value& value) {
  if (value.IsNumber()) return value.GetDouble() == 1.0;
  if (value.IsBool()) return value.GetBool();
  if (value.IsString()) {
    auto n = JsStringToNumber(std::string_view(value.GetString(), value.GetStringLength()));
    return n && *n == 1.0;
  }
  return false;
}

Result<EnvVars> DecryptEncryptedEnv(EnvDecryptor* decryptor,
                                    const std::vector<std::string>& entries,
                                    const EnvVars& payload_env, const std::string& task_id,
                                    int64_t now_ms, std::string* log_detail) {
  if (log_detail) log_detail->clear();
  if (entries.empty()) return EnvVars{};
  if (!decryptor) {
    if (log_detail) *log_detail = kNoKey;
    return Status::TaskFailed(kNoKey);
  }
  return DecryptEncryptedEnvWith(
      [decryptor](const std::string& m) { return decryptor->Decrypt(m); }, entries, payload_env,
      task_id, now_ms, log_detail);
}

Result<EnvVars> DecryptEncryptedEnvWith(const DecryptFn& decrypt,
                                        const std::vector<std::string>& entries,
                                        const EnvVars& payload_env, const std::string& task_id,
                                        int64_t now_ms, std::string* log_detail) {
  if (log_detail) log_detail->clear();
  EnvVars env = payload_env;  // grows with each accepted entry, like upstream's payload.env
  EnvVars added;
  const double now = static_cast<double>(now_ms);
  for (size_t i = 0; i < entries.size(); ++i) {
    auto fail = [&](const char* message, const std::string& reason) -> Result<EnvVars> {
      return Violation(message, i, reason, log_detail);
    };
    auto binary = DecodeBase64(entries[i]);
    if (!binary) return fail("the encrypted env entry is not valid base64", "not valid base64");
    auto plaintext = decrypt(*binary);
    if (!plaintext.ok()) {
      return fail("the encrypted env entry could not be decrypted", plaintext.status().message());
    }
    auto doc = json::Parse(*plaintext);
    Wipe(*plaintext);
    std::optional<EnvMessage> m;
    if (doc.ok()) m = ParseEnvMessage(*doc);
    if (!m) {
      return fail("the decrypted env entry is not a valid env message",
                  "plaintext is not a JSON object with string name/value and numeric "
                  "startTime/endTime");
    }
    const char* message = nullptr;
    const char* reason = nullptr;
    if (m->name == "TASK_ID" || m->name == "RUN_ID") {
      message = "an environment variable conflicts with an existing environment variable";
      reason = "check 1 (reserved name) failed";
    } else if (Contains(env, m->name)) {
      message = "an environment variable has been duplicated in the task payload";
      reason = "check 2 (duplicate name) failed";
    } else if (!m->message_version || !LooselyEqualsOne(*m->message_version)) {
      message = "the version of the message is not supported";
      reason = "check 3 (messageVersion) failed";
    } else if (!m->task_id || !m->task_id->IsString() ||
               std::string_view(m->task_id->GetString(), m->task_id->GetStringLength()) !=
                   task_id) {
      message = "the taskId of the env payload does not match the taskId of the task";
      reason = "check 4 (taskId) failed";
    } else if (m->start_time > now) {
      message = "the start time in the env payload is in the future";
      reason = "check 5 (startTime) failed";
    } else if (now > m->end_time) {
      message = "the end time in the env payload is in the past";
      reason = "check 6 (endTime) failed";
    }
    if (message) return fail(message, reason);
    env.emplace_back(m->name, m->value);
    added.emplace_back(std::move(m->name), std::move(m->value));
  }
  return added;
}

}  // namespace docker_worker
