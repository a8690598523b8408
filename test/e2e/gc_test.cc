// The daemon's housekeeping on the real engine: the start-up sweep, and disk pressure on a
// small tmpfs mounted by the test as dockerVolume (needs root), with caches on it.
#include <signal.h>
#include <sys/mount.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <thread>

#include "docker_worker/engine_api.h"
#include "docker_worker/slugid.h"
#include "docker_worker/worker_labels.h"
#include "support/local_system.h"

namespace docker_worker {
namespace {

namespace fs = std::filesystem;
using testing::LocalSystem;
using testing::ReadFile;
using testing::TempDir;
using testing::WriteFile;

// Polls `done` every 100 ms for at most `seconds` (external processes: the worker, the engine).
template <typename F>
bool PollFor(int seconds, F done) {
  for (int i = 0; i < seconds * 10; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return done();
}

size_t Count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

TEST_CASE("e2e: the start-up sweep removes this worker's leftovers and nobody else's", "[e2e]") {
  LocalSystem sys({});
  EngineApi docker(EngineApi::SocketFromEnvironment());
  const std::string other = "w-other-" + NewSlugId().substr(0, 8);
  struct Made {
    std::string container, network, volume;
  };
  auto make = [&](const std::string& worker) {
    const std::string suffix = worker + "-" + NewSlugId().substr(0, 6);
    auto labels = RunLabels(worker, "leftoverTask", 0);
    ContainerSpec spec;
    spec.image = "taskenv/busybox:latest";
    spec.cmd = {"true"};
    spec.labels = labels;
    Made m;
    auto c = docker.CreateContainer(spec);
    auto n = docker.CreateNetwork("dw-sweep-" + suffix, labels);
    auto v = docker.CreateVolume("dw-sweep-" + suffix, labels);
    REQUIRE(c.ok());
    REQUIRE(n.ok());
    REQUIRE(v.ok());
    return Made{*c, *n, v->name};
  };
  const Made mine = make(sys.worker_id());
  const Made theirs = make(other);
  REQUIRE(docker.StartContainer(mine.container).ok());  // even a running one is a leftover

  sys.StartWorker();  // the sweep runs before workerReady
  auto ids = [](auto list) {
    std::vector<std::string> out;
    if (list.ok()) {
      for (const auto& x : *list) {
        if constexpr (requires { x.id; }) out.push_back(x.id);
        else out.push_back(x.name);
      }
    }
    return out;
  };
  CHECK(ids(docker.ListContainers({WorkerLabelFilter(sys.worker_id())})).empty());
  CHECK(ids(docker.ListNetworks({WorkerLabelFilter(sys.worker_id())})).empty());
  CHECK(ids(docker.ListVolumes({WorkerLabelFilter(sys.worker_id())})).empty());
  CHECK(ids(docker.ListContainers({WorkerLabelFilter(other)})) ==
        std::vector<std::string>{theirs.container});
  CHECK(ids(docker.ListNetworks({WorkerLabelFilter(other)})) ==
        std::vector<std::string>{theirs.network});
  CHECK(ids(docker.ListVolumes({WorkerLabelFilter(other)})) ==
        std::vector<std::string>{theirs.volume});
  CHECK(sys.WorkerLog().find(R"("type":"startupSweep","containers":"1","networks":"1","volumes":"1")") !=
        std::string::npos);
  (void)docker.RemoveContainer(theirs.container);
  (void)docker.RemoveNetwork(theirs.network);
  (void)docker.RemoveVolume(theirs.volume);
}

// A tmpfs of `megabytes` at a fresh directory, unmounted (lazily, in case a container still
// holds it) on destruction.
class Tmpfs {
 public:
  explicit Tmpfs(int megabytes) {
    const std::string options = "size=" + std::to_string(megabytes) + "m";
    mounted_ = ::mount("tmpfs", dir_.path().c_str(), "tmpfs", 0, options.c_str()) == 0;
  }
  ~Tmpfs() {
    if (mounted_) ::umount2(dir_.path().c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& path() const { return dir_.path(); }

 private:
  TempDir dir_;
  bool mounted_ = false;
};

// A tag of the local busybox image of this test's own (so the worker's image collection, which
// never forces, cannot take the shared test image away), removed afterwards.
class OwnTag {
 public:
  OwnTag() {
    std::string slug = NewSlugId().substr(0, 10);
    std::transform(slug.begin(), slug.end(), slug.begin(),
                   [](unsigned char c) { return std::isalnum(c) ? std::tolower(c) : 'x'; });
    name_ = "dw-gc-test-" + slug + ":latest";
    ok_ = std::system(("docker tag taskenv/busybox:latest " + name_).c_str()) == 0;
  }
  ~OwnTag() { (void)std::system(("docker rmi " + name_ + " >/dev/null 2>&1").c_str()); }
  bool ok() const { return ok_; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  bool ok_ = false;
};

TEST_CASE("e2e: disk pressure stops claiming until space is free, in-use caches and images "
          "survive", "[e2e]") {
  constexpr int kMegabytes = 100;
  constexpr int kThreshold = 30 * 1000 * 1000;  // per free slot
  Tmpfs disk(kMegabytes);
  REQUIRE(disk.mounted());  // the suite runs as root
  OwnTag image;
  REQUIRE(image.ok());
  const std::string caches = disk.path() + "/caches";
  LocalSystem::Options options = LocalSystem::With(2, 1200, "e2e-disk");
  options.worker_config = R"({"dockerVolume": ")" + disk.path() +
                          R"(", "capacityManagement": {"diskspaceThreshold": )" +
                          std::to_string(kThreshold) + R"(}, "cache": {"volumeCachePath": ")" +
                          caches + R"("}})";
  LocalSystem sys(options);
  sys.StartWorker();
  const std::vector<std::string> scopes = {"docker-worker:cache:*"};
  auto payload = [&](const std::string& cache, const std::string& script) {
    return R"({"image": ")" + image.name() + R"(", "maxRunTime": 120, "cache": {")" + cache +
           R"(": "/)" + cache + R"("}, "command": ["sh", "-c", ")" + script + R"("]})";
  };
  auto instances = [&](const std::string& name) {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(caches + "/" + name, ec)) {
      if (e.is_directory()) out.push_back(e.path().string());
    }
    return out;
  };

  // K holds cache "keep" until told to stop, then checks its file is still there.
  const std::string keep = sys.CreateTask(
      payload("keep", "echo mine > /keep/mine; i=0; while [ ! -e /keep/stop ]; do i=$((i+1)); "
                      "[ $i -gt 2400 ] && exit 9; sleep 0.05; done; test -f /keep/mine"),
      0, scopes);
  REQUIRE(PollFor(60, [&] {
    auto dirs = instances("keep");
    return dirs.size() == 1 && fs::exists(dirs[0] + "/mine");
  }));

  // B fills the disk through its cache; once B is done, the disk is low for the one free slot,
  // and the collector removes B's (unmounted) instance: the space comes back.
  const std::string big =
      sys.CreateTask(payload("big", "head -c 75000000 /dev/zero > /big/blob"), 0, scopes);
  CHECK(sys.WaitForRun(big, 0) == std::pair<std::string, std::string>{"completed", "completed"});
  CHECK(PollFor(30, [&] { return instances("big").empty(); }));
  CHECK(PollFor(30, [&] { return Count(sys.WorkerLog(), R"("type":"diskspace","state":"ok")") >= 2; }));
  std::string log = sys.WorkerLog();
  CHECK(Count(log, R"("type":"diskspace","state":"low")") == 1);
  CHECK(log.find(R"("type":"cache volume removed","cache":"big")") != std::string::npos);

  // Space the collector cannot free: no claimWork while it lasts.
  WriteFile(disk.path() + "/filler", std::string(75 * 1000 * 1000, 'x'));
  REQUIRE(PollFor(30, [&] {
    return Count(sys.WorkerLog(), R"("type":"diskspace","state":"low")") == 2;
  }));
  const size_t claims_before = Count(sys.QueueLog(), "claimWork");
  const std::string pending = sys.CreateTask(payload("other", "true"), 0, scopes);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // several poll intervals
  CHECK(Count(sys.QueueLog(), "claimWork") == claims_before);
  CHECK(sys.WaitForRun(pending, 0, 0).first == "timeout");  // still pending
  fs::remove(disk.path() + "/filler");
  CHECK(sys.WaitForRun(pending, 0) ==
        std::pair<std::string, std::string>{"completed", "completed"});

  // K kept its cache (and its image) throughout.
  auto kept = instances("keep");
  REQUIRE(kept.size() == 1);
  WriteFile(kept[0] + "/stop", "");
  CHECK(sys.WaitForRun(keep, 0) == std::pair<std::string, std::string>{"completed", "completed"});
  CHECK(fs::exists(kept[0] + "/mine"));
  CHECK(std::system(("docker image inspect " + image.name() + " >/dev/null 2>&1").c_str()) == 0);
  CHECK(sys.StopWorker(SIGTERM) == 0);
}

}  // namespace
}  // namespace docker_worker
