#include "docker_worker/privilege_gates.h"

namespace docker_worker {
namespace {

// Satisfied, refused with `message`, or the expansion's error as a failure.
Status Require(ScopeChecker& scopes, const std::vector<std::string>& alternatives,
               const std::string& message) {
  auto ok = scopes.Satisfied(alternatives);
  if (!ok.ok()) {
    return Status::TaskFailed("Could not expand the task's scopes: " + ok.status().message());
  }
  return *ok ? Status::Ok() : Status::TaskFailed(message);
}

}  // namespace

Status CheckFeatureScopes(const std::vector<std::unique_ptr<Feature>>& features,
                          const TaskContext& ctx, ScopeChecker& scopes) {
  for (const auto& f : features) {
    for (const auto& alternatives : f->RequiredScopes(ctx)) {
      if (Status s = Require(scopes, alternatives,
                             "Insufficient scopes to use '" + f->Name() + "' feature. Try adding " +
                                 alternatives.front() + " to the .scopes array.");
          !s.ok()) {
        return s;
      }
    }
  }
  return Status::Ok();
}

Status CheckPayloadPrivileges(const Payload& p, const WorkerConfig& c, ScopeChecker& scopes) {
  const std::string pool = c.WorkerPool();
  if (p.privileged) {
    if (!c.allow_privileged) {
      return Status::TaskFailed(
          "Cannot run task using docker privileged mode.  Worker must be enabled to allow "
          "running of privileged tasks.");
    }
    if (Status s = Require(scopes, PoolAlternatives("docker-worker:capability:privileged", pool),
                           "Insufficient scopes to run task in privileged mode. Try adding "
                           "docker-worker:capability:privileged to the .scopes array");
        !s.ok()) {
      return s;
    }
  }
  for (const auto& [device, wanted] : p.devices) {
    if (!wanted) continue;
    if (!c.DeviceEnabled(device)) {
      return Status::TaskFailed("Device \"" + device +
                                "\" is not enabled on this worker (deviceManagement." + device +
                                ".enabled).");
    }
    const std::string scope = "docker-worker:capability:device:" + device;
    if (Status s = Require(scopes, PoolAlternatives(scope, pool),
                           "Insufficient scopes to attach devices to task container. Try adding " +
                               scope + " to the .scopes array.");
        !s.ok()) {
      return s;
    }
  }
  for (const auto& [name, mount_point] : p.cache) {
    if (!c.caches_enabled) {
      return Status::TaskFailed("Caches are not enabled on this worker (cache.enabled), so cache \"" +
                                name + "\" cannot be attached.");
    }
    const std::string scope = "docker-worker:cache:" + name;
    if (Status s = Require(scopes, PoolAlternatives(scope, pool),
                           "Insufficient scopes to attach cache volumes. Try adding " + scope +
                               " to the .scopes array.");
        !s.ok()) {
      return s;
    }
  }
  return Status::Ok();
}

Status CheckArtifactImageScopes(const std::string& path, const std::string& image_json,
                                ScopeChecker& scopes) {
  // ^/?public/
  if (path.rfind("public/", 0) == 0 || path.rfind("/public/", 0) == 0) return Status::Ok();
  const std::string scope = "queue:get-artifact:" + path;
  return Require(scopes, {scope},
                 "Not authorized to use " + image_json +
                     ".  Ensure that the task scopes are correctly defined in the task "
                     "definition (missing scope: " + scope + ")");
}

}  // namespace docker_worker
