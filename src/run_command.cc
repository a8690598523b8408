#include "docker_worker/exit_codes.h"
#include "docker_worker/read_file.h"
#include "docker_worker/run_command.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "docker_worker/cache_volumes.h"
#include "docker_worker/encrypted_env.h"
#include "docker_worker/engine_api.h"
#include "docker_worker/local_run_queue.h"
#include "docker_worker/signal_watcher.h"
#include "docker_worker/slugid.h"
#include "docker_worker/task_run.h"
#include "docker_worker/time_format.h"
#include "docker_worker/worker_labels.h"

namespace docker_worker {
namespace {


const char* kUsage =
    "usage: docker-worker run FILE [--output DIR] [--task-id ID] [--scope S]... [--config FILE]";

struct Options {
  std::string file;
  std::string output;
  std::string task_id;
  std::vector<std::string> scopes;
  std::string config;
};

Result<Options> ParseArgs(const std::vector<std::string>& args) {
  Options o;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::string& out) -> Status {
      if (i + 1 >= args.size()) return Status(Code::kInvalidArgument, a + " needs a value");
      out = args[++i];
      return Status::Ok();
    };
    Status s;
    if (a == "--output" || a == "-o") {
      s = value(o.output);
    } else if (a == "--task-id") {
      s = value(o.task_id);
    } else if (a == "--scope") {
      std::string scope;
      s = value(scope);
      o.scopes.push_back(scope);
    } else if (a == "--config") {
      s = value(o.config);
    } else if (!a.empty() && a[0] == '-' && a != "-") {
      s = Status(Code::kInvalidArgument, "unknown option " + a);
    } else if (o.file.empty()) {
      o.file = a;
    } else {
      s = Status(Code::kInvalidArgument, "only one FILE may be given");
    }
    if (!s.ok()) return s;
  }
  if (o.file.empty()) return Status(Code::kInvalidArgument, "FILE is missing");
  if (o.task_id.empty()) {
    o.task_id = NewSlugId();
  } else if (!LooksLikeSlugId(o.task_id)) {
    return Status(Code::kInvalidArgument, "--task-id must be a slugid (22 characters)");
  }
  if (o.output.empty()) o.output = "run-" + o.task_id;
  return o;
}

Result<std::string> ReadInput(const std::string& file) {
  return ReadWholeFile(file == "-" ? "/dev/stdin" : file);
}

std::string ResultJson(const std::string& task_id, const RunResult& r,
                       const std::vector<LocalRunQueue::Record>& records) {
  json::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  d.AddMember("taskId", json::Str(task_id, a), a);
  d.AddMember("runId", 0, a);
  d.AddMember("state", json::Str(RunStateName(r.resolution.state), a), a);
  d.AddMember("reason", json::Str(r.resolution.reason, a), a);
  d.AddMember("exitCode", r.exit_code, a);
  d.AddMember("durationSeconds", r.duration_seconds, a);
  json::Value arts(rapidjson::kObjectType);
  for (const auto& rec : records) {
    const Artifact& art = rec.artifact;
    json::Value v(rapidjson::kObjectType);
    v.AddMember("storageType", json::Str(StorageTypeName(art.kind), a), a);
    v.AddMember("expires", json::Str(FormatIso(art.expires), a), a);
    switch (art.kind) {
      case Artifact::Kind::kFile:
        v.AddMember("path", json::Str(rec.stored_path, a), a);
        v.AddMember("contentType", json::Str(art.content_type, a), a);
        v.AddMember("sha256", json::Str(art.sha256, a), a);
        break;
      case Artifact::Kind::kError:
        v.AddMember("reason", json::Str(art.reason, a), a);
        v.AddMember("message", json::Str(art.message, a), a);
        break;
      case Artifact::Kind::kReference:
        v.AddMember("url", json::Str(art.url, a), a);
        v.AddMember("contentType", json::Str(art.content_type, a), a);
        break;
      case Artifact::Kind::kLink:
        v.AddMember("target", json::Str(art.target, a), a);
        break;
    }
    arts.AddMember(json::Str(art.name, a), v, a);
  }
  d.AddMember("artifacts", arts, a);
  return json::SerializePretty(d) + "\n";
}

}  // namespace

int RunCommand(const std::vector<std::string>& args) {
  auto opts = ParseArgs(args);
  if (!opts.ok()) {
    std::cerr << "docker-worker run: " << opts.status().message() << "\n" << kUsage << "\n";
    return kExitUsage;
  }
  WorkerConfig config = WorkerConfig::Defaults();
  if (!opts->config.empty()) {
    auto loaded = WorkerConfig::Load(opts->config);
    if (!loaded.ok()) {
      std::cerr << "docker-worker run: " << loaded.status().message() << "\n";
      return kExitUsage;
    }
    config = std::move(*loaded);
  }
  auto text = ReadInput(opts->file);
  if (!text.ok()) {
    std::cerr << "docker-worker run: " << text.status().message() << "\n";
    return kExitUsage;
  }
  auto doc = json::Parse(*text);
  if (!doc.ok()) {
    std::cerr << "docker-worker run: " << opts->file << ": " << doc.status().message() << "\n";
    return kExitUsage;
  }
  SystemClock clock;
  auto task = TaskDefinition::FromJson(
      std::move(*doc), {config.provisioner_id, config.worker_type, clock.Now()});
  if (!task.ok()) {
    std::cerr << "docker-worker run: " << opts->file << ": " << task.status().message() << "\n";
    return kExitUsage;
  }
  for (const auto& s : opts->scopes) task->scopes.push_back(s);
  // The task decides the pool, so the reserved variables match what a worker of that pool sets.
  config.provisioner_id = task->provisioner_id;
  config.worker_type = task->worker_type;
  if (config.root_url.empty()) {
    if (const char* root = std::getenv("TASKCLUSTER_ROOT_URL")) config.root_url = root;
  }

  std::string socket =
      config.docker_socket.empty() ? EngineApi::SocketFromEnvironment() : config.docker_socket;
  EngineApi docker(socket, std::chrono::milliseconds(config.pull_idle_timeout_ms));
  if (Status ping = docker.Ping(); !ping.ok()) {
    std::cerr << "docker-worker run: " << ping.message() << "\n";
    return kExitUnavailable;
  }

  auto env_decryptor = EnvDecryptor::FromConfiguredKey(config.docker_worker_private_key);
  if (!env_decryptor.ok()) {
    std::cerr << "docker-worker run: " << env_decryptor.status().message() << "\n";
    return kExitUsage;
  }
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(fs::path(opts->output) / "logs", ec);
  if (ec) {
    std::cerr << "docker-worker run: cannot create " << opts->output << ": " << ec.message()
              << "\n";
    return kExitUsage;
  }
  LocalRunQueue queue(opts->output);
  WorkerLog no_log(nullptr);
  CacheVolumes caches(config.cache_volume_path, clock, no_log);
  TaskRun run(TaskRun::Inputs{
      .config = config,
      .task = std::move(*task),
      .task_id = opts->task_id,
      .run_id = 0,
      .queue = queue,
      .docker = docker,
      .clock = clock,
      .work_dir = (fs::path(opts->output) / ".work").string(),
      .backing_log_path = (fs::path(opts->output) / "logs" / "live_backing.log").string(),
      .log_sinks = {std::make_shared<FdLogSink>(STDOUT_FILENO)},
      .before_resolve = {},
      .live_log_server = nullptr,
      .expand_scopes = {},
      .taskcluster = nullptr,
      .env_decryptor = env_decryptor->get(),
      .report_incident = [](const std::string& detail) {
        std::cerr << "docker-worker run: " << detail << "\n";
      },
      .caches = &caches,
      .gc = nullptr,
      .artifact_images = nullptr,
      // Not the daemon's label: a daemon of the same worker id must not sweep this run.
      .label_owner = RunCommandLabelOwner(config.worker_id, static_cast<long>(::getpid())),
      .warn = [](const std::string& message) {
        std::cerr << "docker-worker run: " << message << "\n";
      },
  });

  RunResult result;
  {
    // Ctrl-C / SIGTERM: abort like a worker shutdown.
    SignalWatcher signals([&](int sig) {
      std::cerr << "docker-worker run: " << (sig == SIGINT ? "interrupted" : "terminated")
                << ", aborting the task\n";
      run.Abort("worker-shutdown");
    });
    result = run.Run();
  }

  std::string result_path = (fs::path(opts->output) / "result.json").string();
  std::ofstream(result_path) << ResultJson(opts->task_id, result, queue.Records());
  std::cerr << "docker-worker run: task " << opts->task_id << " "
            << RunStateName(result.resolution.state)
            << (result.resolution.reason.empty() ? "" : " (" + result.resolution.reason + ")")
            << ", exit code " << result.exit_code << "; result in " << result_path << "\n";
  return ExitCodeFor(result.resolution.state);
}

}  // namespace docker_worker
