// Makes a payload's `docker-image` available on the engine: used as is when present, else
// pulled through the Engine API with progress written to the task log.
//
// ParseImageReference splits "registry:port/repo/name:tag@sha256:..." into repository, tag
// (default "latest") and digest, and rejects names Docker would refuse, naming the problem.
// EnsureDockerImage returns the image id. Pulls are retried on transient engine errors
// (config dockerConfig.maxAttempts, delay delayFactor * 2^(n-1) +- randomizationFactor), never
// on "not found"/"denied"-class errors; waits use the Clock and end early when `stop` fires.
#pragma once

#include <stop_token>
#include <string>

#include "docker_worker/clock.h"
#include "docker_worker/docker_engine.h"
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

Result<std::string> EnsureDockerImage(DockerEngine& docker, const WorkerConfig& config,
                                      const std::string& name, TaskLog& log, Clock& clock,
                                      std::stop_token stop);

}  // namespace docker_worker
