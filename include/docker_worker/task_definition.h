// A task as a worker receives it: the definition from the queue (or a file), and the typed view
// of its payload.
//
// TaskDefinition keeps the whole JSON document (chain of trust signs it as claimed) and reads the
// fields a worker needs. FromJson accepts either a whole task definition (an object with a
// `payload` object) or a bare payload, which it wraps with the given defaults. Fields of the
// wrong type are treated as absent here; payload problems are the validator's job.
//
// Payload is the typed view of a schema-valid payload (ParsePayload); callers validate first.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "docker_worker/clock.h"
#include "docker_worker/json.h"
#include "docker_worker/status.h"

namespace docker_worker {

struct TaskDefinition {
  std::shared_ptr<const json::Document> raw;  // the whole definition
  std::string provisioner_id;
  std::string worker_type;
  std::string scheduler_id;
  std::string task_group_id;
  std::vector<std::string> scopes;
  TimePoint created;
  TimePoint deadline;
  TimePoint expires;

  const json::Value& payload() const;

  struct Defaults {
    std::string provisioner_id;
    std::string worker_type;
    TimePoint now;
  };
  // `doc` is a task definition or a bare payload. Missing created/deadline/expires default to
  // now, now + 1 day and deadline + 1 year (the queue's defaults).
  static Result<TaskDefinition> FromJson(json::Document doc, const Defaults& defaults);
};

struct ImageSpec {
  enum class Kind { kDockerImage, kIndexedImage, kTaskImage };
  Kind kind = Kind::kDockerImage;
  std::string name;       // kDockerImage
  std::string namespace_; // kIndexedImage
  std::string task_id;    // kTaskImage
  std::string path;       // kIndexedImage, kTaskImage
  // "docker-image", "indexed-image", "task-image"
  const char* KindName() const;
};

struct ArtifactSpec {
  std::string name;
  std::string type;  // "file", "directory", "volume"
  std::string path;
  std::optional<TimePoint> expires;
};

struct Payload {
  ImageSpec image;
  std::vector<std::string> command;
  std::vector<std::pair<std::string, std::string>> env;  // in document order
  int64_t max_run_time = 0;
  std::vector<ArtifactSpec> artifacts;  // sorted by name
  std::vector<std::pair<std::string, std::string>> cache;  // name -> mount point
  bool privileged = false;
  std::map<std::string, bool> devices;
  std::vector<int64_t> retry_exit_codes;
  std::vector<int64_t> purge_cache_exit_codes;
  std::string log_name = "public/logs/live.log";
  std::vector<std::string> encrypted_env;
};

// Typed view of a schema-valid payload.
Result<Payload> ParsePayload(const json::Value& payload);

// The features a payload asks for, read leniently (before validation): members of
// `payload.features` whose value is a boolean, in document order.
std::vector<std::pair<std::string, bool>> RequestedFeatures(const json::Value& payload);

// Backing-log name for a live-log name: "public/logs/live.log" -> "public/logs/live_backing.log",
// "apple/banana.log.txt" -> "apple/banana.log_backing.txt", "x/noext" -> "x/noext_backing".
std::string BackingLogName(const std::string& log_name);

}  // namespace docker_worker
