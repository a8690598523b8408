// Constructors of the features this build implements (one .cc each under features/).
#pragma once

#include <memory>

#include "docker_worker/feature.h"

namespace docker_worker {

// localLiveLog: the task log as artifacts; uploads the backing log when the run ends.
std::unique_ptr<Feature> MakeLocalLiveLogFeature();
// artifacts: payload.artifacts read from the stopped container and uploaded.
std::unique_ptr<Feature> MakeArtifactsFeature();

}  // namespace docker_worker
