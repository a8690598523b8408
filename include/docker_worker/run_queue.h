// The queue as one task run sees it (a seam): where artifacts go and where the run resolves.
//
// Implementations: LocalRunQueue (`docker-worker run`: a folder), the Taskcluster queue over
// HTTP (the daemon; uses the run's temporary credentials) and an in-memory fake for unit tests.
// Calls may come from several threads. CreateArtifact for kFile reads `file` before returning
// and never deletes it; the caller owns the file. Errors are values (kUnavailable for a queue
// that cannot be reached, kConflict when the run is already resolved, kInvalidArgument for a
// bad artifact name).
#pragma once

#include <string>
#include <vector>

#include "docker_worker/clock.h"
#include "docker_worker/status.h"

namespace docker_worker {

struct Artifact {
  enum class Kind { kFile, kError, kReference, kLink };

  Kind kind = Kind::kFile;
  std::string name;          // e.g. "public/logs/live_backing.log"
  TimePoint expires;
  std::string content_type;  // kFile, kReference
  std::string file;          // kFile: local path of the bytes (uncompressed)
  std::string sha256;        // kFile: hex SHA-256 of the bytes, when the producer knows it
  bool uncompressed = false; // kFile: never gzip on the wire (signed bytes, as upstream)
  std::string url;           // kReference
  std::string target;        // kLink: name of the artifact linked to
  std::string reason;        // kError: file-missing-on-worker, invalid-resource-on-worker, ...
  std::string message;       // kError
};

// Queue storage type name of an artifact kind: "s3", "error", "reference", "link".
const char* StorageTypeName(Artifact::Kind kind);

// Checks an artifact name: non-empty, no leading "/", no empty, "." or ".." segments, no NUL
// or control characters. The message names the artifact.
Status ValidateArtifactName(const std::string& name);

class RunQueue {
 public:
  virtual ~RunQueue() = default;
  virtual Status CreateArtifact(const Artifact& artifact) = 0;
  virtual Status Resolve(const Resolution& resolution) = 0;
};

}  // namespace docker_worker
