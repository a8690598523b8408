// The claim loop on fakes: capacity, reclaim, cancel via 409, internal-error, shutdown.
#include "docker_worker/worker.h"

#include <catch2/catch.hpp>

#include <thread>

#include "fakes/fake_docker_engine.h"
#include "fakes/fake_queue.h"
#include "fakes/manual_clock.h"
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
  WorkerLog log{nullptr};
  std::unique_ptr<Worker> worker;
  std::thread thread;

  Harness() {
    docker.AddImage("busybox:latest", "sha256:busybox");
    docker.behaviour = [](const ContainerSpec&) {
      return FakeDockerEngine::Behaviour{"", 0, true};  // run until killed
    };
    queue.now_for_reclaim = [this] { return clock.Now(); };
  }
  ~Harness() { Stop(); }

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
    worker = std::make_unique<Worker>(config, queue, docker, clock, log, dir / "work");
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
  while (!h.queue.run("bbbbbbbbbbbbbbbbbbbbbb") ||
         !h.queue.run("bbbbbbbbbbbbbbbbbbbbbb")->resolution()) {
    h.clock.Advance(std::chrono::seconds(5));  // past the poll interval after an empty claim
    std::this_thread::yield();
  }
  CHECK(h.queue.run("aaaaaaaaaaaaaaaaaaaaaa")->resolution() == Resolution::Completed());
  CHECK(h.queue.run("bbbbbbbbbbbbbbbbbbbbbb")->resolution() == Resolution::Completed());
  for (int asked : h.queue.asked()) CHECK(asked == 1);
}

}  // namespace
}  // namespace docker_worker
