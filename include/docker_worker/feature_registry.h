// The ordered list of payload features (upstream's handler order) and how a run picks its set.
//
// SelectFeatures applies upstream's rules: a feature is on when the payload says true, or when
// the payload does not mention it and it is on by default (localLiveLog, artifacts). A
// requested name that is not a feature -> "<name> is not part of valid features"; a known
// feature that this worker's config disables, or that this build does not implement ->
// "<name> is not enabled on this worker". Both are failed resolutions.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "docker_worker/feature.h"
#include "docker_worker/worker_config.h"

namespace docker_worker {

// Every feature name upstream knew, in handler order.
const std::vector<std::string>& KnownFeatureNames();

Result<std::vector<std::unique_ptr<Feature>>> SelectFeatures(
    const std::vector<std::pair<std::string, bool>>& requested, const WorkerConfig& config);

}  // namespace docker_worker
