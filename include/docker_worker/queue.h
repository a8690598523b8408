// The queue as the daemon sees it (a seam): claim work for this worker, and open the per-run
// queue of each claim. Implementations: HttpQueue (a Taskcluster deployment or local-queue) and
// FakeQueue (test/fakes) for unit tests of the claim loop.
//
// ClaimWork long-polls and returns at most `tasks` claims (possibly none). ForRun returns the
// run-scoped queue that uses the claim's temporary credentials; Reclaim renews the claim and
// swaps those credentials for every later call of that run (errors: kConflict when the queue
// says 409, i.e. the run was canceled or resolved elsewhere). All methods are thread-safe.
#pragma once

#include <memory>
#include <stop_token>
#include <vector>

#include "docker_worker/queue_client.h"
#include "docker_worker/run_queue.h"

namespace docker_worker {

class ClaimedRunQueue : public RunQueue {
 public:
  // Renews the claim; returns the new takenUntil. `stop` cancels a call in flight.
  virtual Result<TimePoint> Reclaim(std::stop_token stop) = 0;
  // The run's Taskcluster client: the root URL and the run's current temporary credentials
  // (swapped on every reclaim). Null when the run has none (fakes).
  virtual TaskclusterClient* Client() { return nullptr; }
};

class Queue {
 public:
  virtual ~Queue() = default;
  virtual Result<std::vector<Claim>> ClaimWork(int tasks, std::stop_token stop) = 0;
  // `work_dir` is the run's scratch folder (uploads spool there).
  virtual std::unique_ptr<ClaimedRunQueue> ForRun(const Claim& claim,
                                                  const std::string& work_dir) = 0;
};

}  // namespace docker_worker
