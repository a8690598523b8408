#include "docker_worker/queue_client.h"

#include "docker_worker/slugid.h"
#include "docker_worker/time_format.h"

namespace docker_worker {
namespace {

std::string RunPath(const std::string& task_id, int run_id) {
  return "task/" + UrlEscape(task_id) + "/runs/" + std::to_string(run_id);
}

Result<json::Document> Body(Result<TcResponse> r) {
  if (!r.ok()) return r.status();
  return std::move(r->body);
}

Status Bad(const std::string& what) {
  return Status(Code::kInvalidArgument, "malformed queue response: " + what);
}

Result<TimePoint> TimeField(const json::Value& v, const char* key) {
  auto s = json::GetString(v, key);
  if (!s) return Bad(std::string("missing ") + key);
  auto t = ParseIso(*s);
  if (!t.ok()) return Bad(std::string(key) + ": " + t.status().message());
  return *t;
}

}  // namespace

Result<Credentials> CredentialsFromJson(const json::Value& value) {
  if (!value.IsObject()) return Bad("credentials is not an object");
  Credentials c;
  auto id = json::GetString(value, "clientId");
  auto token = json::GetString(value, "accessToken");
  if (!id || !token) return Bad("credentials without clientId or accessToken");
  c.client_id = *id;
  c.access_token = *token;
  if (const json::Value* cert = json::Find(value, "certificate")) {
    if (cert->IsString()) c.certificate = cert->GetString();
    else if (cert->IsObject()) c.certificate = json::Serialize(*cert);
  }
  return c;
}

Result<std::vector<Claim>> QueueClient::ClaimWork(const std::string& task_queue_id,
                                                  const std::string& worker_group,
                                                  const std::string& worker_id, int tasks,
                                                  std::stop_token stop) {
  json::Document body(rapidjson::kObjectType);
  auto& a = body.GetAllocator();
  body.AddMember("workerGroup", json::Str(worker_group, a), a);
  body.AddMember("workerId", json::Str(worker_id, a), a);
  body.AddMember("tasks", tasks, a);
  TcCallOptions options;
  options.timeout = std::chrono::seconds(60);  // the server holds the request up to ~20 s
  options.stop = stop;
  auto r = client_.Call("POST", "queue", "claim-work/" + UrlEscape(task_queue_id), &body, options);
  if (!r.ok()) return r.status();
  const json::Value* list = json::FindArray(r->body, "tasks");
  if (!list) return Bad("claimWork without tasks");
  std::vector<Claim> claims;
  for (const auto& item : list->GetArray()) {
    auto claim = ParseClaim(item);
    if (claim.ok()) claims.push_back(std::move(*claim));  // a bad claim never sinks the others
  }
  return claims;
}

Result<Claim> ParseClaim(const json::Value& item) {
  const json::Value* status = json::FindObject(item, "status");
  auto task_id = status ? json::GetString(*status, "taskId") : std::nullopt;
  auto run_id = json::GetInt(item, "runId");
  const json::Value* task = json::FindObject(item, "task");
  const json::Value* creds = json::FindObject(item, "credentials");
  if (!task_id || !run_id || !task || !creds) {
    return Bad("claim without taskId/runId/task/credentials");
  }
  if (!LooksLikeSlugId(*task_id)) return Bad("claim with an invalid taskId");
  if (*run_id < 0 || *run_id > 1000) return Bad("claim with an invalid runId");
  Claim c;
  c.task_id = *task_id;
  c.run_id = static_cast<int>(*run_id);
  auto credentials = CredentialsFromJson(*creds);
  if (!credentials.ok()) return credentials.status();
  c.credentials = std::move(*credentials);
  auto taken = TimeField(item, "takenUntil");
  if (!taken.ok()) return taken.status();
  c.taken_until = *taken;
  json::Document def;
  def.CopyFrom(*task, def.GetAllocator());
  auto parsed = TaskDefinition::FromJson(std::move(def), {"", "", TimePoint()});
  if (!parsed.ok()) return parsed.status();
  c.task = std::move(*parsed);
  return c;
}

Result<ClaimRenewal> QueueClient::ReclaimTask(const std::string& task_id, int run_id,
                                              std::stop_token stop) {
  TcCallOptions options;
  options.stop = stop;
  auto r = client_.Call("POST", "queue", RunPath(task_id, run_id) + "/reclaim", nullptr, options);
  if (!r.ok()) return r.status();
  const json::Value* creds = json::FindObject(r->body, "credentials");
  if (!creds) return Bad("reclaim without credentials");
  auto credentials = CredentialsFromJson(*creds);
  if (!credentials.ok()) return credentials.status();
  auto taken = TimeField(r->body, "takenUntil");
  if (!taken.ok()) return taken.status();
  return ClaimRenewal{std::move(*credentials), *taken};
}

Status QueueClient::ReportCompleted(const std::string& task_id, int run_id) {
  auto r = client_.Call("POST", "queue", RunPath(task_id, run_id) + "/completed", nullptr);
  return r.ok() ? Status::Ok() : r.status();
}

Status QueueClient::ReportFailed(const std::string& task_id, int run_id) {
  auto r = client_.Call("POST", "queue", RunPath(task_id, run_id) + "/failed", nullptr);
  return r.ok() ? Status::Ok() : r.status();
}

Status QueueClient::ReportException(const std::string& task_id, int run_id,
                                    const std::string& reason) {
  json::Document body(rapidjson::kObjectType);
  body.AddMember("reason", json::Str(reason, body.GetAllocator()), body.GetAllocator());
  auto r = client_.Call("POST", "queue", RunPath(task_id, run_id) + "/exception", &body);
  return r.ok() ? Status::Ok() : r.status();
}

Result<json::Document> QueueClient::CreateArtifact(const std::string& task_id, int run_id,
                                                   const std::string& name,
                                                   const json::Value& request) {
  return Body(client_.Call("POST", "queue",
                           RunPath(task_id, run_id) + "/artifacts/" + UrlEscape(name), &request));
}

Result<json::Document> QueueClient::Task(const std::string& task_id) {
  return Body(client_.Call("GET", "queue", "task/" + UrlEscape(task_id), nullptr));
}

Result<json::Document> QueueClient::TaskStatus(const std::string& task_id) {
  return Body(client_.Call("GET", "queue", "task/" + UrlEscape(task_id) + "/status", nullptr));
}

Result<json::Document> QueueClient::CreateTask(const std::string& task_id,
                                               const json::Value& definition) {
  return Body(client_.Call("PUT", "queue", "task/" + UrlEscape(task_id), &definition));
}

Result<json::Document> QueueClient::CancelTask(const std::string& task_id) {
  return Body(client_.Call("POST", "queue", "task/" + UrlEscape(task_id) + "/cancel", nullptr));
}

Result<std::vector<std::pair<std::string, std::string>>> QueueClient::ListLatestArtifacts(
    const std::string& task_id) {
  std::vector<std::pair<std::string, std::string>> out;
  std::string token;
  do {
    std::string path = "task/" + UrlEscape(task_id) + "/artifacts";
    if (!token.empty()) path += "?continuationToken=" + UrlEscape(token);
    auto r = client_.Call("GET", "queue", path, nullptr);
    if (!r.ok()) return r.status();
    const json::Value* list = json::FindArray(r->body, "artifacts");
    if (!list) return Bad("listArtifacts without artifacts");
    for (const auto& a : list->GetArray()) {
      auto name = json::GetString(a, "name");
      auto type = json::GetString(a, "storageType");
      if (name && type) out.emplace_back(*name, *type);
    }
    token = json::GetString(r->body, "continuationToken").value_or("");
  } while (!token.empty());
  return out;
}

Result<std::string> QueueClient::ArtifactUrl(const std::string& task_id, int run_id,
                                             const std::string& name, std::stop_token stop) {
  std::string path = run_id < 0 ? "task/" + UrlEscape(task_id) + "/artifacts/" + UrlEscape(name)
                                : RunPath(task_id, run_id) + "/artifacts/" + UrlEscape(name);
  TcCallOptions options;
  options.stop = std::move(stop);
  auto r = client_.Call("GET", "queue", path, nullptr, options);
  if (!r.ok()) return r.status();
  if (auto location = r->headers.Get("Location")) return *location;
  if (auto url = json::GetString(r->body, "url")) return *url;
  return Bad("getArtifact without a Location");
}

}  // namespace docker_worker
