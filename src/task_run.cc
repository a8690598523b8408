#include "docker_worker/task_run.h"

#include <algorithm>
#include <filesystem>
#include <future>
#include <map>
#include <set>
#include <thread>

#include "docker_worker/feature_registry.h"
#include "docker_worker/image_puller.h"
#include "docker_worker/js_stringify.h"
#include "docker_worker/payload_validator.h"
#include "docker_worker/schema_validator.h"
#include "docker_worker/privilege_gates.h"
#include "docker_worker/scopes.h"
#include "docker_worker/secret_env.h"
#include "docker_worker/worker_labels.h"

namespace docker_worker {
namespace {

constexpr int64_t kShmSize = 1800000000;
constexpr auto kAttachDrainTimeout = std::chrono::seconds(30);

const char* kCancelMessage =
    "Task was canceled by another entity. This can happen using a taskcluster client or by "
    "cancelling a task within Treeherder.";
const char* kDockerConfigMessage =
    "Docker configuration could not be created.  This may indicate an authentication error "
    "when validating scopes necessary for running the task. \n ";

// Seconds as JavaScript prints ms / 1000: "3", "3.5", "3.456".
std::string FormatSeconds(int64_t ms) {
  std::string s = std::to_string(ms / 1000);
  int64_t frac = ms % 1000;
  if (frac == 0) return s;
  std::string f = std::to_string(1000 + frac).substr(1);
  while (!f.empty() && f.back() == '0') f.pop_back();
  return s + "." + f;
}

std::string OrUndefined(const std::string& s) { return s.empty() ? "undefined" : s; }

// The payload's image as upstream's messages print it: JSON.stringify of the image object, a
// plain name being {name, type: "docker-image"}.
std::string ImageDetailsJson(const json::Value& payload) {
  const json::Value* image = json::Find(payload, "image");
  if (image && image->IsObject()) return JsStringify(*image, 0);
  json::Document doc(rapidjson::kObjectType);
  auto& a = doc.GetAllocator();
  doc.AddMember("name", json::Str(image && image->IsString() ? image->GetString() : "", a), a);
  doc.AddMember("type", "docker-image", a);
  return JsStringify(doc, 0);
}

}  // namespace

TaskRun::TaskRun(Inputs inputs)
    : in_(std::move(inputs)),
      log_(in_.clock),
      ctx_(in_.config, in_.task, in_.task_id, in_.run_id, in_.queue, in_.docker, log_, in_.clock,
           stop_source_.get_token(), in_.work_dir, in_.backing_log_path),
      scopes_(in_.task.scopes, in_.expand_scopes) {
  ctx_.live_log_server = in_.live_log_server;
  ctx_.taskcluster = in_.taskcluster;
  ctx_.label_owner = in_.label_owner.empty() ? in_.config.worker_id : in_.label_owner;
  // The log exists from construction, so an Abort before Run() is logged too.
  std::error_code ec;
  std::filesystem::create_directories(in_.work_dir, ec);
  for (auto& sink : in_.log_sinks) log_.AddSink(sink);
  auto backing = FileLogSink::Create(in_.backing_log_path);
  if (backing.ok()) {
    log_.AddSink(std::shared_ptr<LogSink>(std::move(*backing)));
  } else {
    setup_error_ = Status::TaskException("internal-error", backing.status().message());
  }
}

TaskRun::~TaskRun() = default;

RunResult TaskRun::Run() {
  started_ = in_.clock.Now();
  Status status = setup_error_;
  if (status.ok()) {
    auto selected = SelectFeatures(RequestedFeatures(in_.task.payload()), in_.config);
    if (!selected.ok()) {
      log_.Error(selected.status().message());
      status = selected.status();
    } else {
      features_ = std::move(*selected);
      features_selected_ = true;
      WriteHeader();
      status = StartFeatures();
      if (status.ok()) status = ValidatePayload();
      if (status.ok()) status = PrepareImage();
      ContainerSpec spec;
      if (status.ok()) status = BuildContainerSpec(spec);
      if (status.ok()) status = RunContainer(spec);
      if (status.ok()) {
        // Upstream: a collection failure turns only a successful run into a failed one (a stop
        // is decided by Conclude from the stop kind).
        Status finished = FinishFeatures();
        if (!finished.ok() && exit_code_ == 0) status = finished;
      }
    }
  }
  return Conclude(status);
}

void TaskRun::WriteHeader() {
  const WorkerConfig& c = in_.config;
  log_.Info("Task ID: " + in_.task_id);
  log_.Info("Worker ID: " + c.worker_id);
  log_.Info("Worker Group: " + c.worker_group);
  log_.Info("Worker Node Type: " + c.worker_node_type);
  log_.Info("Worker Pool: " + c.WorkerPool());
  log_.Info(std::string("Worker Version: ") + DOCKER_WORKER_VERSION);
  log_.Info("Public IP: " + OrUndefined(c.public_ip));
  log_.Info("Hostname: " + c.hostname);
  // Read as written (the payload is validated later), like upstream.
  if (const json::Value* cache = json::FindObject(in_.task.payload(), "cache")) {
    for (const auto& m : cache->GetObject()) {
      if (!m.value.IsString()) continue;
      log_.Info("using cache \"" + std::string(m.name.GetString(), m.name.GetStringLength()) +
                "\" -> " + std::string(m.value.GetString(), m.value.GetStringLength()));
    }
  }
  log_.Write("\r\n");
}

Status TaskRun::StartFeatures() {
  for (auto& f : features_) {
    if (Status s = StoppedStatus(); !s.ok()) return s;
    Status s = f->Link(ctx_);
    if (!s.ok()) {
      log_.Error("Task was aborted because states could not be created successfully. Error "
                 "calling 'link' for " + f->Name() + " : " + s.message());
      return Status::TaskFailed(s.message());
    }
  }
  for (auto& f : features_) {
    Status s = f->Start(ctx_);
    if (!s.ok()) {
      log_.Error("Task was aborted because states could not be created successfully. Error "
                 "calling 'created' for " + f->Name() + " : " + s.message());
      return Status::TaskFailed(s.message());
    }
  }
  return Status::Ok();
}

Status TaskRun::ValidatePayload() {
  if (Status s = StoppedStatus(); !s.ok()) return s;
  const json::Value& raw = in_.task.payload();
  std::vector<ValidationError> errors = docker_worker::ValidatePayload(raw);
  if (errors.empty()) {
    auto expiry = CheckArtifactExpiry(raw, in_.task.expires, "");
    errors.insert(errors.end(), expiry.begin(), expiry.end());
  }
  if (errors.empty()) {
    auto parsed = ParsePayload(raw);
    if (!parsed.ok()) errors.push_back({"", parsed.status().message()});
    else payload_ = std::move(*parsed);
  }
  if (errors.empty()) {
    // Names the enabled features upload themselves (logs, chain of trust) are not the task's.
    for (const auto& f : features_) {
      for (const std::string& name : f->ReservedArtifacts(ctx_)) {
        for (const ArtifactSpec& a : payload_->artifacts) {
          if (a.name != name) continue;
          errors.push_back({JsonPointerAppend("/artifacts", name),
                            "artifact name \"" + name + "\" is reserved: the " + f->Name() +
                                " feature creates it"});
        }
      }
    }
    if (!errors.empty()) payload_.reset();
  }
  if (!errors.empty()) {
    std::string text = "`task.payload` format is invalid json schema errors:";
    for (const auto& e : errors) text += "\n  " + FormatValidationError(e);
    log_.Error(text);
    return Status::TaskException("malformed-payload", "task.payload is invalid");
  }
  ctx_.payload = &*payload_;
  return Status::Ok();
}

Status TaskRun::PrepareImage() {
  // The pull or download runs without the collector's lock (it may take long, and a collection
  // must not wait for it); the pin is taken under it, after a look-up that proves the image is
  // still there, so it cannot be removed between the look-up and the container's start. An
  // image collected in between is made ready again.
  constexpr int kAttempts = 3;
  for (int attempt = 1;; ++attempt) {
    if (Status s = ReadyImage(); !s.ok() || !in_.gc) return s;
    std::shared_lock<std::shared_mutex> readying = in_.gc->HoldImages();
    auto still_there = in_.docker.InspectImage(ctx_.image_id);
    if (still_there.ok()) {
      image_pin_ = in_.gc->UseImage(ctx_.image_id);
      image_info_ = std::move(*still_there);
      return Status::Ok();
    }
    if (attempt == kAttempts) {
      const std::string message = "the image " + ctx_.image_id +
                                  " was removed while the task was starting: " +
                                  still_there.status().message();
      log_.Error("Pulling docker image has failed.");
      log_.Error("Error: " + message);
      return Status::TaskFailed(message);
    }
  }
}

Status TaskRun::ReadyImage() {
  if (Status s = StoppedStatus(); !s.ok()) return s;
  const ImageSpec& image = payload_->image;
  Result<std::string> id =
      image.kind == ImageSpec::Kind::kDockerImage
          ? EnsureDockerImage(in_.docker, in_.config, image.name,
                              ImageDetailsJson(in_.task.payload()), scopes_, log_, in_.clock,
                              stop_source_.get_token())
          : PrepareArtifactImage();
  if (!id.ok()) {
    if (Status s = StoppedStatus(); !s.ok()) return s;
    log_.Error("Pulling docker image has failed.");
    log_.Error("Error: " + id.status().message());
    return Status::TaskFailed(id.status().message());
  }
  ctx_.image_id = *id;
  return Status::Ok();
}

Result<std::string> TaskRun::PrepareArtifactImage() {
  const ImageSpec& image = payload_->image;
  if (Status s = CheckArtifactImageScopes(image.path, ImageDetailsJson(in_.task.payload()),
                                          scopes_);
      !s.ok()) {
    return s;
  }
  if (!in_.taskcluster || !in_.artifact_images) {
    return Status(Code::kInvalidArgument,
                  std::string("images of type \"") + image.KindName() +
                      "\" need a Taskcluster queue, which this run does not have");
  }
  std::string task_id = image.task_id;
  if (image.kind == ImageSpec::Kind::kIndexedImage) {
    auto found = FindIndexedTask(*in_.taskcluster, image.namespace_, stop_source_.get_token());
    if (!found.ok()) return found.status();
    task_id = *found;
  }
  auto loaded = in_.artifact_images->Ensure(*in_.taskcluster, task_id, image.path, log_,
                                            stop_source_.get_token());
  if (!loaded.ok()) return loaded.status();
  ctx_.image_artifact_hash = loaded->artifact_hash;
  return loaded->image_id;
}

Status TaskRun::BuildContainerSpec(ContainerSpec& spec) {
  if (Status s = StoppedStatus(); !s.ok()) return s;
  const Payload& p = *payload_;
  const WorkerConfig& c = in_.config;
  auto refuse = [&](const std::string& message) {
    log_.Error(kDockerConfigMessage + message);
    return Status::TaskFailed(message);
  };

  if (Status s = CheckFeatureScopes(features_, ctx_, scopes_); !s.ok()) {
    return refuse(s.message());
  }
  if (Status s = CheckPayloadPrivileges(p, c, scopes_); !s.ok()) return refuse(s.message());
  for (const auto& [device, wanted] : p.devices) {
    if (!wanted) continue;
    if (device == "kvm") {
      spec.devices.push_back({.path_on_host = "/dev/kvm", .path_in_container = "/dev/kvm"});
    } else if (device == "hostSharedMemory") {
      spec.binds.push_back("/dev/shm:/dev/shm");
    } else {
      return refuse("Device \"" + device + "\" is not supported by this worker yet.");
    }
  }
  for (const auto& [name, mount_point] : p.cache) {
    Status s = CacheVolumes::CheckName(name);
    if (s.ok()) s = CacheVolumes::CheckMountPoint(name, mount_point);
    if (!s.ok()) return refuse(s.message());
  }
  if (!p.cache.empty() && !in_.caches) return refuse("This worker has no cache volumes.");
  for (const auto& [name, mount_point] : p.cache) {
    auto lease = in_.caches->Acquire(name);
    if (!lease.ok()) return refuse(lease.status().message());
    spec.binds.push_back(lease->path() + ":" + mount_point + ":rw");
    cache_leases_.push_back(std::move(*lease));
  }
  EnvVars secrets;
  if (!p.encrypted_env.empty()) {
    std::string detail;
    auto decrypted = DecryptEncryptedEnv(in_.env_decryptor, p.encrypted_env, p.env, in_.task_id,
                                         ToEpochMillis(in_.clock.Now()), &detail);
    if (!detail.empty() && in_.report_incident) in_.report_incident(detail);
    if (!decrypted.ok()) return refuse(decrypted.status().message());
    secrets = std::move(*decrypted);
  }

  // Environment: feature < payload < reserved; a later value replaces an earlier one.
  std::vector<std::pair<std::string, std::string>> env;
  std::map<std::string, size_t> index;
  auto set = [&](const std::string& name, const std::string& value) {
    auto it = index.find(name);
    if (it != index.end()) {
      env[it->second].second = value;
    } else {
      index[name] = env.size();
      env.emplace_back(name, value);
    }
  };
  for (const auto& [k, v] : ctx_.env) set(k, v);
  for (const auto& [k, v] : p.env) set(k, v);
  std::set<std::string> reserved;
  auto reserve = [&](const std::string& name, const std::string& value) {
    reserved.insert(name);
    set(name, value);
  };
  reserve("TASK_ID", in_.task_id);
  reserve("RUN_ID", std::to_string(in_.run_id));
  reserve("TASKCLUSTER_WORKER_TYPE", c.worker_type);
  reserve("TASKCLUSTER_WORKER_POOL", c.WorkerPool());
  reserve("TASKCLUSTER_INSTANCE_TYPE", OrUndefined(c.worker_node_type));
  reserve("TASKCLUSTER_WORKER_GROUP", c.worker_group);
  reserve("TASKCLUSTER_PUBLIC_IP", OrUndefined(c.public_ip));
  reserve("TASKCLUSTER_ROOT_URL", c.root_url);
  reserve("TASKCLUSTER_WORKER_LOCATION", OrUndefined(c.worker_location));

  spec.image = ctx_.image_id;
  spec.cmd = p.command;
  for (const auto& [k, v] : env) spec.env.push_back(k + "=" + v);
  // Secrets rank as payload.env: the worker's reserved variables still win (as upstream, where
  // they were merged into payload.env first).
  std::erase_if(secrets, [&](const auto& var) { return reserved.count(var.first) > 0; });
  if (!secrets.empty()) {
    if (!image_info_) {  // `run` has no collector, so PrepareImage did not look it up
      auto image = in_.docker.InspectImage(ctx_.image_id);
      if (!image.ok()) return refuse(image.status().message());
      image_info_ = std::move(*image);
    }
    auto launch = PrepareSecretEnv(secrets, *image_info_, p.command);
    if (!launch.ok()) return refuse(launch.status().message());
    spec.entrypoint = std::move(launch->entrypoint);
    spec.cmd = std::move(launch->cmd);
    secret_env_archive_ = std::move(launch->archive);
  }
  spec.labels = RunLabels(ctx_.label_owner, in_.task_id, in_.run_id);
  spec.tty = true;
  spec.privileged = p.privileged;
  spec.shm_size = kShmSize;
  spec.extra_hosts = {"localhost.localdomain:127.0.0.1"};
  spec.extra_hosts.insert(spec.extra_hosts.end(), ctx_.extra_hosts.begin(), ctx_.extra_hosts.end());
  spec.network_mode = ctx_.network;
  spec.binds.insert(spec.binds.begin(), ctx_.binds.begin(), ctx_.binds.end());
  spec.links = ctx_.links;
  spec.cap_add = ctx_.cap_add;
  spec.log_driver = "none";  // the task log is ours; the engine keeps no second copy
  return Status::Ok();
}

Status TaskRun::RunContainer(const ContainerSpec& spec) {
  auto failed_to_start = [&](const std::string& message) {
    log_.Error("Failure to properly start execution environment.");
    log_.Error(message);
    return Status::TaskFailed(message);
  };
  if (Status s = StoppedStatus(); !s.ok()) return s;
  auto created = in_.docker.CreateContainer(spec);
  if (!created.ok()) return failed_to_start(created.status().message());
  const std::string id = *created;
  {
    std::lock_guard lock(mu_);
    container_id_ = id;
  }
  ctx_.container_id = id;
  if (Status s = StoppedStatus(); !s.ok()) return s;
  if (!secret_env_archive_.empty()) {
    Status put = in_.docker.PutArchive(id, "/", secret_env_archive_);
    secret_env_archive_.clear();
    if (!put.ok()) return failed_to_start("cannot place the secret environment: " + put.message());
  }

  // Attach before start so no output is lost; the stream ends when the container exits.
  std::stop_source attach_stop;
  std::promise<bool> attached;
  std::promise<Status> attach_done;
  auto attached_future = attached.get_future();
  auto attach_future = attach_done.get_future();
  std::thread attach_thread([&] {
    bool signalled = false;
    Status s = in_.docker.AttachContainer(
        id,
        [&] {
          signalled = true;
          attached.set_value(true);
        },
        [&](std::string_view bytes) {
          log_.Write(bytes);
          return Status::Ok();
        },
        attach_stop.get_token());
    if (!signalled) attached.set_value(false);
    attach_done.set_value(s);
  });
  auto join_attach = [&](bool drain) {
    if (!drain || attach_future.wait_for(kAttachDrainTimeout) != std::future_status::ready) {
      attach_stop.request_stop();
    }
    attach_thread.join();
  };

  if (!attached_future.get()) {
    join_attach(false);
    return failed_to_start("cannot attach to the container: " + attach_future.get().message());
  }
  log_.Info("=== Task Starting ===");
  Status started = in_.docker.StartContainer(id);
  if (!started.ok()) {
    join_attach(false);
    return failed_to_start(started.message());
  }
  if (stop_kind() != StopKind::kNone) (void)in_.docker.KillContainer(id);  // raced with a stop

  std::jthread watchdog([this](std::stop_token stop) {
    auto deadline = in_.clock.Now() + std::chrono::seconds(payload_->max_run_time);
    if (in_.clock.SleepUntil(deadline, stop)) OnTimeout();
  });
  auto exit_code = in_.docker.WaitContainer(id, std::stop_token());
  watchdog.request_stop();
  watchdog.join();
  join_attach(exit_code.ok());
  if (!exit_code.ok()) {
    if (Status s = StoppedStatus(); !s.ok()) return s;
    log_.Error("Failure while waiting for the task container: " + exit_code.status().message());
    return Status::TaskException("internal-error", exit_code.status().message());
  }
  exit_code_ = *exit_code;
  container_exited_ = true;
  log_.Info("=== Task Finished ===");
  return StoppedStatus();
}

Status TaskRun::FinishFeatures() {
  Status first_error;
  for (auto& f : features_) {
    if (Status s = StoppedStatus(); !s.ok()) return s;
    Status s = f->Finish(ctx_);
    if (!s.ok() && first_error.ok()) first_error = s;
  }
  if (Status s = StoppedStatus(); !s.ok()) return s;  // a feature noticed the stop
  if (!first_error.ok()) {
    log_.Error(first_error.message());
    return Status::TaskFailed(first_error.message());
  }
  return Status::Ok();
}

RunResult TaskRun::Conclude(const Status& status) {
  StopKind stop;
  std::string reason;
  {
    std::lock_guard lock(mu_);
    concluding_ = true;
    stop = stop_;
    reason = abort_reason_;
  }
  RunResult result;
  RunOutcome outcome;
  if (stop == StopKind::kCanceled) {
    result.resolution = Resolution::Exception("canceled");
    result.canceled = outcome.canceled = true;
  } else if (stop == StopKind::kAborted) {
    result.resolution = Resolution::Exception(reason);
    outcome.aborted = true;
  } else if (stop == StopKind::kTimedOut) {
    result.resolution = Resolution::Failed();
    outcome.aborted = true;
  } else if (!status.ok()) {
    result.resolution = status.resolution().value_or(Resolution::Failed());
  } else if (exit_code_ == 0) {
    result.resolution = Resolution::Completed();
  } else if (std::find(payload_->retry_exit_codes.begin(), payload_->retry_exit_codes.end(),
                       exit_code_) != payload_->retry_exit_codes.end()) {
    result.resolution = Resolution::Exception("intermittent-task");
  } else {
    result.resolution = Resolution::Failed();
  }
  // The footer's code: the container's when it ran to its end and nothing failed afterwards.
  bool clean = stop == StopKind::kNone && status.ok() && container_exited_;
  result.exit_code = clean ? exit_code_ : -1;
  outcome.resolution = result.resolution;
  outcome.exit_code = result.exit_code;

  int64_t ms = ToEpochMillis(in_.clock.Now()) - ToEpochMillis(started_);
  result.duration_seconds = static_cast<double>(ms) / 1000.0;
  if (features_selected_) {
    log_.Info(std::string(result.resolution.state == RunState::kCompleted ? "Successful"
                                                                          : "Unsuccessful") +
              " task run with exit code: " + std::to_string(result.exit_code) +
              " completed in " + FormatSeconds(ms) + " seconds");
  }
  log_.Close();

  // The container goes before the features stop: services such as the proxy's network can only
  // be released once nothing is attached to them.
  std::string container;
  {
    std::lock_guard lock(mu_);
    container = container_id_;
  }
  // onExitStatus.purgeCaches: a failed run whose exit code is listed empties its caches.
  if (payload_ && result.resolution.state != RunState::kCompleted) {
    const auto& purge = payload_->purge_cache_exit_codes;
    if (std::find(purge.begin(), purge.end(), result.exit_code) != purge.end()) {
      for (CacheLease& lease : cache_leases_) lease.PurgeOnRelease();
    }
  }
  ReleaseContainer(container);
  image_pin_.Reset();
  for (size_t i = features_.size(); i-- > 0;) {
    Status s = features_[i]->Stop(ctx_, outcome);
    if (!s.ok() && result.resolution.state == RunState::kCompleted) {
      result.resolution = Resolution::Failed();
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(in_.work_dir, ec);
  if (in_.before_resolve) in_.before_resolve();
  if (!result.canceled) (void)in_.queue.Resolve(result.resolution);
  return result;
}

void TaskRun::ReleaseContainer(const std::string& container) {
  constexpr int kAttempts = 3;
  Status removed;
  for (int attempt = 1; !container.empty(); ++attempt) {
    removed = in_.docker.RemoveContainer(container);
    // The collector retries at every sweep; only `run` has to insist here.
    if (removed.ok() || in_.gc || attempt == kAttempts) break;
    (void)in_.clock.SleepUntil(in_.clock.Now() + std::chrono::seconds(attempt),
                               std::stop_token());
  }
  // A cache instance is free again (and purged) only once no container has it mounted.
  if (!removed.ok() && in_.gc) {
    in_.gc->RemoveLater(container, std::move(cache_leases_));
  } else if (!removed.ok()) {
    if (!cache_leases_.empty() && in_.warn) {
      std::string caches;
      for (const CacheLease& lease : cache_leases_) {
        caches += (caches.empty() ? "" : ", ") + lease.path();
      }
      in_.warn("cannot remove container " + container + " (" + removed.message() +
               "); its caches stay in use, unpurged, until this process ends: " + caches);
    }
    for (CacheLease& lease : cache_leases_) lease.HoldUntilExit();
  }
  cache_leases_.clear();
}

void TaskRun::OnTimeout() {
  RequestStop(StopKind::kTimedOut, "",
              "Task timeout after " + std::to_string(payload_->max_run_time) +
                  " seconds. Force killing container.");
}

void TaskRun::Abort(const std::string& reason) {
  RequestStop(StopKind::kAborted, reason, "Task has been aborted prematurely. Reason: " + reason);
}

void TaskRun::Cancel() { RequestStop(StopKind::kCanceled, "", kCancelMessage); }

void TaskRun::RequestStop(StopKind kind, const std::string& reason, const std::string& log_line) {
  std::string container;
  {
    std::lock_guard lock(mu_);
    if (concluding_ || stop_ != StopKind::kNone) return;
    stop_ = kind;
    abort_reason_ = reason;
    container = container_id_;
  }
  log_.Error(log_line);
  stop_source_.request_stop();
  if (!container.empty()) (void)in_.docker.KillContainer(container);
}

TaskRun::StopKind TaskRun::stop_kind() const {
  std::lock_guard lock(mu_);
  return stop_;
}

Status TaskRun::StoppedStatus() const {
  return stop_kind() == StopKind::kNone ? Status::Ok() : Status(Code::kCancelled, "run stopped");
}

}  // namespace docker_worker
