#include "docker_worker/garbage_collector.h"

#include "docker_worker/worker_labels.h"

namespace docker_worker {

// ---------------------------------------------------------------------------------- ImagePin

ImagePin::ImagePin(ImagePin&& other) noexcept { *this = std::move(other); }

ImagePin& ImagePin::operator=(ImagePin&& other) noexcept {
  if (this != &other) {
    Reset();
    gc_ = std::exchange(other.gc_, nullptr);
    id_ = std::move(other.id_);
  }
  return *this;
}

ImagePin::~ImagePin() { Reset(); }

void ImagePin::Reset() {
  if (gc_) gc_->Unpin(id_);
  gc_ = nullptr;
}

// -------------------------------------------------------------------------- GarbageCollector

GarbageCollector::GarbageCollector(DockerEngine& docker, CacheVolumes* caches, Clock& clock,
                                   WorkerLog& log, std::string worker_id,
                                   Millis image_expiration)
    : docker_(docker),
      caches_(caches),
      clock_(clock),
      log_(log),
      worker_id_(std::move(worker_id)),
      image_expiration_(image_expiration) {}

std::shared_lock<std::shared_mutex> GarbageCollector::HoldImages() {
  return std::shared_lock<std::shared_mutex>(images_busy_);
}

ImagePin GarbageCollector::UseImage(const std::string& id) {
  std::lock_guard lock(mu_);
  Image& image = images_[id];
  ++image.pins;
  image.last_used = clock_.Now();
  ImagePin pin;
  pin.gc_ = this;
  pin.id_ = id;
  return pin;
}

void GarbageCollector::Unpin(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = images_.find(id);
  if (it == images_.end()) return;
  if (it->second.pins > 0) --it->second.pins;
  it->second.last_used = clock_.Now();
}

std::vector<std::string> GarbageCollector::TrackedImages() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [id, image] : images_) out.push_back(id);
  return out;
}

void GarbageCollector::RemoveLater(const std::string& container_id,
                                   std::vector<CacheLease> leases) {
  std::lock_guard lock(mu_);
  auto& held = pending_[container_id];
  for (auto& l : leases) held.push_back(std::move(l));
}

GarbageCollector::Counts GarbageCollector::SweepLeftovers(const std::set<std::string>& live) {
  Counts n;
  const std::vector<std::string> mine = {WorkerLabelFilter(worker_id_)};
  auto leftover = [&](const std::map<std::string, std::string>& labels) {
    return live.count(RunKeyOf(labels)) == 0;
  };
  auto removed = [&](const char* kind, const std::string& id, const Status& s, int& count) {
    if (s.ok()) {
      ++count;
      log_.Event("leftover removed", {{"kind", kind}, {"id", id}});
    } else {
      log_.Event("garbage collection error", {{"kind", kind}, {"id", id}, {"error", s.message()}});
    }
  };
  if (auto containers = docker_.ListContainers(mine); containers.ok()) {
    for (const ContainerInfo& c : *containers) {
      if (leftover(c.labels)) removed("container", c.id, docker_.RemoveContainer(c.id), n.containers);
    }
  }
  if (auto networks = docker_.ListNetworks(mine); networks.ok()) {
    for (const NetworkInfo& net : *networks) {
      if (leftover(net.labels)) removed("network", net.id, docker_.RemoveNetwork(net.id), n.networks);
    }
  }
  if (auto volumes = docker_.ListVolumes(mine); volumes.ok()) {
    for (const VolumeInfo& v : *volumes) {
      if (leftover(v.labels)) removed("volume", v.name, docker_.RemoveVolume(v.name), n.volumes);
    }
  }
  return n;
}

GarbageCollector::Counts GarbageCollector::Sweep(bool disk_pressure,
                                                 const std::set<std::string>& live) {
  std::vector<std::string> pending;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, leases] : pending_) pending.push_back(id);
  }
  Counts n;
  for (const std::string& id : pending) {
    if (!docker_.RemoveContainer(id).ok()) continue;
    std::vector<CacheLease> release;
    {
      std::lock_guard lock(mu_);
      release = std::move(pending_[id]);
      pending_.erase(id);
    }
    ++n.containers;
    log_.Event("leftover removed", {{"kind", "container"}, {"id", id}});
  }  // `release` goes out of scope with the container gone: the caches are free again
  Counts leftovers = SweepLeftovers(live);
  n.containers += leftovers.containers;
  n.networks = leftovers.networks;
  n.volumes = leftovers.volumes;
  n.images = SweepImages(disk_pressure);
  if (disk_pressure && caches_) n.caches = caches_->RemoveUnmounted();
  return n;
}

int GarbageCollector::SweepImages(bool disk_pressure) {
  std::unique_lock busy(images_busy_, std::try_to_lock);
  if (!busy.owns_lock()) return 0;  // a run is readying its image: next time
  std::vector<std::string> candidates;
  {
    std::lock_guard lock(mu_);
    const TimePoint now = clock_.Now();
    for (const auto& [id, image] : images_) {
      if (image.pins == 0 && (disk_pressure || now - image.last_used >= image_expiration_)) {
        candidates.push_back(id);
      }
    }
  }
  if (candidates.empty()) return 0;
  auto containers = docker_.ListContainers({});  // everyone's
  if (!containers.ok()) {
    log_.Event("garbage collection error", {{"kind", "image"}, {"error", containers.status().message()}});
    return 0;
  }
  std::set<std::string> in_use;
  for (const ContainerInfo& c : *containers) in_use.insert(c.image_id);
  int removed = 0;
  for (const std::string& id : candidates) {
    if (in_use.count(id)) continue;
    Status s = docker_.RemoveImage(id);
    std::lock_guard lock(mu_);
    if (s.ok() || s.code() == Code::kNotFound) {
      images_.erase(id);
      if (s.ok()) {
        ++removed;
        log_.Event("image removed", {{"image", id}, {"diskPressure", disk_pressure ? "true" : "false"}});
      }
    } else if (!images_[id].failure_logged) {
      images_[id].failure_logged = true;
      log_.Event("garbage collection error", {{"kind", "image"}, {"id", id}, {"error", s.message()}});
    }
  }
  return removed;
}

}  // namespace docker_worker
