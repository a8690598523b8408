// Makes a payload's `docker-image` available on the engine: used as is when present, else
// pulled through the Engine API with progress written to the task log.
//
// ParseImageReference splits "registry:port/repo/name:tag@sha256:..." into repository, tag
// (default "latest") and digest, and rejects names Docker would refuse, naming the problem.
// EnsureDockerImage returns the image id. When the worker has registry credentials for the image
// (registry_auth.h), the task must hold `docker-worker:image:<repository>:<tag>` (checked before
// anything else, even for an image already present, as upstream; roles count) or it gets
// upstream's "Not authorized to use <details_json>. ..." error; the credentials then go to the
// engine with the pull and nowhere else (no message or log line holds the password). A registry
// refusing access becomes a message naming the registry and saying whether configured
// credentials were refused or none were sent. Pulls are retried on transient engine errors,
// stalls included (the engine's pull idle timeout, dockerConfig.pullIdleTimeout), with
// dockerConfig.maxAttempts and delay delayFactor * 2^(n-1) +- randomizationFactor; never on
// "not found", "denied" or bad-name errors. Waits use the Clock and end early when `stop` fires.
#pragma once

#include <stop_token>
#include <string>

#include "docker_worker/clock.h"
#include "docker_worker/docker_engine.h"
#include "docker_worker/scopes.h"
#include "docker_worker/task_log.h"
#include "docker_worker/worker_config.h"

namespace docker_worker {

struct ImageReference {
  std::string repository;  // "127.0.0.1:5000/team/app", "ubuntu"
  std::string tag;         // "latest" when neither tag nor digest was given
  std::string digest;      // "sha256:..." or ""
  // repository:tag, or repository@digest.
  std::string ToString() const;
};

Result<ImageReference> ParseImageReference(std::string_view name);

// `details_json`: the payload's image as upstream's messages print it (JSON.stringify of
// {name, type} for a plain name). `scopes`: the task's.
Result<std::string> EnsureDockerImage(DockerEngine& docker, const WorkerConfig& config,
                                      const std::string& name, const std::string& details_json,
                                      ScopeChecker& scopes, TaskLog& log, Clock& clock,
                                      std::stop_token stop);

}  // namespace docker_worker
