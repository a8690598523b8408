// A payload feature (localLiveLog, artifacts, chainOfTrust, ...): services and side effects
// that plug into a task run at fixed points.
//
// TaskRun calls, for the enabled features of one run:
//   Link   in registry order, before the payload is validated (start services, add env, binds
//          and links to the container). An error fails the run.
//   Start  in registry order, after every Link succeeded (upstream's `created`).
//   Finish in registry order, after the container exited on its own (not after an abort, a
//          cancel or maxRunTime); collects results such as artifacts (upstream's `stopped`).
//          An error turns a successful run into a failed one.
//   Stop   in reverse registry order, always, for every selected feature (also when the run
//          stopped before or during Link), after the log was closed and the task container
//          removed; releases services (the proxy and its network) and
//          uploads logs (upstream's `killed`). Stop must cope with a run whose Link never ran or
//          failed, and must upload nothing when outcome.canceled.
// All hooks run on the task's thread. A Feature object serves exactly one run.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "docker_worker/status.h"
#include "docker_worker/task_context.h"

namespace docker_worker {

// How the run ended, as far as Stop hooks care.
struct RunOutcome {
  Resolution resolution;
  int64_t exit_code = -1;
  bool canceled = false;  // resolved by someone else: upload nothing
  bool aborted = false;   // shutdown, maxRunTime, internal error
};

class Feature {
 public:
  virtual ~Feature() = default;
  virtual std::string Name() const = 0;
  // Scopes the task must hold (each entry: any one of the alternatives).
  virtual std::vector<std::vector<std::string>> RequiredScopes(const TaskContext&) const {
    return {};
  }
  // Artifact names this feature creates; payload artifacts must not use them.
  virtual std::vector<std::string> ReservedArtifacts(const TaskContext&) const { return {}; }
  virtual Status Link(TaskContext&) { return Status::Ok(); }
  virtual Status Start(TaskContext&) { return Status::Ok(); }
  virtual Status Finish(TaskContext&) { return Status::Ok(); }
  virtual Status Stop(TaskContext&, const RunOutcome&) { return Status::Ok(); }
};

}  // namespace docker_worker
