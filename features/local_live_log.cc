// localLiveLog: publishes the task log.
//  Link: with a live log server (the daemon), registers the backing file there, feeds it from
//        the task log, and creates `<log>` (default public/logs/live.log) as a reference
//        artifact to the live URL.
//  Stop: uploads the backing log as `<dir>/<name>_backing<ext>` (gzip on the wire), then turns
//        `<log>` into a link to it, and unregisters the live URL. Nothing when canceled.
#include "docker_worker/features.h"

namespace docker_worker {
namespace {

constexpr const char* kLogType = "text/plain; charset=utf-8";

class LocalLiveLog final : public Feature {
 public:
  std::string Name() const override { return "localLiveLog"; }

  std::vector<std::string> ReservedArtifacts(const TaskContext& ctx) const override {
    std::string live = LiveName(ctx);
    return {live, BackingLogName(live)};
  }

  Status Link(TaskContext& ctx) override {
    if (!ctx.live_log_server) return Status::Ok();
    live_ = ctx.live_log_server->Open(ctx.backing_log_path);
    ctx.log.AddSink(live_->sink());
    Artifact ref;
    ref.kind = Artifact::Kind::kReference;
    ref.name = LiveName(ctx);
    ref.expires = ctx.task.expires;
    ref.content_type = kLogType;
    ref.url = live_->url();
    Status s = ctx.queue.CreateArtifact(ref);
    if (!s.ok()) return s.Prefixed("cannot create the live log artifact: ");
    return Status::Ok();
  }

  Status Stop(TaskContext& ctx, const RunOutcome& outcome) override {
    struct CloseLive {
      std::shared_ptr<LiveLog>& live;
      ~CloseLive() {
        if (live) live->Close();
      }
    } close_live{live_};
    if (outcome.canceled) return Status::Ok();
    Artifact backing;
    backing.kind = Artifact::Kind::kFile;
    backing.name = BackingLogName(LiveName(ctx));
    backing.expires = ctx.task.expires;
    backing.content_type = kLogType;
    backing.file = ctx.backing_log_path;
    backing.sha256 = ctx.log.sha256_hex();
    Status s = ctx.queue.CreateArtifact(backing);
    if (!s.ok()) return s.Prefixed("cannot upload the backing log: ");
    if (live_) {
      Artifact link;
      link.kind = Artifact::Kind::kLink;
      link.name = LiveName(ctx);
      link.expires = ctx.task.expires;
      link.content_type = kLogType;
      link.target = backing.name;
      s = ctx.queue.CreateArtifact(link);
      if (!s.ok()) return s.Prefixed("cannot link the live log to the backing log: ");
    }
    return Status::Ok();
  }

 private:
  static std::string LiveName(const TaskContext& ctx) {
    return json::GetString(ctx.task.payload(), "log").value_or("public/logs/live.log");
  }

  std::shared_ptr<LiveLog> live_;
};

}  // namespace

std::unique_ptr<Feature> MakeLocalLiveLogFeature() { return std::make_unique<LocalLiveLog>(); }

}  // namespace docker_worker
