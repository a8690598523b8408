// An in-memory Queue for unit tests of the claim loop: tests Add() claims; ClaimWork hands out
// the oldest ones (never blocking) and records how many were asked for. Each run's queue is a
// FakeRunQueue plus a scripted Reclaim (`reclaim_result`, default: +20 minutes).
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>

#include "fakes/bounded_wait.h"
#include "docker_worker/queue.h"
#include "fakes/fake_run_queue.h"

namespace docker_worker::testing {

class FakeQueue final : public Queue {
 public:
  // What Reclaim answers; kOk means "renewed until now + 20 minutes".
  Status reclaim_result;

  void Add(Claim claim) {
    std::lock_guard lock(mu_);
    pending_.push_back(std::move(claim));
  }

  Result<std::vector<Claim>> ClaimWork(int tasks, std::stop_token) override {
    std::lock_guard lock(mu_);
    asked_.push_back(tasks);
    std::vector<Claim> out;
    while (tasks-- > 0 && !pending_.empty()) {
      out.push_back(std::move(pending_.front()));
      pending_.pop_front();
    }
    cv_.notify_all();
    return out;
  }

  std::unique_ptr<ClaimedRunQueue> ForRun(const Claim& claim, const std::string&) override {
    std::lock_guard lock(mu_);
    auto& run = runs_[claim.task_id];
    run = std::make_shared<FakeRunQueue>();
    return std::make_unique<Run>(*this, run);
  }

  std::shared_ptr<FakeRunQueue> run(const std::string& task_id) {
    std::lock_guard lock(mu_);
    return runs_[task_id];
  }
  std::vector<int> asked() const {
    std::lock_guard lock(mu_);
    return asked_;
  }
  int reclaims() const {
    std::lock_guard lock(mu_);
    return reclaims_;
  }
  // Blocks until ClaimWork was called at least `n` times.
  void WaitForClaimCalls(size_t n) {
    std::unique_lock lock(mu_);
    BoundedWait(cv_, lock, [&] { return asked_.size() >= n; }, "claimWork calls");
  }
  void WaitForReclaims(int n) {
    std::unique_lock lock(mu_);
    BoundedWait(cv_, lock, [&] { return reclaims_ >= n; }, "reclaims");
  }

 private:
  class Run final : public ClaimedRunQueue {
   public:
    Run(FakeQueue& q, std::shared_ptr<FakeRunQueue> run) : q_(q), run_(std::move(run)) {}
    Status CreateArtifact(const Artifact& a) override { return run_->CreateArtifact(a); }
    Status Resolve(const Resolution& r) override { return run_->Resolve(r); }
    Result<TimePoint> Reclaim(std::stop_token) override {
      std::lock_guard lock(q_.mu_);
      ++q_.reclaims_;
      q_.cv_.notify_all();
      if (!q_.reclaim_result.ok()) return q_.reclaim_result;
      return q_.now_for_reclaim ? q_.now_for_reclaim() + std::chrono::minutes(20)
                                : TimePoint() + std::chrono::minutes(20);
    }

   private:
    FakeQueue& q_;
    std::shared_ptr<FakeRunQueue> run_;
  };

 public:
  std::function<TimePoint()> now_for_reclaim;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Claim> pending_;
  std::map<std::string, std::shared_ptr<FakeRunQueue>> runs_;
  std::vector<int> asked_;
  int reclaims_ = 0;
};

}  // namespace docker_worker::testing
