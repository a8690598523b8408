// The claim loop on fakes: capacity, reclaim, cancel via 409, internal-error, shutdown.
#include "docker_worker/worker.h"

#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <thread>

#include "fakes/fake_docker_engine.h"
#include "fakes/fake_queue.h"
#include "fakes/manual_clock.h"
#include "docker_worker/worker_labels.h"
#include "fakes/temp_dir.h"

namespace docker_worker {
namespace {

using testing::FakeDockerEngine;
using testing::FakeQueue;
using testing::ManualClock;
using testing::TempDir;

struct Harness {
  WorkerConfig config = WorkerConfig::Defaults();
  FakeDockerEngine docker;
  FakeQueue queue;
  ManualClock clock;
  TempDir dir;
  FILE* log_file = std::fopen((dir / "worker.log").c_str(), "w");
  WorkerLog log{log_file};
  CacheVolumes caches{dir / "caches", clock, log};
  std::atomic<uint64_t> free_bytes{uint64_t{1} << 50};  // what the disk probe reports
  std::atomic<int> probes{0};
  std::unique_ptr<Worker> worker;
  std::thread thread;

  Harness() {
    docker.AddImage("busybox:latest", "sha256:busybox");
    docker.behaviour = [](const ContainerSpec&) {
      return FakeDockerEngine::Behaviour{"", 0, true};  // run until killed
    };
    queue.now_for_reclaim = [this] { return clock.Now(); };
  }
  ~Harness() {
    Stop();
    std::fclose(log_file);
  }

  void Add(const std::string& task_id, int run_id = 0) {
    auto doc = json::Parse(R"({"provisionerId": "prov", "workerType": "wt",
        "expires": "2030-01-01T00:00:00.000Z",
        "payload": {"image": "busybox:latest", "maxRunTime": 3600}})");
    Claim c;
    c.task_id = task_id;
    c.run_id = run_id;
    c.task = *TaskDefinition::FromJson(std::move(*doc), {"prov", "wt", clock.Now()});
    c.credentials = {"task-client/" + task_id, "tok", ""};
    c.taken_until = clock.Now() + std::chrono::minutes(20);
    queue.Add(std::move(c));
  }
  void Start() {
    worker = std::make_unique<Worker>(
        config, queue, docker, clock, log, dir / "work", nullptr, nullptr, &caches,
        [this](const std::string& path) -> Result<uint64_t> {
          CHECK(path == config.docker_volume);
          ++probes;
          return free_bytes.load();
        });
    thread = std::thread([this] { worker->Run(); });
  }
  void Stop() {
    if (worker) worker->Shutdown(true);
    if (thread.joinable()) thread.join();
  }
  // Starts one long task, lets its first reclaim (at 10 of 20 minutes) happen, and waits until
  // the worker has dropped the run.
  void ReclaimOnceAndWaitIdle() {
    Add("aaaaaaaaaaaaaaaaaaaaaa");
    Start();
    WaitForRunning(1);
    clock.WaitForSleepCalls(2);  // the reclaimer and the maxRunTime watchdog are waiting
    clock.Advance(std::chrono::minutes(10));
    queue.WaitForReclaims(1);
    while (worker->running() > 0) std::this_thread::yield();
  }
  std::string LogText() const { return testing::ReadFile(dir / "worker.log"); }
  // With the poll loop the only sleeper and asleep: moves the clock one poll interval and
  // waits until the loop sleeps again (one whole iteration: housekeeping, maybe a claim).
  void OnePoll() {
    int n = clock.sleep_calls();
    clock.Advance(Millis(config.poll_interval_ms));
    clock.WaitForSleepCalls(n + 1);
  }
  void WaitForRunning(int n) {
    while (static_cast<int>(docker.live_containers().size()) < n) {
      docker.WaitUntilRunning();
      std::this_thread::yield();
    }
  }
};

TEST_CASE("the worker never asks for more tasks than it has free slots", "[unit]") {
  Harness h;
  h.config.capacity = 2;
  for (const char* id : {"aaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbb", "cccccccccccccccccccccc"}) {
    h.Add(id);
  }
  h.Start();
  h.WaitForRunning(2);
  h.queue.WaitForClaimCalls(1);
  CHECK(h.queue.asked().front() == 2);
  CHECK(h.worker->running() == 2);
  // Full: no further claimWork while both slots are busy, however long we wait.
  size_t calls = h.queue.asked().size();
  h.clock.Advance(std::chrono::seconds(30));
  CHECK(h.queue.asked().size() == calls);
  h.Stop();
  // Checked again once every worker thread has returned: a claim the 30 s would have caused is
  // recorded by now, however the threads were scheduled.
  CHECK(h.queue.asked().size() == calls);
  CHECK(h.queue.run("aaaaaaaaaaaaaaaaaaaaaa")->resolution() ==
        Resolution::Exception("worker-shutdown"));
  CHECK(h.queue.run("bbbbbbbbbbbbbbbbbbbbbb")->resolution() ==
        Resolution::Exception("worker-shutdown"));
  CHECK(h.queue.run("cccccccccccccccccccccc") == nullptr);  // never claimed
  CHECK(h.docker.live_containers().empty());
}

TEST_CASE("shutdown aborts running tasks after uploading their logs", "[unit]") {
  Harness h;
  h.Add("aaaaaaaaaaaaaaaaaaaaaa");
  h.Start();
  h.WaitForRunning(1);
  h.Stop();
  auto run = h.queue.run("aaaaaaaaaaaaaaaaaaaaaa");
  CHECK(run->resolution() == Resolution::Exception("worker-shutdown"));
  auto arts = run->artifacts();
  REQUIRE(arts.count("public/logs/live_backing.log"));
  CHECK(arts["public/logs/live_backing.log"].content.find(
            "Task has been aborted prematurely. Reason: worker-shutdown") != std::string::npos);
}

TEST_CASE("runs are reclaimed at half the remaining claim time", "[unit]") {
  Harness h;
  h.Add("aaaaaaaaaaaaaaaaaaaaaa");
  h.Start();
  h.WaitForRunning(1);
  h.clock.WaitForSleepCalls(2);  // the reclaimer and the maxRunTime watchdog are waiting
  h.clock.Advance(std::chrono::minutes(9));
  CHECK(h.queue.reclaims() == 0);
  h.clock.Advance(std::chrono::minutes(1));  // 10 of 20 minutes
  h.queue.WaitForReclaims(1);
  CHECK(h.queue.reclaims() == 1);  // an early reclaim (before 10 minutes) would make this 2
  h.clock.WaitForSleepCalls(3);
  h.clock.Advance(std::chrono::minutes(10));  // half of the renewed 20 minutes
  h.queue.WaitForReclaims(2);
  CHECK(h.worker->running() == 1);
}

TEST_CASE("a 409 on reclaim cancels the run: container killed, nothing reported", "[unit]") {
  Harness h;
  h.queue.reclaim_result = Status(Code::kConflict, "409 run is not running");
  h.ReclaimOnceAndWaitIdle();
  auto run = h.queue.run("aaaaaaaaaaaaaaaaaaaaaa");
  CHECK(run->resolves() == 0);
  CHECK(run->artifacts().empty());
  CHECK(h.docker.live_containers().empty());
}

TEST_CASE("another reclaim failure aborts the run with internal-error", "[unit]") {
  Harness h;
  h.queue.reclaim_result = Status(Code::kUnavailable, "queue down");
  h.ReclaimOnceAndWaitIdle();
  CHECK(h.queue.run("aaaaaaaaaaaaaaaaaaaaaa")->resolution() ==
        Resolution::Exception("internal-error"));
}

TEST_CASE("finished tasks free their slot and the next claim follows", "[unit]") {
  Harness h;
  h.docker.behaviour = [](const ContainerSpec&) { return FakeDockerEngine::Behaviour{"", 0}; };
  h.Add("aaaaaaaaaaaaaaaaaaaaaa");
  h.Add("bbbbbbbbbbbbbbbbbbbbbb");
  h.Start();
  // No clock advance is needed (both claims are answered at once), and none may happen: under
  // load, advancing in a loop ran past maxRunTime and failed the task. Bounded real-time polling
  // for the run's threads only.
  for (int i = 0; i < 60000 && (!h.queue.run("bbbbbbbbbbbbbbbbbbbbbb") ||
                                !h.queue.run("bbbbbbbbbbbbbbbbbbbbbb")->resolution());
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  CHECK(h.queue.run("aaaaaaaaaaaaaaaaaaaaaa")->resolution() == Resolution::Completed());
  CHECK(h.queue.run("bbbbbbbbbbbbbbbbbbbbbb")->resolution() == Resolution::Completed());
  for (int asked : h.queue.asked()) CHECK(asked == 1);
}

// ------------------------------------------------------------------------- disk and collection

constexpr uint64_t kThreshold = 1000;

TEST_CASE("disk: no claimWork while the disk is low, claiming resumes once space is free",
          "[unit]") {
  Harness h;
  h.config.diskspace_threshold = kThreshold;
  h.config.docker_volume = "/probe/path";
  h.free_bytes = kThreshold;  // not more than the threshold: low
  h.Add("aaaaaaaaaaaaaaaaaaaaaa");
  h.Start();
  h.clock.WaitForSleepCalls(1);  // the loop skipped the claim and waits
  for (int i = 0; i < 3; ++i) h.OnePoll();
  CHECK(h.queue.asked().empty());
  CHECK(h.probes >= 4);
  h.free_bytes = kThreshold + 1;
  h.clock.Advance(Millis(h.config.poll_interval_ms));
  h.queue.WaitForClaimCalls(1);
  CHECK(h.queue.asked().front() == 1);
  h.Stop();
  // One line per change of verdict, not one per poll.
  std::string log = h.LogText();
  auto count = [&](const std::string& needle) {
    size_t n = 0;
    for (size_t at = log.find(needle); at != std::string::npos; at = log.find(needle, at + 1)) ++n;
    return n;
  };
  CHECK(count(R"("type":"diskspace","state":"low","path":"/probe/path","freeBytes":"1000")") == 1);
  CHECK(count(R"("type":"diskspace","state":"ok")") == 1);
  CHECK(count(R"("type":"diskspace")") == 2);
}

TEST_CASE("disk: as many tasks are claimed as the free space covers", "[unit]") {
  Harness h;
  h.config.capacity = 4;
  h.config.diskspace_threshold = kThreshold;
  h.free_bytes = 2 * kThreshold + 500;  // room for two tasks
  h.Add("aaaaaaaaaaaaaaaaaaaaaa");
  h.Start();
  h.queue.WaitForClaimCalls(1);
  CHECK(h.queue.asked().front() == 2);
  CHECK(ClaimableTasks(3000, 1000, 4) == 2);  // more than threshold * n, strictly
  CHECK(ClaimableTasks(3001, 1000, 4) == 3);
  CHECK(ClaimableTasks(999, 1000, 1) == 0);
  CHECK(ClaimableTasks(1, 0, 3) == 3);  // threshold 0: no limit
}

TEST_CASE("disk: under pressure the worker removes unmounted cache instances, then claims",
          "[unit]") {
  Harness h;
  h.config.diskspace_threshold = kThreshold;
  std::string path;
  {
    auto lease = h.caches.Acquire("big");
    REQUIRE(lease.ok());
    path = lease->path();
  }
  auto held = h.caches.Acquire("in-use");  // a running task's: never removed
  REQUIRE(held.ok());
  h.free_bytes = 10;
  h.Add("aaaaaaaaaaaaaaaaaaaaaa");
  h.Start();
  h.clock.WaitForSleepCalls(1);  // swept under pressure, still low, no claim
  CHECK(h.queue.asked().empty());
  CHECK_FALSE(std::filesystem::exists(path));
  CHECK(std::filesystem::exists(held->path()));
  h.free_bytes = 5000;  // what the removal gave back
  h.clock.Advance(Millis(h.config.poll_interval_ms));
  h.queue.WaitForClaimCalls(1);
  h.Stop();
  CHECK(h.LogText().find(R"("type":"cache volume removed","cache":"big")") != std::string::npos);
}

TEST_CASE("startup sweep: this worker's leftover containers, networks and volumes go, nobody "
          "else's", "[unit]") {
  Harness h;
  h.config.worker_id = "me";
  ContainerSpec spec;
  spec.image = "sha256:busybox";
  spec.labels = RunLabels("me", "old-task", 0);
  auto mine = h.docker.CreateContainer(spec);
  spec.labels = RunLabels("other-worker", "old-task", 0);
  auto theirs = h.docker.CreateContainer(spec);
  REQUIRE(mine.ok());
  REQUIRE(theirs.ok());
  REQUIRE(h.docker.CreateNetwork("n1", RunLabels("me", "old-task", 0)).ok());
  REQUIRE(h.docker.CreateNetwork("n2", RunLabels("other-worker", "old-task", 0)).ok());
  REQUIRE(h.docker.CreateVolume("v1", RunLabels("me", "old-task", 0)).ok());
  REQUIRE(h.docker.CreateVolume("v2", {{kWorkerIdLabel, "other-worker"}}).ok());
  h.Start();
  h.queue.WaitForClaimCalls(1);  // the sweep runs before the first claim
  CHECK(h.docker.live_containers() == std::set<std::string>{*theirs});
  auto nets = h.docker.ListNetworks({});
  REQUIRE(nets.ok());
  REQUIRE(nets->size() == 1);
  CHECK((*nets)[0].name == "n2");
  auto vols = h.docker.ListVolumes({});
  REQUIRE(vols.ok());
  REQUIRE(vols->size() == 1);
  CHECK((*vols)[0].name == "v2");
  h.Stop();
  CHECK(h.LogText().find(R"("type":"startupSweep","containers":"1","networks":"1","volumes":"1")") <
        h.LogText().find(R"("type":"workerReady")"));
}

TEST_CASE("gc: the daemon removes an image its tasks used once unused for imageExpiration",
          "[unit]") {
  Harness h;
  h.config.poll_interval_ms = 10 * 60 * 1000;  // ten minutes a poll
  h.config.gc_interval_ms = 60 * 1000;
  h.config.image_expiration_ms = 2 * 60 * 60 * 1000;
  h.docker.AddImage("never-used:latest", "sha256:never-used");
  h.docker.behaviour = [](const ContainerSpec&) { return FakeDockerEngine::Behaviour{"", 0}; };
  h.Add("aaaaaaaaaaaaaaaaaaaaaa");
  h.Start();
  auto run = [&] { return h.queue.run("aaaaaaaaaaaaaaaaaaaaaa"); };
  while (!run() || !run()->resolution()) std::this_thread::yield();
  while (h.worker->running() > 0) std::this_thread::yield();
  // The run is over (its watchdog and reclaimer are gone): the poll loop is the only sleeper.
  auto poll = [&] {  // one loop iteration ten minutes later: housekeeping, then a claim
    h.clock.WaitForSleepers(1);
    size_t claims = h.queue.asked().size();
    h.clock.Advance(Millis(h.config.poll_interval_ms));
    h.queue.WaitForClaimCalls(claims + 1);
  };
  for (int i = 1; i <= 11; ++i) {  // 110 minutes: not yet
    poll();
    REQUIRE(h.docker.removed_images().empty());
  }
  poll();  // 120 minutes
  CHECK(h.docker.removed_images() == std::vector<std::string>{"sha256:busybox"});
  auto names = h.docker.image_names();
  CHECK(std::find(names.begin(), names.end(), "never-used:latest") != names.end());
}

}  // namespace
}  // namespace docker_worker
