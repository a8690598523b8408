// An in-memory RunQueue: records every artifact (with the bytes of kFile artifacts, read at
// creation) and the resolution. `fail_names` makes CreateArtifact fail for those names.
#pragma once

#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>

#include "docker_worker/run_queue.h"

namespace docker_worker::testing {

class FakeRunQueue final : public RunQueue {
 public:
  struct Stored {
    Artifact artifact;
    std::string content;
  };

  std::set<std::string> fail_names;

  Status CreateArtifact(const Artifact& artifact) override {
    if (Status s = ValidateArtifactName(artifact.name); !s.ok()) return s;
    if (fail_names.count(artifact.name)) return Status(Code::kUnavailable, "upload refused");
    Stored stored{artifact, ""};
    if (artifact.kind == Artifact::Kind::kFile) {
      std::ifstream in(artifact.file, std::ios::binary);
      if (!in) return Status(Code::kNotFound, "no file " + artifact.file);
      std::stringstream buf;
      buf << in.rdbuf();
      stored.content = buf.str();
    }
    std::lock_guard lock(mu_);
    artifacts_[artifact.name] = std::move(stored);
    return Status::Ok();
  }

  Status Resolve(const Resolution& resolution) override {
    std::lock_guard lock(mu_);
    if (resolution_) return Status(Code::kConflict, "already resolved");
    resolution_ = resolution;
    ++resolves_;
    return Status::Ok();
  }

  std::map<std::string, Stored> artifacts() const {
    std::lock_guard lock(mu_);
    return artifacts_;
  }
  std::optional<Resolution> resolution() const {
    std::lock_guard lock(mu_);
    return resolution_;
  }
  int resolves() const {
    std::lock_guard lock(mu_);
    return resolves_;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, Stored> artifacts_;
  std::optional<Resolution> resolution_;
  int resolves_ = 0;
};

}  // namespace docker_worker::testing
