// The daemon's garbage collector: removes what this worker left behind on the engine and the
// host, and nothing else.
//
// What is this worker's: containers, networks and volumes labelled
// docker-worker.worker-id=<workerId> (worker_labels.h; never those of a `docker-worker run`,
// which carry an owner of their own); images that a task of this worker used
// (UseImage, recorded by image id as runs make their image ready; images it never used, such as
// ones an operator or another program pulled, are never touched); cache instances of
// CacheVolumes.
//
// SweepLeftovers(live) removes this worker's labelled containers (forced, with their anonymous
// volumes; any state), networks and volumes whose docker-worker.task-id/run-id labels name no
// run in `live` ("<taskId>/<runId>", worker_labels.h RunKey). At start-up `live` is empty, so
// everything labelled as this worker's is a leftover of an earlier process.
//
// Sweep(disk_pressure, live), in this order:
//   1. containers handed over with RemoveLater: removed, then their cache leases released;
//   2. SweepLeftovers(live);
//   3. images: one this worker used is removed (by id, never forced) when no run pins it, no
//      container on the engine uses it (any state, anyone's), and it has been unused for
//      `image_expiration` or the disk is under pressure. The engine refuses ids that other
//      repositories still tag, so an image tagged for someone else survives. Skipped this time
//      if a run is pinning its image at that moment (HoldImages, a brief look-up);
//   4. under disk pressure, every unmounted cache instance (CacheVolumes::RemoveUnmounted).
// Failures are logged to the worker log (once per image) and retried at the next sweep; a sweep
// never fails. Thread-safe: sweeps run on the caller's thread (the daemon's poll loop), runs pin
// images and hand over containers from theirs. Outlives every ImagePin.
#pragma once

#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <vector>

#include "docker_worker/cache_volumes.h"
#include "docker_worker/clock.h"
#include "docker_worker/docker_engine.h"
#include "docker_worker/worker_log.h"

namespace docker_worker {

class GarbageCollector;

// While alive, the image is not collected; on destruction its last use becomes now.
class ImagePin {
 public:
  ImagePin() = default;
  ImagePin(ImagePin&& other) noexcept;
  ImagePin& operator=(ImagePin&& other) noexcept;
  ~ImagePin();
  void Reset();

 private:
  friend class GarbageCollector;
  GarbageCollector* gc_ = nullptr;
  std::string id_;
};

class GarbageCollector {
 public:
  // `caches` may be null (no cache instances to collect).
  GarbageCollector(DockerEngine& docker, CacheVolumes* caches, Clock& clock, WorkerLog& log,
                   std::string worker_id, Millis image_expiration);

  // Held (shared) by a run around the final look-up of its ready image and the pin (never
  // during a pull or download), so the image cannot be removed between the two while
  // collections are held off only briefly.
  std::shared_lock<std::shared_mutex> HoldImages();
  // Records that a run of this worker uses image `id` ("sha256:...") and pins it.
  ImagePin UseImage(const std::string& id);

  // A container whose removal failed: removed by the next sweeps, after which `leases` (the
  // cache instances it had mounted) are released.
  void RemoveLater(const std::string& container_id, std::vector<CacheLease> leases);

  struct Counts {
    int containers = 0, networks = 0, volumes = 0, images = 0, caches = 0;
    int total() const { return containers + networks + volumes + images + caches; }
  };
  Counts SweepLeftovers(const std::set<std::string>& live);
  Counts Sweep(bool disk_pressure, const std::set<std::string>& live);

  // Tracked image ids (tests, diagnostics).
  std::vector<std::string> TrackedImages() const;

 private:
  friend class ImagePin;
  struct Image {
    int pins = 0;
    TimePoint last_used;
    bool failure_logged = false;
  };
  void Unpin(const std::string& id);
  int SweepImages(bool disk_pressure);

  DockerEngine& docker_;
  CacheVolumes* const caches_;
  Clock& clock_;
  WorkerLog& log_;
  const std::string worker_id_;
  const Millis image_expiration_;

  std::shared_mutex images_busy_;  // shared: a run is pinning its image; unique: removal
  mutable std::mutex mu_;
  std::map<std::string, Image> images_;
  std::map<std::string, std::vector<CacheLease>> pending_;  // container id -> its leases
};

}  // namespace docker_worker
