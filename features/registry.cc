#include <algorithm>
#include <functional>

#include "docker_worker/feature_registry.h"
#include "docker_worker/features.h"

namespace docker_worker {
namespace {

struct Entry {
  std::string name;
  bool on_by_default;
  std::function<std::unique_ptr<Feature>()> make;  // null: not implemented by this build
};

const std::vector<Entry>& Registry() {
  static const std::vector<Entry> kRegistry = {
      {"localLiveLog", true, MakeLocalLiveLogFeature},
      {"artifacts", true, MakeArtifactsFeature},
      {"chainOfTrust", false, MakeChainOfTrustFeature},
      {"bulkLog", false, nullptr},
      {"taskclusterProxy", false, MakeTaskclusterProxyFeature},
      {"balrogVPNProxy", false, nullptr},
      {"balrogStageVPNProxy", false, nullptr},
      {"dind", false, nullptr},
      {"relengAPIProxy", false, nullptr},
      {"dockerSave", false, nullptr},
      {"interactive", false, nullptr},
      {"allowPtrace", false, MakeAllowPtraceFeature},
  };
  return kRegistry;
}

}  // namespace

const std::vector<std::string>& KnownFeatureNames() {
  static const std::vector<std::string> kNames = [] {
    std::vector<std::string> names;
    for (const auto& e : Registry()) names.push_back(e.name);
    return names;
  }();
  return kNames;
}

Result<std::vector<std::unique_ptr<Feature>>> SelectFeatures(
    const std::vector<std::pair<std::string, bool>>& requested, const WorkerConfig& config) {
  for (const auto& [name, on] : requested) {
    auto it = std::find_if(Registry().begin(), Registry().end(),
                           [&](const Entry& e) { return e.name == name; });
    if (it == Registry().end()) return Status::TaskFailed(name + " is not part of valid features");
  }
  std::vector<std::unique_ptr<Feature>> features;
  for (const auto& entry : Registry()) {
    bool on = entry.on_by_default;
    for (const auto& [name, value] : requested) {
      if (name == entry.name) on = value;
    }
    if (!on) continue;
    if (!entry.make || !config.FeatureEnabled(entry.name)) {
      return Status::TaskFailed(entry.name + " is not enabled on this worker");
    }
    features.push_back(entry.make());
  }
  return features;
}

}  // namespace docker_worker
