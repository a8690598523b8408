// Constructors of the features this build implements (one .cc each under features/).
#pragma once

#include <memory>

#include "docker_worker/feature.h"

namespace docker_worker {

// localLiveLog: the task log as artifacts; uploads the backing log when the run ends.
std::unique_ptr<Feature> MakeLocalLiveLogFeature();
// artifacts: payload.artifacts read from the stopped container and uploaded.
std::unique_ptr<Feature> MakeArtifactsFeature();
// chainOfTrust: signs a document certifying the run's artifacts and log (chain_of_trust.h).
std::unique_ptr<Feature> MakeChainOfTrustFeature();

// allowPtrace: SYS_PTRACE for the task container (scope docker-worker:feature:allowPtrace).
std::unique_ptr<Feature> MakeAllowPtraceFeature();

// taskclusterProxy: http://taskcluster/ for the task, signed with the run's credentials.
std::unique_ptr<Feature> MakeTaskclusterProxyFeature();

}  // namespace docker_worker
