#include "docker_worker/payload_validator.h"

#include <string>

#include "docker_worker/time_format.h"

namespace docker_worker {
namespace {

using json::Quote;

std::string NotADateTime(const json::Value& text) {
  return Quote(std::string_view(text.GetString(), text.GetStringLength())) +
         " is not an RFC 3339 date-time";
}

// The payload schema, compiled on first use (thread-safe static initialisation).
const Result<SchemaValidator>& PayloadSchema() {
  static const Result<SchemaValidator> validator = SchemaValidator::FromEmbedded("payload");
  return validator;
}

}  // namespace

std::vector<ValidationError> ValidatePayload(const json::Value& payload) {
  const auto& validator = PayloadSchema();
  if (!validator.ok()) return {{"", "payload schema unavailable: " + validator.status().message()}};
  return validator->Validate(payload);
}

bool LooksLikeTaskDefinition(const json::Value& doc) {
  return json::FindObject(doc, "payload") != nullptr;
}

std::vector<ValidationError> CheckArtifactExpiry(const json::Value& payload, TimePoint task_expires,
                                                 std::string_view path_prefix) {
  std::vector<ValidationError> errors;
  const json::Value* artifacts = json::FindObject(payload, "artifacts");
  if (!artifacts) return errors;
  const std::string base = JsonPointerAppend(std::string(path_prefix), "artifacts");
  for (const auto& m : artifacts->GetObject()) {
    const json::Value* expires = json::Find(m.value, "expires");
    if (!expires || !expires->IsString()) continue;
    std::string path = JsonPointerAppend(
        JsonPointerAppend(base, std::string_view(m.name.GetString(), m.name.GetStringLength())),
        "expires");
    auto when = ParseIso(std::string_view(expires->GetString(), expires->GetStringLength()));
    if (!when.ok()) {
      errors.push_back({path, NotADateTime(*expires)});
    } else if (*when > task_expires) {
      errors.push_back({path, "expires " + FormatIso(*when) + " is after the task's expires " +
                                  FormatIso(task_expires)});
    }
  }
  SortAndDeduplicate(errors);
  return errors;
}

std::vector<ValidationError> ValidateTaskDefinition(const json::Value& task) {
  std::vector<ValidationError> errors;
  if (!task.IsObject()) {
    return {{"", std::string("a task definition must be an object, got ") + json::TypeName(task)}};
  }
  const json::Value* payload = json::Find(task, "payload");
  if (!payload) {
    errors.push_back({"", "missing required property \"payload\""});
  } else if (!payload->IsObject()) {
    errors.push_back({"/payload", std::string("expected object, got ") + json::TypeName(*payload)});
  } else {
    for (auto& e : ValidatePayload(*payload)) errors.push_back({"/payload" + e.path, e.message});
  }

  if (const json::Value* expires = json::Find(task, "expires")) {
    if (!expires->IsString()) {
      errors.push_back(
          {"/expires", std::string("expected string, got ") + json::TypeName(*expires)});
    } else if (auto when =
                   ParseIso(std::string_view(expires->GetString(), expires->GetStringLength()));
               !when.ok()) {
      errors.push_back({"/expires", NotADateTime(*expires)});
    } else if (payload && payload->IsObject()) {
      for (auto& e : CheckArtifactExpiry(*payload, *when, "/payload"))
        errors.push_back(std::move(e));
    }
  }
  SortAndDeduplicate(errors);
  return errors;
}

}  // namespace docker_worker
