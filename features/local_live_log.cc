// localLiveLog: publishes the task log. Today: the backing log is uploaded when the run ends
// (`<dir>/<name>_backing<ext>` of payload.log, default public/logs/live_backing.log).
#include "docker_worker/features.h"

namespace docker_worker {
namespace {

class LocalLiveLog final : public Feature {
 public:
  std::string Name() const override { return "localLiveLog"; }

  std::vector<std::string> ReservedArtifacts(const TaskContext& ctx) const override {
    std::string live = LiveName(ctx);
    return {live, BackingLogName(live)};
  }

  Status Stop(TaskContext& ctx, const RunOutcome& outcome) override {
    if (outcome.canceled) return Status::Ok();
    Artifact backing;
    backing.kind = Artifact::Kind::kFile;
    backing.name = BackingLogName(LiveName(ctx));
    backing.expires = ctx.task.expires;
    backing.content_type = "text/plain; charset=utf-8";
    backing.file = ctx.backing_log_path;
    backing.sha256 = ctx.log.sha256_hex();
    Status s = ctx.queue.CreateArtifact(backing);
    if (!s.ok()) return s.Prefixed("cannot upload the backing log: ");
    return Status::Ok();
  }

 private:
  static std::string LiveName(const TaskContext& ctx) {
    return json::GetString(ctx.task.payload(), "log").value_or("public/logs/live.log");
  }
};

}  // namespace

std::unique_ptr<Feature> MakeLocalLiveLogFeature() { return std::make_unique<LocalLiveLog>(); }

}  // namespace docker_worker
