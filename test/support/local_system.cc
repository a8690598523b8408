#include "support/local_system.h"

#include <signal.h>
#include <sodium.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <regex>
#include <thread>

#include "docker_worker/base64.h"
#include "docker_worker/http_run_queue.h"
#include "docker_worker/json.h"
#include "docker_worker/slugid.h"
#include "docker_worker/time_format.h"

namespace docker_worker::testing {
namespace {

// Polls `done` every 100 ms for at most `seconds`.
template <typename F>
bool PollFor(int seconds, F done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return done();
}

}  // namespace

LocalSystem::LocalSystem(Options options) : options_(std::move(options)) {
  worker_id_ = "w-" + NewSlugId().substr(0, 10);
  for (char& c : worker_id_) {
    if (c == '_') c = '-';
  }
  WriteFile(dir_ / "worker.json", WorkerConfigText());
  if (!options_.worker_access_token.empty()) {
    WriteFile(dir_ / "clients.json",
              R"([{"clientId": "root", "accessToken": ")" + NewSlugId() + NewSlugId() +
                  R"(", "scopes": ["*"]}, {"clientId": "worker", "accessToken": ")" +
                  options_.worker_access_token + R"(", "scopes": ["*"]}])");
  }
  StartQueue();
  auto clients = json::Parse(ReadFile(options_.worker_access_token.empty()
                                          ? dir_ / "data/clients.json"
                                          : dir_ / "clients.json"));
  if (clients.ok() && clients->IsArray() && !clients->Empty()) {
    root_ = {json::GetString((*clients)[0], "clientId").value_or(""),
             json::GetString((*clients)[0], "accessToken").value_or(""), ""};
  }
  client_ = std::make_unique<TaskclusterClient>(http_, clock_, root_url_, root_);
  queue_ = std::make_unique<QueueClient>(*client_);
}

std::string LocalSystem::WorkerConfigText() const {
  // Test defaults under the test's own settings: a fast poll, upstream's test-profile disk
  // threshold (1 GB) and caches in the temp dir.
  auto doc = json::Parse(options_.worker_config.empty() ? "{}" : options_.worker_config);
  if (!doc.ok() || !doc->IsObject()) return options_.worker_config;
  auto& a = doc->GetAllocator();
  auto object = [&](const char* key) -> json::Value& {
    if (!doc->HasMember(key)) doc->AddMember(json::Str(key, a), json::Value(rapidjson::kObjectType), a);
    return (*doc)[key];
  };
  auto fallback = [&](json::Value& object, const char* key, json::Value value) {
    if (!object.HasMember(key)) object.AddMember(json::Str(key, a), value, a);
  };
  fallback(object("taskQueue"), "pollInterval", json::Value(200));
  fallback(object("capacityManagement"), "diskspaceThreshold", json::Value(1000000000));
  fallback(object("cache"), "volumeCachePath", json::Str(dir_ / "caches", a));
  fallback(*doc, "dockerVolume", json::Str(dir_.path(), a));
  return json::Serialize(*doc);
}

LocalSystem::~LocalSystem() {
  if (worker_proc_) StopWorker(SIGTERM);
  StopQueue(SIGTERM);
}

void LocalSystem::StartQueue() {
  std::string listen = "127.0.0.1:" + std::to_string(port_);
  std::string err = dir_ / ("queue-" + std::to_string(port_) + ".err");
  std::vector<std::string> args{WorkerBinary(), "local-queue", "--listen", listen, "--data",
                                dir_ / "data", "--claim-timeout",
                                std::to_string(options_.claim_timeout_seconds), "--poll-timeout",
                                "2"};
  if (!options_.worker_access_token.empty()) {
    args.push_back("--clients");
    args.push_back(dir_ / "clients.json");
  }
  queue_proc_ = std::make_unique<Subprocess>(args, std::map<std::string, std::string>{},
                                             dir_ / "queue.log.part", err);
  std::smatch m;
  static const std::regex kListening("listening on (http://127\\.0\\.0\\.1:([0-9]+))");
  const bool listening = PollFor(20, [&] {
    std::string text = ReadFile(err);
    if (!std::regex_search(text, m, kListening)) return false;
    root_url_ = m[1];
    port_ = std::stoi(m[2]);
    return true;
  });
  if (!listening) FAIL("local-queue did not start listening:\n" + ReadFile(err));
}

void LocalSystem::StopQueue(int sig) {
  if (!queue_proc_) return;
  queue_proc_->Signal(sig);
  queue_proc_->Wait();
  queue_proc_.reset();
  // Keep every request log line across restarts.
  std::string all = ReadFile(dir_ / "queue.log") + ReadFile(dir_ / "queue.log.part");
  WriteFile(dir_ / "queue.log", all);
}

void LocalSystem::StartWorker() {
  worker_proc_ = std::make_unique<Subprocess>(
      std::vector<std::string>{WorkerBinary(), "start", "--config", dir_ / "worker.json",
                               "--root-url", root_url_, "--provisioner-id", "local-provisioner",
                               "--worker-type", options_.worker_type, "--worker-group", "e2e",
                               "--worker-id", worker_id_, "--capacity",
                               std::to_string(options_.capacity), "--work-dir", dir_ / "work"},
      options_.worker_access_token.empty()
          ? std::map<std::string, std::string>{{"TASKCLUSTER_CLIENT_ID", root_.client_id},
                                               {"TASKCLUSTER_ACCESS_TOKEN", root_.access_token}}
          : std::map<std::string, std::string>{
                {"TASKCLUSTER_CLIENT_ID", "worker"},
                {"TASKCLUSTER_ACCESS_TOKEN", options_.worker_access_token}},
      dir_ / ("worker-" + std::to_string(++worker_starts_) + ".log"), dir_ / "worker.err");
  if (!PollFor(20, [&] { return WorkerLog().find("workerReady") != std::string::npos; })) {
    FAIL("the worker never logged workerReady:\n" + WorkerLog() + ReadFile(dir_ / "worker.err"));
  }
}

int LocalSystem::StopWorker(int sig) {
  if (!worker_proc_) return -1;
  worker_proc_->Signal(sig);
  int code = worker_proc_->Wait().exit_code;
  worker_proc_.reset();
  return code;
}

std::string LocalSystem::CreateTask(const std::string& payload, int retries,
                                    const std::vector<std::string>& scopes, std::string task_id) {
  return CreateTaskIn(options_.worker_type, payload, retries, scopes, std::move(task_id));
}

std::string LocalSystem::CreateTaskIn(const std::string& worker_type, const std::string& payload,
                                      int retries, const std::vector<std::string>& scopes,
                                      std::string task_id) {
  std::string id = task_id.empty() ? NewSlugId() : task_id;
  std::string scope_list;
  for (const auto& s : scopes) scope_list += (scope_list.empty() ? "\"" : ", \"") + s + "\"";
  auto now = clock_.Now();
  std::string def = R"({"provisionerId": "local-provisioner", "workerType": ")" +
                    worker_type + R"(", "created": ")" + FormatIso(now) +
                    R"(", "deadline": ")" + FormatIso(now + std::chrono::hours(1)) +
                    R"(", "retries": )" + std::to_string(retries) + R"(, "scopes": [)" +
                    scope_list + "]" +
                    R"(, "metadata": {"name": "e2e", "description": "e2e", "owner": "e2e@example.com",
                        "source": "https://example.com/e2e"}, "payload": )" +
                    payload + "}";
  auto doc = json::Parse(def);
  if (!doc.ok()) return "";
  auto r = queue_->CreateTask(id, *doc);
  return r.ok() ? id : "";
}

std::string LocalSystem::PublishArtifacts(const std::map<std::string, std::string>& files,
                                          const std::map<std::string, std::string>& references) {
  const std::string pool = options_.worker_type + "-publish";
  const std::string id = CreateTaskIn(pool, R"({"image": "none", "maxRunTime": 1})", 0, {}, "");
  if (id.empty()) return "";
  bool claimed = PollFor(20, [&] {
    auto claims = queue_->ClaimWork("local-provisioner/" + pool, "e2e", "publisher", 1, {});
    return claims.ok() && !claims->empty() && claims->front().task_id == id;
  });
  if (!claimed) return "";
  // The worker's own upload path (uncompressed on the wire, so the stored bytes are the file's).
  HttpRunQueue run(*queue_, http_, clock_, id, 0, dir_ / "publish", {});
  const TimePoint expires = clock_.Now() + std::chrono::hours(24);
  for (const auto& [name, url] : references) {
    docker_worker::Artifact a;
    a.kind = docker_worker::Artifact::Kind::kReference;
    a.name = name;
    a.expires = expires;
    a.content_type = "application/octet-stream";
    a.url = url;
    if (!run.CreateArtifact(a).ok()) return "";
  }
  for (const auto& [name, path] : files) {
    docker_worker::Artifact a;
    a.name = name;
    a.expires = expires;
    a.content_type = "application/octet-stream";
    a.file = path;
    a.uncompressed = true;
    if (!run.CreateArtifact(a).ok()) return "";
  }
  return run.Resolve(Resolution::Completed()).ok() ? id : "";
}

bool LocalSystem::IndexTask(const std::string& ns, const std::string& task_id) {
  auto body = json::Parse(R"({"taskId": ")" + task_id + R"(", "rank": 0, "data": {}, "expires": ")" +
                          FormatIso(clock_.Now() + std::chrono::hours(24)) + R"("})");
  if (!body.ok()) return false;
  return client_->Call("PUT", "index", "task/" + ns, &*body).ok();
}

std::pair<std::string, std::string> LocalSystem::WaitForRun(const std::string& task_id,
                                                            int run_id, int seconds) {
  std::pair<std::string, std::string> out{"timeout", ""};
  PollFor(seconds, [&] {
    auto s = queue_->TaskStatus(task_id);
    if (!s.ok()) return false;
    const json::Value* status = json::FindObject(*s, "status");
    const json::Value* runs = status ? json::FindArray(*status, "runs") : nullptr;
    if (!runs || static_cast<int>(runs->Size()) <= run_id) return false;
    const json::Value& run = (*runs)[run_id];
    std::string state = json::GetString(run, "state").value_or("");
    if (state == "pending" || state == "running") return false;
    out = {state, json::GetString(run, "reasonResolved").value_or("")};
    return true;
  });
  return out;
}

bool LocalSystem::WaitUntilRunning(const std::string& task_id, int seconds) {
  return PollFor(seconds, [&] {
    auto s = queue_->TaskStatus(task_id);
    const json::Value* status = s.ok() ? json::FindObject(*s, "status") : nullptr;
    return status && json::GetString(*status, "state") == "running";
  });
}

std::optional<std::string> LocalSystem::Artifact(const std::string& task_id,
                                                 const std::string& name) {
  auto url = queue_->ArtifactUrl(task_id, -1, name);
  if (!url.ok()) return std::nullopt;
  HttpRequest req;
  req.url = *url;
  req.follow_redirects = true;
  req.decode_content = true;
  auto r = http_.Send(req);
  if (!r.ok() || !r->ok()) return std::nullopt;
  return r->body;
}

std::string LocalSystem::WorkerLog() const {
  std::string all;
  for (int i = 1; i <= worker_starts_; ++i) all += ReadFile(dir_ / ("worker-" + std::to_string(i) + ".log"));
  return all;
}

std::string LocalSystem::QueueLog() const {
  return ReadFile(dir_ / "queue.log") + ReadFile(dir_ / "queue.log.part");
}

std::string WriteCotSigningKey(TempDir& dir) {
  REQUIRE(sodium_init() >= 0);
  unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
  crypto_sign_keypair(pk, sk);
  std::string path = dir / "cot.key";
  WriteFile(path, Base64Encode(sk, sizeof sk));
  return path;
}

}  // namespace docker_worker::testing
