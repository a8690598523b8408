#include "docker_worker/worker.h"

#include <algorithm>
#include <filesystem>

#include "docker_worker/auth_client.h"
#include "docker_worker/time_format.h"
#include "docker_worker/worker_labels.h"

namespace docker_worker {

struct Worker::Slot {
  Claim claim;
  std::unique_ptr<ClaimedRunQueue> queue;
  std::unique_ptr<TaskRun> run;
  std::stop_source reclaim_stop;
  std::thread reclaimer;
  std::thread thread;
  bool done = false;
};

Worker::Worker(const WorkerConfig& config, Queue& queue, DockerEngine& docker, Clock& clock,
               WorkerLog& log, std::string work_root, LiveLogServer* live_log,
               EnvDecryptor* env_decryptor, CacheVolumes* caches, DiskProbe disk_probe)
    : config_(config),
      queue_(queue),
      docker_(docker),
      clock_(clock),
      log_(log),
      work_root_(std::move(work_root)),
      live_log_(live_log),
      env_decryptor_(env_decryptor),
      caches_(caches),
      disk_probe_(disk_probe ? std::move(disk_probe) : DiskProbe(FreeDiskBytes)),
      gc_(docker, caches, clock, log, config.worker_id, Millis(config.image_expiration_ms)),
      artifact_images_(docker, clock,
                       ArtifactImageOptions::FromConfig(config, work_root_ + "/image-artifacts")) {}

Worker::~Worker() {
  Shutdown(true);
  WaitForAllRuns();
}

int Worker::running() const {
  std::lock_guard lock(mu_);
  return BusyLocked();
}

int Worker::BusyLocked() const {
  return static_cast<int>(
      std::count_if(slots_.begin(), slots_.end(), [](const auto& s) { return !s->done; }));
}

void Worker::WaitForAllRuns() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return BusyLocked() == 0; });
  ReapFinished(lock);
}

std::set<std::string> Worker::LiveRunsLocked() const {
  std::set<std::string> live;
  for (const auto& s : slots_) {
    if (!s->done) live.insert(RunKey(s->claim.task_id, s->claim.run_id));
  }
  return live;
}

void Worker::LogSweep(const char* kind, const GarbageCollector::Counts& n) {
  if (n.total() == 0) return;
  log_.Event(kind, {{"containers", std::to_string(n.containers)},
                    {"networks", std::to_string(n.networks)},
                    {"volumes", std::to_string(n.volumes)},
                    {"images", std::to_string(n.images)},
                    {"caches", std::to_string(n.caches)}});
}

int Worker::Housekeeping(int free, const std::set<std::string>& live) {
  const uint64_t threshold =
      config_.diskspace_threshold > 0 ? static_cast<uint64_t>(config_.diskspace_threshold) : 0;
  Result<uint64_t> bytes = uint64_t{0};
  auto claimable = [&] {
    if (threshold == 0) return free;
    bytes = disk_probe_(config_.docker_volume);
    return bytes.ok() ? ClaimableTasks(*bytes, threshold, free) : free;  // unknown: claim
  };
  // One "diskspace" line per change of verdict, never one per poll.
  auto report = [&](int n) {
    const int verdict = !bytes.ok() ? 2 : n < free ? 1 : 0;
    if (threshold == 0 || verdict == disk_verdict_) return;
    disk_verdict_ = verdict;
    if (!bytes.ok()) {
      log_.Event("diskspace", {{"state", "unknown"},
                               {"path", config_.docker_volume},
                               {"error", bytes.status().message()}});
      return;
    }
    log_.Event("diskspace", {{"state", verdict == 1 ? "low" : "ok"},
                             {"path", config_.docker_volume},
                             {"freeBytes", std::to_string(*bytes)},
                             {"thresholdBytes", std::to_string(threshold)},
                             {"freeSlots", std::to_string(free)},
                             {"claimable", std::to_string(n)}});
  };
  int n = claimable();
  report(n);
  const TimePoint now = clock_.Now();
  if (n < free || now >= next_sweep_) {
    const bool pressure = n < free;  // too little for every free slot: collect what can go
    LogSweep("garbageCollection", gc_.Sweep(pressure, live));
    next_sweep_ = now + Millis(config_.gc_interval_ms);
    if (pressure) {
      n = claimable();
      report(n);
    }
  }
  return n;
}

void Worker::Run() {
  LogSweep("startupSweep", gc_.SweepLeftovers({}));
  log_.Event("workerReady", {{"workerPool", config_.WorkerPool()},
                             {"workerId", config_.worker_id},
                             {"capacity", std::to_string(config_.capacity)}});
  const Millis poll_interval(config_.poll_interval_ms);
  while (true) {
    int free = 0;
    std::set<std::string> live;
    {
      std::unique_lock lock(mu_);
      ReapFinished(lock);
      if (shutting_down_) break;
      free = config_.capacity - BusyLocked();
      if (free <= 0) {  // full: no claimWork until a slot frees up
        cv_.wait(lock, [&] { return shutting_down_ || BusyLocked() < config_.capacity; });
        continue;
      }
      live = LiveRunsLocked();  // exact for the sweep: only this thread starts runs
    }
    const int claimable = Housekeeping(free, live);
    if (claimable <= 0) {  // not enough disk for one more task
      clock_.SleepUntil(clock_.Now() + poll_interval, shutdown_.get_token());
      continue;
    }
    auto claims = queue_.ClaimWork(std::min(claimable, 32), {});
    if (!claims.ok()) {
      log_.Event("task retrieval error", {{"error", claims.status().message()}});
    } else {
      for (auto& claim : *claims) StartRun(std::move(claim));
    }
    if (!claims.ok() || claims->empty()) {
      clock_.SleepUntil(clock_.Now() + poll_interval, shutdown_.get_token());
    }
  }
  log_.Event("shutdown", {{"running", std::to_string(running())}});
  WaitForAllRuns();
  log_.Event("exit");
}

void Worker::Shutdown(bool immediate) {
  {
    std::lock_guard lock(mu_);
    if (shutting_down_ && (immediate_ || !immediate)) return;
    shutting_down_ = true;
    immediate_ = immediate_ || immediate;
    // Under the lock: a slot cannot be reaped (and its TaskRun destroyed) meanwhile. Abort
    // never takes mu_.
    if (immediate_) {
      for (auto& s : slots_) {
        if (!s->done) s->run->Abort("worker-shutdown");
      }
    }
  }
  shutdown_.request_stop();
  cv_.notify_all();
}

void Worker::StartRun(Claim claim) {
  auto slot = std::make_unique<Slot>();
  Slot& s = *slot;
  s.claim = std::move(claim);
  const std::string key = s.claim.task_id + "-" + std::to_string(s.claim.run_id);
  const std::string work_dir = work_root_ + "/" + key;
  s.queue = queue_.ForRun(s.claim, work_dir + "/uploads");
  s.run = std::make_unique<TaskRun>(TaskRun::Inputs{
      .config = config_,
      .task = s.claim.task,
      .task_id = s.claim.task_id,
      .run_id = s.claim.run_id,
      .queue = *s.queue,
      .docker = docker_,
      .clock = clock_,
      .work_dir = work_dir,
      .backing_log_path = work_dir + "/live_backing.log",
      .log_sinks = {},
      .before_resolve =
          [&s] {
            s.reclaim_stop.request_stop();
            if (s.reclaimer.joinable()) s.reclaimer.join();
          },
      .live_log_server = live_log_,
      .expand_scopes = ScopeExpansionFor(s.queue->Client()),
      .taskcluster = s.queue->Client(),
      .env_decryptor = env_decryptor_,
      .report_incident =
          [this, task_id = s.claim.task_id](const std::string& detail) {
            log_.Event("secretDataViolation", {{"taskId", task_id}, {"detail", detail}});
          },
      .caches = caches_,
      .gc = &gc_,
      .artifact_images = &artifact_images_,
  });
  log_.Event("taskStart", {{"taskId", s.claim.task_id},
                           {"runId", std::to_string(s.claim.run_id)},
                           {"takenUntil", FormatIso(s.claim.taken_until)}});
  {
    // Claims answered after an immediate shutdown began are aborted at once (still reported).
    std::lock_guard lock(mu_);
    if (immediate_) s.run->Abort("worker-shutdown");
    slots_.push_back(std::move(slot));
  }
  s.reclaimer = std::thread([this, &s, taken = s.claim.taken_until,
                             stop = s.reclaim_stop.get_token()] { Reclaim(s, taken, stop); });
  s.thread = std::thread([this, &s] {
    RunResult r = s.run->Run();
    log_.Event("taskFinish",
               {{"taskId", s.claim.task_id},
                {"runId", std::to_string(s.claim.run_id)},
                {"state", r.canceled ? "canceled" : RunStateName(r.resolution.state)},
                {"reason", r.resolution.reason},
                {"exitCode", std::to_string(r.exit_code)},
                {"durationSeconds", std::to_string(r.duration_seconds)}});
    std::lock_guard lock(mu_);
    s.done = true;
    cv_.notify_all();
  });
}

void Worker::Reclaim(Slot& s, TimePoint taken_until, std::stop_token stop) {
  const int divisor = std::max(1, config_.reclaim_divisor);
  while (!stop.stop_requested()) {
    TimePoint now = clock_.Now();
    TimePoint next = taken_until > now ? now + (taken_until - now) / divisor : now;
    if (!clock_.SleepUntil(next, stop)) return;
    auto renewed = s.queue->Reclaim(stop);
    if (stop.stop_requested()) return;
    const std::string run_id = std::to_string(s.claim.run_id);
    if (renewed.ok()) {
      taken_until = *renewed;
      log_.Event("reclaimed", {{"taskId", s.claim.task_id},
                               {"runId", run_id},
                               {"takenUntil", FormatIso(taken_until)}});
      continue;
    }
    log_.Event("reclaim failed", {{"taskId", s.claim.task_id},
                                  {"runId", run_id},
                                  {"error", renewed.status().message()}});
    if (renewed.status().code() == Code::kConflict) {
      s.run->Cancel();
    } else {
      s.run->Abort("internal-error");
    }
    return;
  }
}

void Worker::ReapFinished(std::unique_lock<std::mutex>& lock) {
  std::list<std::unique_ptr<Slot>> finished;
  for (auto it = slots_.begin(); it != slots_.end();) {
    if ((*it)->done) {
      finished.push_back(std::move(*it));
      it = slots_.erase(it);
    } else {
      ++it;
    }
  }
  lock.unlock();
  for (auto& s : finished) {
    if (s->thread.joinable()) s->thread.join();
    s->reclaim_stop.request_stop();
    if (s->reclaimer.joinable()) s->reclaimer.join();
  }
  lock.lock();
}

}  // namespace docker_worker
