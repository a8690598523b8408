// Reads one payload artifact (file or directory) out of a stopped container through the engine's
// archive API and hands each regular file to a callback as a local file.
//
// The tar stream is spooled under `work_dir` and read with libarchive. Only regular files are
// produced: directories, symlinks (never followed), hard links and devices are skipped, so
// nothing outside the artifact's path is ever read. Entries with absolute names or ".."
// segments are skipped with an error line in the task log. Each produced file lives only during
// its callback (deleted afterwards). Artifact names: the declared name (trailing "/" removed),
// plus "/<path inside the directory>" for directory entries.
//
// Returns ok with an ArtifactProblem when the artifact cannot be used (the caller creates an
// error artifact; the task is not failed): path missing -> file-missing-on-worker, first entry
// of another type than declared -> invalid-resource-on-worker. Returns an error Status for
// worker-side failures (disk, engine) and for a callback error.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "docker_worker/docker_engine.h"
#include "docker_worker/task_definition.h"
#include "docker_worker/task_log.h"

namespace docker_worker {

struct ArtifactFile {
  std::string name;          // artifact name
  std::string path;          // local file with the bytes
  std::string sha256;        // hex
  std::string content_type;
  int64_t size = 0;
};

struct ArtifactProblem {
  std::string reason;   // "file-missing-on-worker" or "invalid-resource-on-worker"
  std::string message;  // what the log says too
};

Result<std::optional<ArtifactProblem>> ReadArtifact(
    DockerEngine& docker, const std::string& container_id, const ArtifactSpec& spec,
    const std::string& work_dir, TaskLog& log,
    const std::function<Status(const ArtifactFile&)>& on_file);

}  // namespace docker_worker
