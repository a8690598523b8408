#include "docker_worker/local_run_queue.h"

#include <filesystem>
#include <system_error>

namespace docker_worker {

namespace fs = std::filesystem;

Status LocalRunQueue::CreateArtifact(const Artifact& artifact) {
  Status valid = ValidateArtifactName(artifact.name);
  if (!valid.ok()) return valid;
  Record record{artifact, ""};
  if (artifact.kind == Artifact::Kind::kFile) {
    record.stored_path = "artifacts/" + artifact.name;
    fs::path dest = fs::path(dir_) / record.stored_path;
    std::error_code ec;
    fs::create_directories(dest.parent_path(), ec);
    if (ec) {
      return Status(Code::kInternal, "cannot create " + dest.parent_path().string() + ": " +
                                         ec.message());
    }
    fs::remove(dest, ec);
    fs::create_hard_link(artifact.file, dest, ec);
    if (ec) {
      ec.clear();
      fs::copy_file(artifact.file, dest, fs::copy_options::overwrite_existing, ec);
      if (ec) {
        return Status(Code::kInternal, "cannot store artifact \"" + artifact.name + "\" at " +
                                           dest.string() + ": " + ec.message());
      }
    }
  }
  std::lock_guard lock(mu_);
  for (auto& r : records_) {
    if (r.artifact.name == artifact.name) {  // re-creation replaces (e.g. live.log -> link)
      r = std::move(record);
      return Status::Ok();
    }
  }
  records_.push_back(std::move(record));
  return Status::Ok();
}

Status LocalRunQueue::Resolve(const Resolution& resolution) {
  std::lock_guard lock(mu_);
  if (resolution_) return Status(Code::kConflict, "run already resolved");
  resolution_ = resolution;
  return Status::Ok();
}

std::vector<LocalRunQueue::Record> LocalRunQueue::Records() const {
  std::lock_guard lock(mu_);
  return records_;
}

std::optional<Resolution> LocalRunQueue::resolution() const {
  std::lock_guard lock(mu_);
  return resolution_;
}

}  // namespace docker_worker
