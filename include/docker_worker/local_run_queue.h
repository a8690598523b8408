// A RunQueue that writes to a local folder, for `docker-worker run`.
//
// kFile artifacts are stored under <dir>/artifacts/<name> (hard-linked when the source is on
// the same filesystem, copied otherwise); other kinds are only recorded. Records() lists what
// was created, in order, for result.json. The resolution is recorded, once. Thread-safe.
#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "docker_worker/run_queue.h"

namespace docker_worker {

class LocalRunQueue final : public RunQueue {
 public:
  struct Record {
    Artifact artifact;
    std::string stored_path;  // kFile: path relative to the folder, e.g. "artifacts/public/x"
  };

  explicit LocalRunQueue(std::string dir) : dir_(std::move(dir)) {}

  Status CreateArtifact(const Artifact& artifact) override;
  Status Resolve(const Resolution& resolution) override;

  std::vector<Record> Records() const;
  std::optional<Resolution> resolution() const;

 private:
  const std::string dir_;
  mutable std::mutex mu_;
  std::vector<Record> records_;
  std::optional<Resolution> resolution_;
};

}  // namespace docker_worker
