#include "docker_worker/exit_codes.h"
#include "docker_worker/start_command.h"

#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <regex>

#include "docker_worker/cache_volumes.h"
#include "docker_worker/encrypted_env.h"
#include "docker_worker/engine_api.h"
#include "docker_worker/http_queue.h"
#include "docker_worker/live_log_server.h"
#include "docker_worker/signal_watcher.h"
#include "docker_worker/worker.h"

namespace docker_worker {
namespace {


const char* kUsage =
    "usage: docker-worker start [--config FILE] [--root-url URL] [--provisioner-id ID]\n"
    "                           [--worker-type TYPE] [--worker-group GROUP] [--worker-id ID]\n"
    "                           [--capacity N] [--work-dir DIR]";

// Sets doc[path...] = value, creating objects on the way.
void SetPath(json::Document& doc, std::initializer_list<const char*> path, json::Value value) {
  auto& a = doc.GetAllocator();
  json::Value* node = &doc;
  size_t i = 0;
  for (const char* key : path) {
    bool last = ++i == path.size();
    auto it = node->FindMember(key);
    if (it == node->MemberEnd()) {
      node->AddMember(json::Value(key, a), last ? json::Value() : json::Value(rapidjson::kObjectType), a);
      it = node->FindMember(key);
    }
    if (last) {
      it->value = std::move(value);
    } else {
      if (!it->value.IsObject()) it->value.SetObject();
      node = &it->value;
    }
  }
}

Status CheckIdentity(const WorkerConfig& c) {
  static const std::regex kId("^[a-zA-Z0-9_-]{1,38}$");
  static const std::regex kType("^[a-z]([-a-z0-9]{0,36}[a-z0-9])?$");
  if (c.root_url.empty()) {
    return Status(Code::kInvalidArgument,
                  "no root URL: pass --root-url or set TASKCLUSTER_ROOT_URL or rootUrl");
  }
  if (c.client_id.empty() || c.access_token.empty()) {
    return Status(Code::kInvalidArgument,
                  "no credentials: set TASKCLUSTER_CLIENT_ID and TASKCLUSTER_ACCESS_TOKEN (or "
                  "taskcluster.clientId/accessToken in the config)");
  }
  if (!std::regex_match(c.provisioner_id, kId)) {
    return Status(Code::kInvalidArgument, "invalid provisionerId \"" + c.provisioner_id + "\"");
  }
  if (!std::regex_match(c.worker_type, kType)) {
    return Status(Code::kInvalidArgument, "invalid workerType \"" + c.worker_type + "\"");
  }
  if (!std::regex_match(c.worker_group, kId)) {
    return Status(Code::kInvalidArgument, "invalid workerGroup \"" + c.worker_group + "\"");
  }
  if (!std::regex_match(c.worker_id, kId)) {
    return Status(Code::kInvalidArgument, "invalid workerId \"" + c.worker_id + "\"");
  }
  if (c.capacity < 1) return Status(Code::kInvalidArgument, "capacity must be at least 1");
  return Status::Ok();
}

}  // namespace

int StartCommand(const std::vector<std::string>& args) {
  std::map<std::string, std::string> flags;
  std::string config_file;
  std::string work_dir = "/tmp/docker-worker";
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (i + 1 >= args.size() || a.rfind("--", 0) != 0) {
      std::cerr << "docker-worker start: unexpected argument \"" << a << "\"\n" << kUsage << "\n";
      return kExitUsage;
    }
    const std::string& v = args[++i];
    if (a == "--config") {
      config_file = v;
    } else if (a == "--work-dir") {
      work_dir = v;
    } else if (a == "--root-url" || a == "--provisioner-id" || a == "--worker-type" ||
               a == "--worker-group" || a == "--worker-id" || a == "--capacity") {
      flags[a] = v;
    } else {
      std::cerr << "docker-worker start: unknown option " << a << "\n" << kUsage << "\n";
      return kExitUsage;
    }
  }

  json::Document doc(rapidjson::kObjectType);
  if (!config_file.empty()) {
    auto file = json::ParseFile(config_file);
    if (!file.ok() || !file->IsObject()) {
      std::cerr << "docker-worker start: "
                << (file.ok() ? config_file + ": not a JSON object" : file.status().message())
                << "\n";
      return kExitUsage;
    }
    doc.Swap(*file);
  }
  auto& a = doc.GetAllocator();
  auto env = [](const char* name) -> const char* {
    const char* v = std::getenv(name);
    return v && *v ? v : nullptr;
  };
  if (const char* v = env("TASKCLUSTER_ROOT_URL")) SetPath(doc, {"rootUrl"}, json::Str(v, a));
  if (const char* v = env("TASKCLUSTER_CLIENT_ID")) {
    SetPath(doc, {"taskcluster", "clientId"}, json::Str(v, a));
  }
  if (const char* v = env("TASKCLUSTER_ACCESS_TOKEN")) {
    SetPath(doc, {"taskcluster", "accessToken"}, json::Str(v, a));
  }
  if (const char* v = env("TASKCLUSTER_CERTIFICATE")) {
    SetPath(doc, {"taskcluster", "certificate"}, json::Str(v, a));
  }
  const std::map<std::string, const char*> keys = {{"--root-url", "rootUrl"},
                                                   {"--provisioner-id", "provisionerId"},
                                                   {"--worker-type", "workerType"},
                                                   {"--worker-group", "workerGroup"},
                                                   {"--worker-id", "workerId"}};
  for (const auto& [flag, value] : flags) {
    if (flag == "--capacity") {
      char* end = nullptr;
      long n = std::strtol(value.c_str(), &end, 10);
      if (value.empty() || *end || n < 1 || n > 1000) {
        std::cerr << "docker-worker start: --capacity must be a number from 1 to 1000\n";
        return kExitUsage;
      }
      SetPath(doc, {"capacity"}, json::Value(static_cast<int>(n)));
    } else {
      SetPath(doc, {keys.at(flag)}, json::Str(value, a));
    }
  }
  auto config = WorkerConfig::FromJson(doc);
  if (!config.ok()) {
    std::cerr << "docker-worker start: " << config.status().message() << "\n";
    return kExitUsage;
  }
  if (Status s = CheckIdentity(*config); !s.ok()) {
    std::cerr << "docker-worker start: " << s.message() << "\n";
    return kExitUsage;
  }

  std::string socket =
      config->docker_socket.empty() ? EngineApi::SocketFromEnvironment() : config->docker_socket;
  EngineApi docker(socket, std::chrono::milliseconds(config->pull_idle_timeout_ms));
  if (Status ping = docker.Ping(); !ping.ok()) {
    std::cerr << "docker-worker start: " << ping.message() << "\n";
    return kExitUnavailable;
  }
  auto env_decryptor = EnvDecryptor::FromConfiguredKey(config->docker_worker_private_key);
  if (!env_decryptor.ok()) {
    std::cerr << "docker-worker start: " << env_decryptor.status().message() << "\n";
    return kExitUsage;
  }
  std::error_code ec;
  std::filesystem::create_directories(work_dir, ec);
  if (ec) {
    std::cerr << "docker-worker start: cannot create " << work_dir << ": " << ec.message() << "\n";
    return kExitUsage;
  }

  // Signals first: every thread started afterwards (servers, tasks) inherits the mask.
  WorkerLog log(stdout);
  std::atomic<Worker*> running_worker{nullptr};
  std::atomic<bool> stop_requested{false};
  auto signals = std::make_unique<SignalWatcher>([&](int sig) {
    log.Event("signal", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
    stop_requested = true;
    if (Worker* w = running_worker.load()) w->Shutdown(true);
  });

  SystemClock clock;
  HttpClient http(HttpClientOptions{.unix_socket_path = "",
                                    .peer_name = "the Taskcluster queue",
                                    .user_agent = "docker-worker/" DOCKER_WORKER_VERSION,
                                    .max_idle_handles = 8});
  HttpQueue queue(HttpQueueOptions{.root_url = config->root_url,
                                   .worker_credentials = {config->client_id, config->access_token,
                                                          config->certificate},
                                   .provisioner_id = config->provisioner_id,
                                   .worker_type = config->worker_type,
                                   .worker_group = config->worker_group,
                                   .worker_id = config->worker_id,
                                   .skip_compression_extensions =
                                       config->skip_compression_extensions},
                  http, clock);
  LiveLogServer::Options live_options;
  live_options.listen_address = config->live_log_listen_address;
  live_options.port = static_cast<uint16_t>(config->live_log_port);
  live_options.public_hostname = config->live_log_public_hostname;
  auto live_log = LiveLogServer::Start(live_options);
  if (!live_log.ok()) {
    std::cerr << "docker-worker start: live log server: " << live_log.status().message() << "\n";
    return kExitUnavailable;
  }
  log.Event("liveLog", {{"url", (*live_log)->UrlFor("<token>")}});
  CacheVolumes caches(config->cache_volume_path, clock, log);
  Worker worker(*config, queue, docker, clock, log, work_dir, live_log->get(),
                env_decryptor->get(), &caches);

  running_worker = &worker;
  if (stop_requested) worker.Shutdown(true);
  worker.Run();
  running_worker = nullptr;
  signals.reset();  // joined before `worker` goes away
  return 0;
}

}  // namespace docker_worker
