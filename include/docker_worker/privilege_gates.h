// The consent rule for everything that reaches beyond a plain container: privileged mode, each
// host device, caches, and scope-gated features (allowPtrace). A thing is granted only when all
// three agree: the worker's config allows it, the task holds the scope (roles expanded), and the
// payload asks for it. Not asking is never an error; asking without the config's consent or the
// task's scope fails the task with upstream's message.
//
//   privileged  dockerConfig.allowPrivileged, docker-worker:capability:privileged[:<pool>]
//   device D    deviceManagement.D.enabled,   docker-worker:capability:device:D[:<pool>]
//   cache N     cache.enabled,                docker-worker:cache:N[:<pool>]
//   feature F   features.F.enabled (SelectFeatures), Feature::RequiredScopes (CheckFeatureScopes)
//   artifact image of a non-public path P (task-image, indexed-image): queue:get-artifact:P
//               (no config switch; paths matching ^/?public/ need nothing)
//
// Checks run in upstream's order (feature scopes, privileged, devices, caches); the first refusal
// is returned as a TaskFailed status carrying the message. A failed role expansion is a
// TaskFailed too (the queue or auth service could not vouch for the scopes).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "docker_worker/feature.h"
#include "docker_worker/scopes.h"
#include "docker_worker/status.h"
#include "docker_worker/task_definition.h"
#include "docker_worker/worker_config.h"

namespace docker_worker {

// Scope requirements of the selected features.
Status CheckFeatureScopes(const std::vector<std::unique_ptr<Feature>>& features,
                          const TaskContext& ctx, ScopeChecker& scopes);

// privileged, devices and caches of the payload.
Status CheckPayloadPrivileges(const Payload& payload, const WorkerConfig& config,
                              ScopeChecker& scopes);

// A task-image / indexed-image whose artifact `path` is not public needs
// queue:get-artifact:<path>. `image_json` (the payload's image, as JSON) names it in the refusal,
// upstream's "Not authorized to use <image>.  Ensure that the task scopes are correctly defined in
// the task definition", followed by the missing scope.
Status CheckArtifactImageScopes(const std::string& path, const std::string& image_json,
                                ScopeChecker& scopes);

}  // namespace docker_worker
