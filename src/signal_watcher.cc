#include "docker_worker/signal_watcher.h"

#include <pthread.h>
#include <signal.h>

namespace docker_worker {

SignalWatcher::SignalWatcher(std::function<void(int signal)> on_signal) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  thread_ = std::thread([this, signals, on_signal = std::move(on_signal)] {
    timespec tick{0, 100 * 1000 * 1000};
    while (!done_) {
      int sig = sigtimedwait(&signals, nullptr, &tick);
      if (sig == SIGINT || sig == SIGTERM) on_signal(sig);
    }
  });
}

SignalWatcher::~SignalWatcher() {
  done_ = true;
  thread_.join();
}

}  // namespace docker_worker
