#include "docker_worker/image_puller.h"

#include <algorithm>
#include <cctype>
#include <map>

#include "docker_worker/backoff.h"
#include "docker_worker/registry_auth.h"

namespace docker_worker {
namespace {

// Transient failures only (the engine classifies registry messages: a missing image, denied
// access or a bad reference come back as kNotFound, kPermissionDenied, kInvalidArgument).
bool RetryablePullError(const Status& s) {
  return s.code() == Code::kInternal || s.code() == Code::kUnavailable ||
         s.code() == Code::kDeadlineExceeded;
}

constexpr char kImageScopePrefix[] = "docker-worker:image:";

// `text` with every occurrence of `secret` replaced (engines never echo a password, but an error
// message must not carry one even if some registry did).
std::string Redact(std::string text, const std::string& secret) {
  if (secret.empty()) return text;
  for (size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at)) {
    text.replace(at, secret.size(), "***");
    at += 3;
  }
  return text;
}

// The engine's pull error, reworded for the task author where the engine's words are unclear:
// a registry refusing access (the engine answers 500 with "no basic auth credentials",
// "unauthorized: ..." or "denied"; EngineApi classifies them as kPermissionDenied).
Status ExplainPullError(const Status& error, const ImageReference& ref,
                        const RegistryCredentialMatch& registry) {
  const std::string password = registry.credentials ? registry.credentials->password : "";
  std::string engine_message = Redact(error.message(), password);
  if (error.code() != Code::kPermissionDenied) return Status(error.code(), engine_message);
  if (registry.credentials) {
    return Status(Code::kPermissionDenied,
                  "the registry " + registry.registry + " refused the credentials this worker " +
                      "has for it (worker config \"registries\", key \"" + registry.key +
                      "\") when pulling " + ref.ToString() + ": " + engine_message);
  }
  const std::string& host = registry.registry;  // set for any repository of 2+ components
  if (host.empty()) return Status(Code::kPermissionDenied, engine_message);
  return Status(Code::kPermissionDenied,
                "the registry " + host + " refused to serve " + ref.ToString() +
                    " without credentials (the image does not exist there, or it is private " +
                    "and this worker has no credentials for " + host +
                    " in its config \"registries\"): " + engine_message);
}

// Writes pull progress to the log: every status change of a layer, and a progress line for a
// layer at most every 5 s.
class PullProgressLog {
 public:
  PullProgressLog(TaskLog& log, Clock& clock) : log_(log), clock_(clock) {}
  void operator()(const PullEvent& e) {
    auto now = clock_.Now();
    auto& last = layers_[e.id];
    bool changed = e.status != last.status;
    if (!changed && now - last.printed < std::chrono::seconds(5)) return;
    last.status = e.status;
    last.printed = now;
    std::string line = e.id.empty() ? e.status : e.id + ": " + e.status;
    if (!e.progress.empty()) line += " " + e.progress;
    line += "\r\n";
    log_.Write(line);
  }

 private:
  struct Layer {
    std::string status;
    TimePoint printed;
  };
  TaskLog& log_;
  Clock& clock_;
  std::map<std::string, Layer> layers_;
};

}  // namespace

std::string ImageReference::ToString() const {
  if (!digest.empty()) return repository + "@" + digest;
  return repository + ":" + tag;
}

Result<ImageReference> ParseImageReference(std::string_view name) {
  auto bad = [&](const std::string& why) {
    return Status(Code::kInvalidArgument,
                  "invalid image name \"" + std::string(name) + "\": " + why);
  };
  if (name.empty()) return bad("empty");
  if (name.size() > 1024) return bad("too long");
  for (unsigned char c : name) {
    if (!(std::isalnum(c) || c == '.' || c == '_' || c == '-' || c == '/' || c == ':' ||
          c == '@')) {
      return bad(std::string("character '") + static_cast<char>(c) + "' is not allowed");
    }
  }
  ImageReference ref;
  std::string rest(name);
  if (size_t at = rest.find('@'); at != std::string::npos) {
    ref.digest = rest.substr(at + 1);
    rest = rest.substr(0, at);
    if (ref.digest.find(':') == std::string::npos) return bad("digest must be algorithm:hex");
  }
  size_t slash = rest.rfind('/');
  size_t colon = rest.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    ref.tag = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
    if (ref.tag.empty()) return bad("empty tag");
  }
  if (rest.empty()) return bad("empty repository");
  if (rest.front() == '/' || rest.back() == '/' || rest.find("//") != std::string::npos) {
    return bad("malformed repository path");
  }
  // Docker wants lower case in the path (a registry host may have upper case).
  size_t first_slash = rest.find('/');
  std::string path_part = rest;
  if (first_slash != std::string::npos) {
    std::string host = rest.substr(0, first_slash);
    if (host.find('.') != std::string::npos || host.find(':') != std::string::npos ||
        host == "localhost") {
      path_part = rest.substr(first_slash + 1);
    }
  }
  if (std::any_of(path_part.begin(), path_part.end(),
                  [](unsigned char c) { return std::isupper(c); })) {
    return bad("repository names must be lower case");
  }
  ref.repository = rest;
  if (ref.tag.empty() && ref.digest.empty()) ref.tag = "latest";
  return ref;
}

Result<std::string> EnsureDockerImage(DockerEngine& docker, const WorkerConfig& config,
                                      const std::string& name, const std::string& details_json,
                                      ScopeChecker& scopes, TaskLog& log, Clock& clock,
                                      std::stop_token stop) {
  auto ref = ParseImageReference(name);
  if (!ref.ok()) return ref.status();
  const RegistryCredentialMatch registry = FindRegistryCredentials(ref->repository, config);
  std::string auth;
  if (registry.credentials) {
    auto allowed = scopes.Satisfied({kImageScopePrefix + ref->ToString()});
    if (!allowed.ok()) return allowed.status();
    if (!*allowed) {
      return Status(Code::kPermissionDenied,
                    "Not authorized to use " + details_json +
                        ".  Ensure that the task scopes are correctly defined in the task "
                        "definition");
    }
  }
  auto present = docker.InspectImage(name);
  if (present.ok()) return present->id;
  if (present.status().code() != Code::kNotFound) return present.status();

  if (registry.credentials) {
    auth = RegistryAuthHeader(*registry.credentials, registry.registry);
    log.Info("Pulling docker image " + ref->ToString() + " with this worker's credentials for " +
             registry.registry);
  } else {
    log.Info("Pulling docker image " + ref->ToString());
  }
  PullProgressLog progress(log, clock);
  const int attempts = std::max(1, config.pull_max_attempts);
  const Backoff backoff = config.PullBackoff();
  Status last;
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    last = docker.PullImage(ref->repository, ref->digest.empty() ? ref->tag : ref->digest, auth,
                            std::ref(progress), stop);
    if (last.ok()) break;
    last = ExplainPullError(last, *ref, registry);
    if (!RetryablePullError(last) || attempt == attempts || stop.stop_requested()) break;
    auto delay = backoff.Delay(attempt - 1);
    log.Info("Pull of " + ref->ToString() + " failed (" + last.message() + "); retrying in " +
             std::to_string(delay.count() / 1000.0).substr(0, 5) + " s");
    if (!clock.SleepUntil(clock.Now() + delay, stop)) {
      return Status(Code::kCancelled, "image pull cancelled");
    }
  }
  if (!last.ok()) return last;
  auto pulled = docker.InspectImage(name);
  if (!pulled.ok()) {
    return Status(Code::kNotFound, "image " + ref->ToString() + " missing after pulling");
  }
  return pulled->id;
}

}  // namespace docker_worker
