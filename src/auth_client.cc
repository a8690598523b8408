#include "docker_worker/auth_client.h"

namespace docker_worker {

Result<std::vector<std::string>> ExpandScopes(TaskclusterClient& client,
                                              const std::vector<std::string>& scopes) {
  json::Document body(rapidjson::kObjectType);
  auto& a = body.GetAllocator();
  json::Value list(rapidjson::kArrayType);
  for (const auto& s : scopes) list.PushBack(json::Str(s, a), a);
  body.AddMember("scopes", list, a);
  auto r = client.Call("POST", "auth", "scopes/expand", &body, TcCallOptions{});
  if (!r.ok()) {
    if (r.status().code() == Code::kPermissionDenied) return scopes;
    return r.status();
  }
  const json::Value* out = json::FindArray(r->body, "scopes");
  if (!out) return Status(Code::kInvalidArgument, "malformed auth response: no scopes array");
  std::vector<std::string> expanded;
  for (const auto& s : out->GetArray()) {
    if (!s.IsString()) return Status(Code::kInvalidArgument, "malformed auth response: scope");
    expanded.emplace_back(s.GetString(), s.GetStringLength());
  }
  return expanded;
}

ScopeExpansion ScopeExpansionFor(TaskclusterClient* client) {
  if (!client) return {};
  return [client](const std::vector<std::string>& scopes) { return ExpandScopes(*client, scopes); };
}

}  // namespace docker_worker
