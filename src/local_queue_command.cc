#include "docker_worker/local_queue_command.h"

#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <optional>

#include "docker_worker/local_queue.h"
#include "docker_worker/validate_command.h"  // kExitUsage

namespace docker_worker {
namespace {

const char* const kUsage =
    "usage: docker-worker local-queue --data DIR [--listen HOST:PORT] [--clients FILE]\n"
    "                                 [--claim-timeout SECONDS] [--poll-timeout SECONDS]\n"
    "                                 [--root-url URL]\n";

struct Args {
  std::string data;
  std::string host = "127.0.0.1";
  int port = 0;
  std::string clients;
  int64_t claim_timeout = 1200;
  int64_t poll_timeout = 20;  // how long claimWork holds a request when there is no work
  std::string root_url;
  bool help = false;
};

std::optional<int64_t> ParseNumber(const std::string& s, int64_t min, int64_t max) {
  if (s.empty() || s.size() > 12) return std::nullopt;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v < min || v > max) return std::nullopt;
  return v;
}

// "HOST:PORT" or "[IPv6]:PORT".
bool ParseListen(const std::string& s, std::string* host, int* port) {
  size_t colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  std::string h = s.substr(0, colon);
  if (h.front() == '[') {
    if (h.size() < 3 || h.back() != ']') return false;
    h = h.substr(1, h.size() - 2);
  } else if (h.find(':') != std::string::npos) {
    return false;
  }
  auto p = ParseNumber(s.substr(colon + 1), 0, 65535);
  if (!p) return false;
  *host = h;
  *port = static_cast<int>(*p);
  return true;
}

// Fills `out`; on a usage error returns the message.
std::optional<std::string> ParseArgs(const std::vector<std::string>& args, Args* out) {
  for (size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    std::optional<std::string> value;
    size_t eq = flag.find('=');
    if (flag.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    }
    if (flag == "-h" || flag == "--help") {
      out->help = true;
      continue;
    }
    if (flag != "--data" && flag != "--listen" && flag != "--clients" &&
        flag != "--claim-timeout" && flag != "--poll-timeout" && flag != "--root-url") {
      return "unknown argument \"" + args[i] + "\"";
    }
    if (!value) {
      if (i + 1 >= args.size()) return flag + " needs a value";
      value = args[++i];
    }
    if (flag == "--data") {
      out->data = *value;
    } else if (flag == "--listen") {
      if (!ParseListen(*value, &out->host, &out->port)) {
        return "--listen must be HOST:PORT, got \"" + *value + "\"";
      }
    } else if (flag == "--clients") {
      out->clients = *value;
    } else if (flag == "--claim-timeout") {
      auto v = ParseNumber(*value, 1, 7 * 24 * 3600);
      if (!v) return "--claim-timeout must be a number of seconds in 1..604800";
      out->claim_timeout = *v;
    } else if (flag == "--poll-timeout") {
      auto v = ParseNumber(*value, 0, 60);
      if (!v) return "--poll-timeout must be a number of seconds in 0..60";
      out->poll_timeout = *v;
    } else {
      if (value->rfind("http://", 0) != 0 && value->rfind("https://", 0) != 0) {
        return "--root-url must start with http:// or https://";
      }
      out->root_url = *value;
    }
  }
  if (!out->help && out->data.empty()) return std::string("--data DIR is required");
  return std::nullopt;
}

}  // namespace

int LocalQueueCommand(const std::vector<std::string>& args) {
  Args parsed;
  if (auto problem = ParseArgs(args, &parsed)) {
    std::cerr << "docker-worker local-queue: " << *problem << "\n" << kUsage;
    return kExitUsage;
  }
  if (parsed.help) {
    std::cout << kUsage;
    return 0;
  }
  std::error_code ec;
  std::filesystem::create_directories(parsed.data, ec);
  if (ec) {
    std::cerr << "docker-worker local-queue: cannot create " << parsed.data << ": " << ec.message()
              << "\n";
    return kExitUsage;
  }

  LocalQueueOptions options;
  options.host = parsed.host;
  options.port = parsed.port;
  options.data_dir = parsed.data;
  options.root_url = parsed.root_url;
  options.claim_timeout = std::chrono::seconds(parsed.claim_timeout);
  options.claim_poll_timeout = std::chrono::seconds(parsed.poll_timeout);
  if (!parsed.clients.empty()) {
    auto clients = LoadLocalQueueClients(parsed.clients);
    if (!clients.ok()) {
      std::cerr << "docker-worker local-queue: " << clients.status().message() << "\n";
      return kExitUsage;
    }
    options.clients = std::move(*clients);
  } else {
    std::string path = (std::filesystem::path(parsed.data) / "clients.json").string();
    bool created = false;
    auto clients = EnsureLocalQueueClients(path, &created);
    if (!clients.ok()) {
      std::cerr << "docker-worker local-queue: " << clients.status().message() << "\n";
      return kExitUsage;
    }
    options.clients = std::move(*clients);
    std::cerr << "local-queue: clients " << (created ? "written to " : "read from ") << path
              << "\n";
  }
  auto log_mu = std::make_shared<std::mutex>();
  options.request_log = [log_mu](const std::string& line) {
    std::lock_guard lock(*log_mu);
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  };

  // Block the stop signals before any server thread exists, so only sigwait() below sees them.
  sigset_t signals, previous;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, &previous);

  auto server = LocalQueueServer::Start(std::move(options));
  if (!server.ok()) {
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    std::cerr << "docker-worker local-queue: " << server.status().message() << "\n";
    return 1;
  }
  std::cerr << "local-queue: listening on " << (*server)->root_url() << "\n" << std::flush;
  int sig = 0;
  while (sigwait(&signals, &sig) != 0 || (sig != SIGINT && sig != SIGTERM)) {
  }
  std::cerr << "local-queue: " << (sig == SIGINT ? "interrupted" : "terminated") << ", stopping\n";
  (*server)->Stop();
  server->reset();
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return 0;
}

}  // namespace docker_worker
