// Turns SIGINT/SIGTERM into a callback on a thread of its own, for the verbs that must stop
// cleanly (`run` aborts its task, `start` shuts the worker down).
//
// The constructor blocks both signals in the calling thread (so every thread created afterwards
// inherits the mask: construct it before starting other threads) and starts the watcher; the
// callback runs on the watcher thread, once per signal received. The destructor stops the
// watcher (within ~100 ms). Not copyable.
#pragma once

#include <atomic>
#include <functional>
#include <thread>

namespace docker_worker {

class SignalWatcher {
 public:
  explicit SignalWatcher(std::function<void(int signal)> on_signal);
  ~SignalWatcher();
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;
};

}  // namespace docker_worker
