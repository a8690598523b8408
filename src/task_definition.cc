#include "docker_worker/task_definition.h"

#include <algorithm>

#include "docker_worker/time_format.h"

namespace docker_worker {
namespace {

std::optional<TimePoint> GetTime(const json::Value& obj, std::string_view key) {
  auto s = json::GetString(obj, key);
  if (!s) return std::nullopt;
  auto t = ParseIso(*s);
  if (!t.ok()) return std::nullopt;
  return *t;
}

}  // namespace

const json::Value& TaskDefinition::payload() const {
  static const json::Value kEmpty(rapidjson::kObjectType);
  const json::Value* p = json::FindObject(*raw, "payload");
  return p ? *p : kEmpty;
}

Result<TaskDefinition> TaskDefinition::FromJson(json::Document doc, const Defaults& defaults) {
  if (!doc.IsObject()) {
    return Status(Code::kInvalidArgument, "expected a JSON object (a payload or a task definition)");
  }
  if (!json::DepthWithin(doc, json::kMaxDocumentDepth)) {
    return Status(Code::kInvalidArgument, "the task definition nests deeper than " +
                                              std::to_string(json::kMaxDocumentDepth) + " levels");
  }
  if (!json::FindObject(doc, "payload")) {  // a bare payload: wrap it
    json::Document task(rapidjson::kObjectType);
    auto& a = task.GetAllocator();
    task.AddMember("provisionerId", json::Str(defaults.provisioner_id, a), a);
    task.AddMember("workerType", json::Str(defaults.worker_type, a), a);
    task.AddMember("payload", json::Value(doc, a), a);
    doc.Swap(task);
  }
  TaskDefinition t;
  t.provisioner_id = json::GetString(doc, "provisionerId").value_or(defaults.provisioner_id);
  t.worker_type = json::GetString(doc, "workerType").value_or(defaults.worker_type);
  if (auto q = json::GetString(doc, "taskQueueId"); q && q->find('/') != std::string::npos) {
    t.provisioner_id = q->substr(0, q->find('/'));
    t.worker_type = q->substr(q->find('/') + 1);
  }
  t.scheduler_id = json::GetString(doc, "schedulerId").value_or("-");
  t.task_group_id = json::GetString(doc, "taskGroupId").value_or("");
  if (const auto* scopes = json::FindArray(doc, "scopes")) {
    for (const auto& s : scopes->GetArray()) {
      if (s.IsString()) t.scopes.emplace_back(s.GetString(), s.GetStringLength());
    }
  }
  t.created = GetTime(doc, "created").value_or(defaults.now);
  t.deadline = GetTime(doc, "deadline").value_or(t.created + std::chrono::hours(24));
  t.expires = GetTime(doc, "expires").value_or(t.deadline + std::chrono::hours(24 * 365));
  t.raw = std::make_shared<json::Document>(std::move(doc));
  return t;
}

const char* ImageSpec::KindName() const {
  switch (kind) {
    case Kind::kDockerImage:
      return "docker-image";
    case Kind::kIndexedImage:
      return "indexed-image";
    case Kind::kTaskImage:
      return "task-image";
  }
  return "docker-image";
}

Result<Payload> ParsePayload(const json::Value& v) {
  if (!v.IsObject()) return Status(Code::kInvalidArgument, "payload must be an object");
  Payload p;
  const json::Value* image = json::Find(v, "image");
  if (image && image->IsString()) {
    p.image.name = image->GetString();
  } else if (image && image->IsObject()) {
    std::string type = json::GetString(*image, "type").value_or("");
    if (type == "docker-image") {
      p.image.name = json::GetString(*image, "name").value_or("");
    } else if (type == "indexed-image") {
      p.image.kind = ImageSpec::Kind::kIndexedImage;
      p.image.namespace_ = json::GetString(*image, "namespace").value_or("");
      p.image.path = json::GetString(*image, "path").value_or("");
    } else if (type == "task-image") {
      p.image.kind = ImageSpec::Kind::kTaskImage;
      p.image.task_id = json::GetString(*image, "taskId").value_or("");
      p.image.path = json::GetString(*image, "path").value_or("");
    } else {
      return Status(Code::kInvalidArgument, "unknown image type \"" + type + "\"");
    }
  } else {
    return Status(Code::kInvalidArgument, "payload.image is missing");
  }
  if (const auto* cmd = json::FindArray(v, "command")) {
    for (const auto& c : cmd->GetArray()) {
      if (c.IsString()) p.command.emplace_back(c.GetString(), c.GetStringLength());
    }
  }
  if (const auto* env = json::FindObject(v, "env")) {
    for (const auto& m : env->GetObject()) {
      if (m.value.IsString()) {
        p.env.emplace_back(std::string(m.name.GetString(), m.name.GetStringLength()),
                           std::string(m.value.GetString(), m.value.GetStringLength()));
      }
    }
  }
  p.max_run_time = json::GetInt(v, "maxRunTime").value_or(0);
  if (const auto* arts = json::FindObject(v, "artifacts")) {
    for (const auto& m : arts->GetObject()) {
      if (!m.value.IsObject()) continue;
      ArtifactSpec a;
      a.name = std::string(m.name.GetString(), m.name.GetStringLength());
      a.type = json::GetString(m.value, "type").value_or("");
      a.path = json::GetString(m.value, "path").value_or("");
      if (auto e = json::GetString(m.value, "expires")) {
        auto t = ParseIso(*e);
        if (!t.ok()) return t.status();
        a.expires = *t;
      }
      p.artifacts.push_back(std::move(a));
    }
    std::sort(p.artifacts.begin(), p.artifacts.end(),
              [](const ArtifactSpec& x, const ArtifactSpec& y) { return x.name < y.name; });
  }
  if (const auto* cache = json::FindObject(v, "cache")) {
    for (const auto& m : cache->GetObject()) {
      if (m.value.IsString()) p.cache.emplace_back(m.name.GetString(), m.value.GetString());
    }
  }
  if (const auto* caps = json::FindObject(v, "capabilities")) {
    p.privileged = json::GetBool(*caps, "privileged").value_or(false);
    if (const auto* devs = json::FindObject(*caps, "devices")) {
      for (const auto& m : devs->GetObject()) {
        if (m.value.IsBool()) p.devices[m.name.GetString()] = m.value.GetBool();
      }
    }
  }
  if (const auto* oes = json::FindObject(v, "onExitStatus")) {
    auto ints = [&](const char* key, std::vector<int64_t>& out) {
      if (const auto* a = json::FindArray(*oes, key)) {
        for (const auto& e : a->GetArray()) {
          if (e.IsInt64()) out.push_back(e.GetInt64());
        }
      }
    };
    ints("retry", p.retry_exit_codes);
    ints("purgeCaches", p.purge_cache_exit_codes);
  }
  p.log_name = json::GetString(v, "log").value_or(p.log_name);
  if (const auto* enc = json::FindArray(v, "encryptedEnv")) {
    for (const auto& e : enc->GetArray()) {
      if (e.IsString()) p.encrypted_env.emplace_back(e.GetString(), e.GetStringLength());
    }
  }
  return p;
}

std::vector<std::pair<std::string, bool>> RequestedFeatures(const json::Value& payload) {
  std::vector<std::pair<std::string, bool>> out;
  if (const auto* f = json::FindObject(payload, "features")) {
    for (const auto& m : f->GetObject()) {
      if (m.value.IsBool()) out.emplace_back(m.name.GetString(), m.value.GetBool());
    }
  }
  return out;
}

std::string BackingLogName(const std::string& log_name) {
  size_t slash = log_name.rfind('/');
  size_t base = slash == std::string::npos ? 0 : slash + 1;
  size_t dot = log_name.rfind('.');
  if (dot == std::string::npos || dot < base || dot == base) return log_name + "_backing";
  return log_name.substr(0, dot) + "_backing" + log_name.substr(dot);
}

}  // namespace docker_worker
