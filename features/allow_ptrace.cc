// allowPtrace: lets the task's processes ptrace each other (debuggers, sanitizers, rr).
//  Scope: docker-worker:feature:allowPtrace (or its pool-suffixed form).
//  Link:  adds the SYS_PTRACE capability to the task container.
#include "docker_worker/features.h"
#include "docker_worker/scopes.h"

namespace docker_worker {
namespace {

class AllowPtrace final : public Feature {
 public:
  std::string Name() const override { return "allowPtrace"; }

  std::vector<std::vector<std::string>> RequiredScopes(const TaskContext& ctx) const override {
    return {PoolAlternatives("docker-worker:feature:allowPtrace", ctx.config.WorkerPool())};
  }

  Status Link(TaskContext& ctx) override {
    ctx.cap_add.push_back("SYS_PTRACE");
    return Status::Ok();
  }
};

}  // namespace

std::unique_ptr<Feature> MakeAllowPtraceFeature() { return std::make_unique<AllowPtrace>(); }

}  // namespace docker_worker
