// GarbageCollector on the fake engine and a ManualClock: what is this worker's, image expiry,
// pins, images in use, caches under pressure, containers handed over.
#include "docker_worker/garbage_collector.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <thread>

#include "docker_worker/worker_labels.h"
#include "fakes/fake_docker_engine.h"
#include "fakes/manual_clock.h"
#include "fakes/temp_dir.h"

namespace docker_worker {
namespace {

using testing::FakeDockerEngine;
using testing::ManualClock;
using testing::TempDir;

constexpr auto kExpiration = std::chrono::hours(2);

struct Harness {
  FakeDockerEngine docker;
  ManualClock clock;
  TempDir dir;
  WorkerLog log{nullptr};
  CacheVolumes caches{dir / "caches", clock, log};
  GarbageCollector gc{docker, &caches, clock, log, "me", kExpiration};

  Harness() {
    docker.AddImage("busybox:latest", "sha256:busybox");
    docker.AddImage("taskenv/busybox:latest", "sha256:never-used");
  }
  // A container of `worker` for run task/0, exited unless `running`.
  std::string Container(const std::string& worker, const std::string& task,
                        const std::string& image = "sha256:busybox") {
    ContainerSpec spec;
    spec.image = image;
    spec.labels = RunLabels(worker, task, 0);
    auto id = docker.CreateContainer(spec);
    REQUIRE(id.ok());
    REQUIRE(docker.StartContainer(*id).ok());
    return *id;
  }
  bool Live(const std::string& id) { return docker.live_containers().count(id) > 0; }
};

TEST_CASE("gc: leftovers are this worker's labelled objects of runs no longer live", "[unit]") {
  Harness h;
  std::string done = h.Container("me", "done");
  std::string live = h.Container("me", "live");
  std::string others = h.Container("someone-else", "done");
  for (const char* w : {"me", "someone-else"}) {
    REQUIRE(h.docker.CreateNetwork(std::string("net-") + w, RunLabels(w, "done", 0)).ok());
    REQUIRE(h.docker.CreateVolume(std::string("vol-") + w, RunLabels(w, "done", 0)).ok());
  }
  REQUIRE(h.docker.CreateNetwork("net-live", RunLabels("me", "live", 0)).ok());
  REQUIRE(h.docker.CreateNetwork("unlabelled", {}).ok());

  GarbageCollector::Counts n = h.gc.SweepLeftovers({RunKey("live", 0)});
  CHECK(n.containers == 1);
  CHECK(n.networks == 1);
  CHECK(n.volumes == 1);
  CHECK_FALSE(h.Live(done));
  CHECK(h.Live(live));
  CHECK(h.Live(others));
  std::vector<std::string> nets;
  auto networks = h.docker.ListNetworks({});
  REQUIRE(networks.ok());
  for (const auto& net : *networks) nets.push_back(net.name);
  std::sort(nets.begin(), nets.end());
  CHECK(nets == std::vector<std::string>{"net-live", "net-someone-else", "unlabelled"});
  auto vols = h.docker.ListVolumes({});
  REQUIRE(vols.ok());
  REQUIRE(vols->size() == 1);
  CHECK((*vols)[0].name == "vol-someone-else");

  // At start-up nothing is live: every object of this worker goes, nobody else's.
  n = h.gc.SweepLeftovers({});
  CHECK(n.containers == 1);
  CHECK(n.networks == 1);
  CHECK(h.Live(others));
  CHECK(h.docker.ListNetworks({}).value().size() == 2);
}

TEST_CASE("gc: an image this worker used goes after imageExpiration unused, not before",
          "[unit]") {
  Harness h;
  { ImagePin pin = h.gc.UseImage("sha256:busybox"); }  // used, and released now
  h.clock.Advance(kExpiration - std::chrono::seconds(1));
  CHECK(h.gc.Sweep(false, {}).images == 0);
  h.clock.Advance(std::chrono::seconds(1));
  CHECK(h.gc.Sweep(false, {}).images == 1);
  CHECK(h.docker.removed_images() == std::vector<std::string>{"sha256:busybox"});
  // The image it never used is never touched, even under pressure.
  CHECK(h.gc.Sweep(true, {}).images == 0);
  auto names = h.docker.image_names();
  CHECK(std::count(names.begin(), names.end(), "taskenv/busybox:latest") == 1);
}

TEST_CASE("gc: a pinned image, or one any container uses, is never removed", "[unit]") {
  Harness h;
  ImagePin pin = h.gc.UseImage("sha256:busybox");
  h.clock.Advance(kExpiration * 2);
  CHECK(h.gc.Sweep(true, {}).images == 0);  // pinned, even under pressure
  pin.Reset();                              // last use: now
  std::string c = h.Container("someone-else", "t");  // anyone's container, any state
  h.clock.Advance(kExpiration * 2);
  CHECK(h.gc.Sweep(true, {}).images == 0);
  CHECK(h.docker.removed_images().empty());
  REQUIRE(h.docker.RemoveContainer(c).ok());
  CHECK(h.gc.Sweep(false, {}).images == 1);
}

TEST_CASE("gc: disk pressure removes unused images before they expire", "[unit]") {
  Harness h;
  { ImagePin pin = h.gc.UseImage("sha256:busybox"); }
  CHECK(h.gc.Sweep(false, {}).images == 0);
  CHECK(h.gc.Sweep(true, {}).images == 1);
}

TEST_CASE("gc: no image is removed while a run is readying its image", "[unit]") {
  Harness h;
  { ImagePin pin = h.gc.UseImage("sha256:busybox"); }
  h.clock.Advance(kExpiration);
  {
    auto readying = h.gc.HoldImages();
    CHECK(h.gc.Sweep(true, {}).images == 0);
  }
  CHECK(h.gc.Sweep(true, {}).images == 1);
}

TEST_CASE("gc: unmounted cache instances go under disk pressure only", "[unit]") {
  Harness h;
  auto held = h.caches.Acquire("c");
  REQUIRE(held.ok());
  { auto free = h.caches.Acquire("c"); }
  CHECK(h.gc.Sweep(false, {}).caches == 0);
  CHECK(h.caches.List().size() == 2);
  CHECK(h.gc.Sweep(true, {}).caches == 1);
  auto list = h.caches.List();
  REQUIRE(list.size() == 1);
  CHECK(list[0].path == held->path());
}

TEST_CASE("gc: a handed-over container is retried until removed, then its caches are free",
          "[unit]") {
  Harness h;
  std::string id = h.Container("me", "t");
  auto lease = h.caches.Acquire("c");
  REQUIRE(lease.ok());
  const std::string path = lease->path();
  std::vector<CacheLease> leases;
  leases.push_back(std::move(*lease));
  h.gc.RemoveLater(id, std::move(leases));
  h.docker.remove_container_error = Status(Code::kInternal, "engine hiccup");
  h.gc.Sweep(false, {});
  REQUIRE(h.caches.List().size() == 1);
  CHECK(h.caches.List()[0].mounted);
  h.docker.remove_container_error = Status::Ok();
  CHECK(h.gc.Sweep(false, {}).containers == 1);
  CHECK_FALSE(h.Live(id));
  CHECK_FALSE(h.caches.List()[0].mounted);
  CHECK(h.caches.List()[0].path == path);
}

TEST_CASE("gc: a `docker-worker run` of the same worker id is never swept", "[unit]") {
  Harness h;
  const std::string owner = RunCommandLabelOwner("me", 77);
  std::string run_container = h.Container(owner, "t");
  REQUIRE(h.docker.CreateNetwork("net-run", RunLabels(owner, "t", 0)).ok());
  std::string mine = h.Container("me", "t");
  GarbageCollector::Counts n = h.gc.SweepLeftovers({});
  CHECK(n.containers == 1);
  CHECK(n.networks == 0);
  CHECK(h.Live(run_container));
  CHECK_FALSE(h.Live(mine));
  auto nets = h.docker.ListNetworks({});
  REQUIRE(nets.ok());
  CHECK(nets->size() == 1);
}

}  // namespace
}  // namespace docker_worker
