// artifacts: every entry of payload.artifacts is read from the stopped container and uploaded
// with the run's queue. Missing or mistyped paths become error artifacts (the task goes on);
// upload failures fail the run after every artifact was tried.
#include "docker_worker/artifact_reader.h"
#include "docker_worker/features.h"

namespace docker_worker {
namespace {

class Artifacts final : public Feature {
 public:
  std::string Name() const override { return "artifacts"; }

  Status Finish(TaskContext& ctx) override {
    if (!ctx.payload || ctx.container_id.empty()) return Status::Ok();
    std::vector<std::string> failed;
    for (const auto& spec : ctx.payload->artifacts) {
      if (ctx.stop.stop_requested()) return Status(Code::kCancelled, "run stopped");
      TimePoint expires = spec.expires.value_or(ctx.task.expires);
      auto problem = ReadArtifact(
          ctx.docker, ctx.container_id, spec, ctx.work_dir, ctx.log,
          [&](const ArtifactFile& file) {
            Artifact a;
            a.kind = Artifact::Kind::kFile;
            a.name = file.name;
            a.expires = expires;
            a.content_type = file.content_type;
            a.file = file.path;
            a.sha256 = file.sha256;
            Status s = ctx.queue.CreateArtifact(a);
            if (!s.ok()) return s;
            std::lock_guard lock(ctx.mu);
            ctx.artifact_hashes[file.name] = file.sha256;
            return Status::Ok();
          });
      Status error;
      if (!problem.ok()) {
        error = problem.status();
      } else if (problem->has_value()) {
        Artifact a;
        a.kind = Artifact::Kind::kError;
        a.name = spec.name;
        a.expires = expires;
        a.reason = (*problem)->reason;
        a.message = (*problem)->message;
        error = ctx.queue.CreateArtifact(a);
      }
      if (!error.ok()) {
        ctx.log.Error("Error uploading \"" + spec.name + "\" artifact. " + error.message());
        failed.push_back(spec.name);
      }
    }
    if (!failed.empty()) {
      return Status::TaskFailed("Encountered error when uploading artifact(s)");
    }
    return Status::Ok();
  }
};

}  // namespace

std::unique_ptr<Feature> MakeArtifactsFeature() { return std::make_unique<Artifacts>(); }

}  // namespace docker_worker
