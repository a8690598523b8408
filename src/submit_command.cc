#include "docker_worker/exit_codes.h"
#include "docker_worker/submit_command.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <unistd.h>

#include "docker_worker/payload_validator.h"
#include "docker_worker/queue_client.h"
#include "docker_worker/run_queue.h"
#include "docker_worker/schema_validator.h"
#include "docker_worker/slugid.h"
#include "docker_worker/time_format.h"

namespace docker_worker {
namespace {

const char* kUsage =
    "usage: docker-worker submit TASK.json [--output DIR] [--root-url URL] [--task-id ID]";

bool IsResolved(const std::string& state) {
  return state == "completed" || state == "failed" || state == "exception";
}

// The state and reason of the task's last run, from a status response.
std::pair<std::string, std::string> LastRun(const json::Value& status_response) {
  const json::Value* status = json::FindObject(status_response, "status");
  if (!status) return {"unknown", ""};
  std::string state = json::GetString(*status, "state").value_or("unknown");
  std::string reason;
  if (const json::Value* runs = json::FindArray(*status, "runs"); runs && !runs->Empty()) {
    const json::Value& last = (*runs)[runs->Size() - 1];
    reason = json::GetString(last, "reasonResolved").value_or("");
  }
  return {state, reason};
}

// Streams the task log to stdout: the live log while the task runs (a reference to the worker's
// live URL), or the whole backing log once live.log has become a link to it. Waits (polling once
// a second) until the artifact exists. A live stream that fails or breaks off (the worker stops
// serving it as the task ends, a moment before live.log becomes a link) is retried, and bytes
// already printed are skipped, so the output is the log once, whole. Gives up when the task
// resolved and neither live.log nor the backing log can be read.
bool FollowLiveLog(QueueClient& queue, HttpClient& http, const std::string& task_id,
                   Clock& clock) {
  size_t printed = 0;
  bool resolved = false;
  for (;;) {
    // After the resolution the backing log is final: read it directly if live.log fails.
    for (const char* name : {"public/logs/live.log", "public/logs/live_backing.log"}) {
      if (!resolved && name != std::string_view("public/logs/live.log")) continue;
      auto url = queue.ArtifactUrl(task_id, -1, name);
      if (!url.ok()) continue;
      size_t seen = 0;
      HttpRequest req;
      req.url = *url;
      req.follow_redirects = true;
      req.decode_content = true;
      req.connect_timeout = std::chrono::seconds(10);
      req.body_sink = [&](std::string_view bytes) {
        size_t skip = printed > seen ? std::min(printed - seen, bytes.size()) : 0;
        seen += bytes.size();
        bytes.remove_prefix(skip);
        std::cout.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        std::cout.flush();
        printed += bytes.size();
        return Status::Ok();
      };
      auto r = http.Send(req);
      if (r.ok() && r->ok()) return true;
    }
    if (resolved) return false;
    auto status = queue.TaskStatus(task_id);
    resolved = status.ok() && IsResolved(LastRun(*status).first);
    if (!resolved) clock.SleepUntil(clock.Now() + std::chrono::seconds(1), {});
  }
}

Status Download(QueueClient& queue, HttpClient& http, const std::string& task_id,
                const std::string& name, const std::filesystem::path& dest) {
  auto url = queue.ArtifactUrl(task_id, -1, name);
  if (!url.ok()) return url.status();
  std::error_code ec;
  std::filesystem::create_directories(dest.parent_path(), ec);
  const std::filesystem::path part = dest.string() + ".part";
  std::ofstream out(part, std::ios::binary);
  HttpRequest req;
  req.url = *url;
  req.follow_redirects = true;
  req.decode_content = true;
  req.body_sink = [&](std::string_view bytes) {
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return out ? Status::Ok() : Status(Code::kInternal, "cannot write " + dest.string());
  };
  auto r = http.Send(req);
  out.close();
  Status result = !r.ok()     ? r.status()
                  : !r->ok()  ? Status(Code::kUnavailable,
                                       "GET " + name + ": " + std::to_string(r->status))
                  : !out      ? Status(Code::kInternal, "cannot write " + dest.string())
                              : Status::Ok();
  if (result.ok()) std::filesystem::rename(part, dest, ec);
  if (!result.ok() || ec) std::filesystem::remove(part, ec);
  return result;
}

}  // namespace

int SubmitCommand(const std::vector<std::string>& args) {
  std::string file, output, task_id = NewSlugId();
  const char* root_env = std::getenv("TASKCLUSTER_ROOT_URL");
  std::string root_url = root_env ? root_env : "";
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if ((a == "--output" || a == "--root-url" || a == "--task-id") && i + 1 < args.size()) {
      (a == "--output" ? output : a == "--root-url" ? root_url : task_id) = args[++i];
    } else if (!a.empty() && a[0] != '-' && file.empty()) {
      file = a;
    } else {
      std::cerr << "docker-worker submit: unexpected argument \"" << a << "\"\n" << kUsage << "\n";
      return kExitUsage;
    }
  }
  if (file.empty() || root_url.empty() || !LooksLikeSlugId(task_id)) {
    std::cerr << "docker-worker submit: "
              << (file.empty() ? "TASK.json is missing"
                  : root_url.empty() ? "no root URL: set TASKCLUSTER_ROOT_URL or --root-url"
                                     : "--task-id must be a slugid")
              << "\n" << kUsage << "\n";
    return kExitUsage;
  }
  if (output.empty()) output = "submit-" + task_id;
  auto doc = json::ParseFile(file);
  if (!doc.ok() || !doc->IsObject()) {
    std::cerr << "docker-worker submit: "
              << (doc.ok() ? file + ": not a JSON object" : doc.status().message()) << "\n";
    return kExitUsage;
  }
  json::Document task;
  auto& a = task.GetAllocator();
  if (LooksLikeTaskDefinition(*doc)) {
    task.Swap(*doc);
  } else {
    task.SetObject();
    task.AddMember("provisionerId", "local-provisioner", a);
    task.AddMember("workerType", "docker-worker", a);
    task.AddMember("payload", json::Value(*doc, a), a);
  }
  SystemClock clock;
  auto now = clock.Now();
  if (!json::Find(task, "created")) task.AddMember("created", json::Str(FormatIso(now), a), a);
  if (!json::Find(task, "deadline")) {
    task.AddMember("deadline", json::Str(FormatIso(now + std::chrono::hours(24)), a), a);
  }
  if (!json::Find(task, "metadata")) {
    json::Value meta(rapidjson::kObjectType);
    meta.AddMember("name", "docker-worker submit", a);
    meta.AddMember("description", json::Str("submitted from " + file, a), a);
    meta.AddMember("owner", "docker-worker@localhost.localdomain", a);
    meta.AddMember("source", "https://localhost/docker-worker-submit", a);
    task.AddMember("metadata", meta, a);
  }
  for (const auto& e : ValidateTaskDefinition(task)) {
    std::cerr << "docker-worker submit: warning: " << FormatValidationError(e) << "\n";
  }

  const char* id = std::getenv("TASKCLUSTER_CLIENT_ID");
  const char* token = std::getenv("TASKCLUSTER_ACCESS_TOKEN");
  const char* cert = std::getenv("TASKCLUSTER_CERTIFICATE");
  Credentials creds{id ? id : "", token ? token : "", cert ? cert : ""};
  HttpClient http(HttpClientOptions{.unix_socket_path = "",
                                    .peer_name = "the Taskcluster queue",
                                    .user_agent = "docker-worker-submit",
                                    .max_idle_handles = 4});
  TaskclusterClient client(http, clock, root_url, creds);
  QueueClient queue(client);
  auto created = queue.CreateTask(task_id, task);
  if (!created.ok()) {
    std::cerr << "docker-worker submit: createTask failed: " << created.status().message() << "\n";
    return created.status().code() == Code::kUnavailable ? kExitUnavailable : 1;
  }
  std::cerr << "docker-worker submit: created task " << task_id << "\n";

  FollowLiveLog(queue, http, task_id, clock);
  std::string state, reason;
  for (;;) {
    auto status = queue.TaskStatus(task_id);
    if (status.ok()) {
      std::tie(state, reason) = LastRun(*status);
      if (IsResolved(state)) break;
    }
    clock.SleepUntil(clock.Now() + std::chrono::seconds(1), {});
  }

  std::filesystem::path out_dir(output);
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  json::Document result(rapidjson::kObjectType);
  auto& ra = result.GetAllocator();
  result.AddMember("taskId", json::Str(task_id, ra), ra);
  result.AddMember("state", json::Str(state, ra), ra);
  result.AddMember("reason", json::Str(reason, ra), ra);
  json::Value downloaded(rapidjson::kArrayType);
  auto list = queue.ListLatestArtifacts(task_id);
  if (!list.ok()) {
    std::cerr << "docker-worker submit: cannot list artifacts: " << list.status().message()
              << "\n";
  }
  const std::vector<std::pair<std::string, std::string>> none;
  for (const auto& [name, type] : list.ok() ? *list : none) {
    if (type == "error" || type == "reference" || !ValidateArtifactName(name).ok()) continue;
    Status s = Download(queue, http, task_id, name, out_dir / name);
    if (s.ok()) {
      downloaded.PushBack(json::Str(name, ra), ra);
    } else {
      std::cerr << "docker-worker submit: cannot download " << name << ": " << s.message()
                << "\n";
    }
  }
  result.AddMember("artifacts", downloaded, ra);
  std::ofstream(out_dir / "result.json") << json::SerializePretty(result) << "\n";
  std::cerr << "docker-worker submit: task " << task_id << " " << state
            << (reason.empty() || reason == state ? "" : " (" + reason + ")") << "; artifacts in "
            << output << "\n";
  return ExitCodeFor(state == "completed" ? RunState::kCompleted
                     : state == "failed"  ? RunState::kFailed
                                          : RunState::kException);
}

}  // namespace docker_worker
