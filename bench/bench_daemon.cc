// make bench: the daemon figures. `docker-worker start` against a local-queue, running `true`
// tasks, measured against bare Engine API loops of the same shape in the same run:
//
//   per-task overhead  median over tasks of (resolution - claim reply) minus the median bare
//                      create+start+wait+remove sequence at the same concurrency. Both ends come
//                      from the queue's own run record (runs[0].started is written when the
//                      claimWork that hands the task out is answered, runs[0].resolved when
//                      reportCompleted is handled). A cross-check joins the daemon's taskStart
//                      event to local-queue's request-log line of the reportCompleted call.
//   throughput         tasks/min = N / (last runs[].resolved - first runs[].started), at
//                      capacity 1 and 4, against a bare loop of N sequences on 1 and 4 threads
//                      (N / wall time of the loop).
//   idle RSS           VmRSS (and VmHWM) of a daemon with nothing to do, 60 s after workerReady.
//   artifact image     claim -> first task log line of a task whose image is a ~200 MB zstd
//                      artifact (random-bytes layer), cold, then warm (must not download).
//
// Every phase gets its own local-queue (temp data dir, port 0) and its own workerType. Child
// processes are stopped (SIGTERM, then SIGKILL) on every path, including errors and Ctrl-C, and
// the temp dir is removed. A missed target is reported, not turned into an exit code: exit 0
// when every figure was measured, 1 when the bench itself failed.
//
// usage: bench_daemon WORKER_BINARY [TASKS]   (TASKS default: 30 at capacity 1, 40 at capacity 4)
#include <curl/curl.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "docker_worker/artifact_image.h"
#include "docker_worker/clock.h"
#include "docker_worker/hawk.h"
#include "docker_worker/http_client.h"
#include "docker_worker/http_run_queue.h"
#include "docker_worker/json.h"
#include "docker_worker/queue_client.h"
#include "docker_worker/slugid.h"
#include "docker_worker/taskcluster_client.h"
#include "docker_worker/time_format.h"

extern char** environ;

namespace {

namespace dw = docker_worker;
namespace fs = std::filesystem;
using Steady = std::chrono::steady_clock;
using Seconds = std::chrono::duration<double>;

const char* kImage = "taskenv/busybox:latest";
constexpr double kTargetThroughputRatio = 0.8;  // at capacity 1, against the bare loop
constexpr double kTargetIdleRssMiB = 12.0;
constexpr int kIdleSeconds = 60;

volatile sig_atomic_t g_interrupted = 0;
void OnSignal(int) { g_interrupted = 1; }

struct BenchError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void CheckInterrupted() {
  if (g_interrupted) throw BenchError("interrupted");
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5)];
}

// ---------------------------------------------------------------------------------------------
// Child processes

// One line a child wrote, with the time it arrived.
struct Line {
  Steady::time_point at;
  std::string text;
};

// A child started with posix_spawn, its stdout and stderr drained line by line by two reader
// threads (so it never blocks on a full pipe). The destructor stops it if it is still running
// (SIGTERM, then SIGKILL after a grace period) and joins the readers.
class Child {
 public:
  Child(std::string name, const std::vector<std::string>& argv,
        const std::vector<std::string>& extra_env)
      : name_(std::move(name)) {
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0) throw BenchError("pipe: " + std::string(strerror(errno)));
    if (pipe2(err, O_CLOEXEC) != 0) {
      close(out[0]);
      close(out[1]);
      throw BenchError("pipe: " + std::string(strerror(errno)));
    }
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) {
      if (std::strncmp(*e, "TASKCLUSTER_", 12) != 0) env.emplace_back(*e);
    }
    env.insert(env.end(), extra_env.begin(), extra_env.end());
    std::vector<char*> args, envp;
    std::vector<std::string> argv_copy = argv;
    for (auto& a : argv_copy) args.push_back(a.data());
    args.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    int rc = posix_spawn(&pid_, argv[0].c_str(), &actions, nullptr, args.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    close(err[1]);
    if (rc != 0) {
      close(out[0]);
      close(err[0]);
      pid_ = -1;
      throw BenchError("cannot start " + argv[0] + ": " + strerror(rc));
    }
    out_reader_ = std::thread([this, fd = out[0]] { Drain(fd, &out_); });
    err_reader_ = std::thread([this, fd = err[0]] { Drain(fd, &err_); });
  }

  ~Child() {
    try {
      Stop(std::chrono::seconds(30));
    } catch (...) {
    }
    stop_readers_ = true;
    if (out_reader_.joinable()) out_reader_.join();
    if (err_reader_.joinable()) err_reader_.join();
  }

  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& name() const { return name_; }

  // True when the child has exited (reaps it).
  bool Exited() {
    if (reaped_) return true;
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      status_ = status;
    }
    return reaped_;
  }
  int status() const { return status_; }

  void Signal(int sig) {
    if (!Exited()) kill(pid_, sig);
  }

  // Waits (polling, bounded) until the child has exited; false on timeout.
  bool WaitExit(Steady::duration timeout) {
    auto until = Steady::now() + timeout;
    while (!Exited()) {
      if (Steady::now() >= until) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
  }

  // SIGTERM; SIGKILL when it is still there after `grace`. Returns true when SIGTERM was enough.
  bool Stop(Steady::duration grace) {
    if (pid_ < 0 || Exited()) return true;
    kill(pid_, SIGTERM);
    if (WaitExit(grace)) return true;
    std::fprintf(stderr, "bench_daemon: %s did not stop on SIGTERM, killing it\n", name_.c_str());
    kill(pid_, SIGKILL);
    WaitExit(std::chrono::seconds(30));
    return false;
  }

  // Waits until `pred` holds over the lines seen so far (called under the lock), the child
  // exits, or `timeout` passes. Returns whether `pred` held.
  bool WaitFor(
      const std::function<bool(const std::vector<Line>& out, const std::vector<Line>& err)>& pred,
      Steady::duration timeout) {
    auto until = Steady::now() + timeout;
    std::unique_lock lock(mu_);
    while (true) {
      if (pred(out_, err_)) return true;
      CheckInterrupted();
      if (Steady::now() >= until) return false;
      lock.unlock();
      bool gone = Exited();
      lock.lock();
      if (gone) {
        // Let the readers pick up the last lines before the final check.
        cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return out_eof_ && err_eof_; });
        return pred(out_, err_);
      }
      cv_.wait_for(lock, std::chrono::milliseconds(100));
    }
  }

  std::vector<Line> Out() {
    std::lock_guard lock(mu_);
    return out_;
  }
  std::vector<Line> Err() {
    std::lock_guard lock(mu_);
    return err_;
  }

  // The last lines of stderr, for error messages.
  std::string ErrTail(size_t lines = 15) {
    std::lock_guard lock(mu_);
    std::string s;
    for (size_t i = err_.size() > lines ? err_.size() - lines : 0; i < err_.size(); ++i) {
      s += "    " + err_[i].text + "\n";
    }
    return s;
  }

 private:
  void Drain(int fd, std::vector<Line>* lines) {
    std::string partial;
    char buf[8192];
    while (true) {
      pollfd p{fd, POLLIN, 0};
      int r = poll(&p, 1, 100);
      if (r < 0 && errno == EINTR) continue;
      if (r == 0) {
        if (stop_readers_) break;  // a grandchild may hold the pipe open: do not hang
        continue;
      }
      ssize_t n = read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      auto now = Steady::now();
      partial.append(buf, static_cast<size_t>(n));
      size_t nl;
      std::lock_guard lock(mu_);
      while ((nl = partial.find('\n')) != std::string::npos) {
        lines->push_back({now, partial.substr(0, nl)});
        partial.erase(0, nl + 1);
      }
      cv_.notify_all();
    }
    close(fd);
    std::lock_guard lock(mu_);
    if (!partial.empty()) lines->push_back({Steady::now(), partial});
    (lines == &out_ ? out_eof_ : err_eof_) = true;
    cv_.notify_all();
  }

  std::string name_;
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
  std::atomic<bool> stop_readers_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Line> out_, err_;
  bool out_eof_ = false, err_eof_ = false;
  std::thread out_reader_, err_reader_;
};

// A temporary directory, removed with everything in it when this goes out of scope.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "dw-bench-daemon-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw BenchError("mkdtemp: " + std::string(strerror(errno)));
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
    if (ec)
      std::fprintf(stderr, "bench_daemon: cannot remove %s: %s\n", path_.c_str(),
                   ec.message().c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// ---------------------------------------------------------------------------------------------
// Bare Engine API sequence (raw libcurl, no project code in the measured path)

struct Engine {
  std::string socket;  // unix socket path, or "" for TCP
  std::string base;    // "http://localhost/v1.41" or "http://HOST:PORT/v1.41"
};

Engine EngineFromEnv() {
  const char* host = std::getenv("DOCKER_HOST");
  std::string h = host ? host : "";
  if (h.rfind("tcp://", 0) == 0) return {"", "http://" + h.substr(6) + "/v1.41"};
  if (h.rfind("unix://", 0) == 0) return {h.substr(7), "http://localhost/v1.41"};
  return {"/var/run/docker.sock", "http://localhost/v1.41"};
}

size_t Collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

std::string EngineCall(CURL* curl, const Engine& engine, const char* method,
                       const std::string& path, const std::string& body, long* status) {
  std::string out;
  std::string url = engine.base + path;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
  if (std::strcmp(method, "POST") == 0) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  } else {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
  }
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &out);
  CURLcode rc = curl_easy_perform(curl);
  if (rc != CURLE_OK) {
    throw BenchError(std::string("engine call ") + method + " " + path + ": " +
                     curl_easy_strerror(rc));
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
  return out;
}

// create + start + wait + remove of a `true` container; returns its wall time in seconds.
double BareSequence(const Engine& engine) {
  auto start = Steady::now();
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) throw BenchError("curl_easy_init failed");
  if (!engine.socket.empty()) {
    curl_easy_setopt(curl.get(), CURLOPT_UNIX_SOCKET_PATH, engine.socket.c_str());
  }
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> headers(
      curl_slist_append(nullptr, "Content-Type: application/json"), curl_slist_free_all);
  curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, 120L);
  long status = 0;
  std::string created = EngineCall(
      curl.get(), engine, "POST", "/containers/create",
      std::string("{\"Image\":\"") + kImage + "\",\"Cmd\":[\"true\"],\"Tty\":true}", &status);
  size_t at = created.find("\"Id\":\"");
  if (status != 201 || at == std::string::npos || created.size() < at + 6 + 64) {
    throw BenchError("container create failed (" + std::to_string(status) + "): " + created);
  }
  std::string id = created.substr(at + 6, 64);
  std::string error;
  try {
    EngineCall(curl.get(), engine, "POST", "/containers/" + id + "/start", "", &status);
    if (status != 204 && status != 304) error = "container start: status " + std::to_string(status);
    if (error.empty()) {
      EngineCall(curl.get(), engine, "POST", "/containers/" + id + "/wait", "", &status);
      if (status != 200) error = "container wait: status " + std::to_string(status);
    }
  } catch (const BenchError& e) {
    error = e.what();
  }
  EngineCall(curl.get(), engine, "DELETE", "/containers/" + id + "?force=1&v=1", "", &status);
  if (!error.empty()) throw BenchError(error);
  return Seconds(Steady::now() - start).count();
}

struct LoopResult {
  int tasks = 0;
  double wall_s = 0;
  std::vector<double> sequence_s;  // one per task
  double per_minute() const { return wall_s > 0 ? tasks / wall_s * 60 : 0; }
};

// `tasks` bare sequences spread over `threads` threads pulling from one counter.
LoopResult BareLoop(const Engine& engine, int tasks, int threads) {
  std::atomic<int> next{0};
  std::mutex mu;
  LoopResult result;
  result.tasks = tasks;
  std::string error;
  auto start = Steady::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      while (next++ < tasks && !g_interrupted) {
        try {
          double s = BareSequence(engine);
          std::lock_guard lock(mu);
          result.sequence_s.push_back(s);
        } catch (const std::exception& e) {
          std::lock_guard lock(mu);
          if (error.empty()) error = e.what();
          next = tasks;
        }
      }
    });
  }
  for (auto& t : pool) t.join();
  result.wall_s = Seconds(Steady::now() - start).count();
  CheckInterrupted();
  if (!error.empty()) throw BenchError("bare loop: " + error);
  return result;
}

// ---------------------------------------------------------------------------------------------
// local-queue and the daemon

std::optional<dw::json::Document> ParseLine(const std::string& text) {
  auto doc = dw::json::Parse(text);
  if (!doc.ok() || !doc->IsObject()) return std::nullopt;
  return std::move(doc.value());
}

// A running `docker-worker local-queue` with a client for it.
class LocalQueue {
 public:
  LocalQueue(const std::string& binary, const std::string& data_dir) {
    fs::create_directories(data_dir);
    child_ = std::make_unique<Child>(
        "local-queue",
        std::vector<std::string>{binary, "local-queue", "--listen", "127.0.0.1:0", "--data",
                                 data_dir, "--claim-timeout", "300"},
        std::vector<std::string>{});
    const std::string marker = "listening on ";
    bool up = child_->WaitFor(
        [&](const std::vector<Line>&, const std::vector<Line>& err) {
          for (const Line& l : err) {
            size_t at = l.text.find(marker);
            if (at != std::string::npos) {
              root_url_ = l.text.substr(at + marker.size());
              return true;
            }
          }
          return false;
        },
        std::chrono::seconds(15));
    if (!up || root_url_.rfind("http://127.0.0.1:", 0) != 0) {
      throw BenchError("local-queue did not come up:\n" + child_->ErrTail());
    }
    auto clients = dw::json::ParseFile(data_dir + "/clients.json");
    if (!clients.ok() || !clients->IsArray() || clients->Empty()) {
      throw BenchError("cannot read " + data_dir + "/clients.json");
    }
    const auto& first = (*clients)[0];
    creds_.client_id = dw::json::GetString(first, "clientId").value_or("");
    creds_.access_token = dw::json::GetString(first, "accessToken").value_or("");
    if (creds_.empty() || creds_.access_token.empty()) {
      throw BenchError("clients.json has no clientId/accessToken");
    }
    http_ = std::make_unique<dw::HttpClient>(dw::HttpClientOptions{.unix_socket_path = "",
                                                                   .peer_name = "local-queue",
                                                                   .user_agent = "bench_daemon",
                                                                   .max_idle_handles = 4});
    tc_ = std::make_unique<dw::TaskclusterClient>(*http_, clock_, root_url_, creds_);
    queue_ = std::make_unique<dw::QueueClient>(*tc_);
  }

  const std::string& root_url() const { return root_url_; }
  const dw::Credentials& creds() const { return creds_; }
  dw::QueueClient& queue() { return *queue_; }
  Child& child() { return *child_; }

  // Request-log entries (stdout lines) as parsed JSON.
  std::vector<dw::json::Document> RequestLog() {
    std::vector<dw::json::Document> out;
    for (const Line& l : child_->Out()) {
      if (auto d = ParseLine(l.text)) out.push_back(std::move(*d));
    }
    return out;
  }

 private:
  std::unique_ptr<Child> child_;
  std::string root_url_;
  dw::Credentials creds_;
  dw::SystemClock clock_;
  std::unique_ptr<dw::HttpClient> http_;
  std::unique_ptr<dw::TaskclusterClient> tc_;
  std::unique_ptr<dw::QueueClient> queue_;
};

std::unique_ptr<Child> StartDaemon(const std::string& binary, LocalQueue& lq,
                                   const std::string& worker_type, int capacity,
                                   const std::string& work_dir) {
  fs::create_directories(work_dir);
  // Upstream's test-profile disk threshold (1 GB per slot), so the host's free space does not
  // limit claiming at capacity 4.
  const std::string config = work_dir + "/worker.json";
  std::ofstream(config) << R"({"capacityManagement": {"diskspaceThreshold": 1000000000},
                              "dockerVolume": ")" << work_dir << R"("})";
  auto daemon = std::make_unique<Child>(
      "docker-worker start",
      std::vector<std::string>{binary, "start", "--config", config, "--root-url", lq.root_url(), "--provisioner-id",
                               "bench", "--worker-type", worker_type, "--worker-group", "bench",
                               "--worker-id", worker_type, "--capacity", std::to_string(capacity),
                               "--work-dir", work_dir},
      std::vector<std::string>{"TASKCLUSTER_CLIENT_ID=" + lq.creds().client_id,
                               "TASKCLUSTER_ACCESS_TOKEN=" + lq.creds().access_token});
  return daemon;
}

size_t CountEvents(const std::vector<Line>& lines, const char* type) {
  std::string needle = std::string("\"type\":\"") + type + "\"";
  return static_cast<size_t>(std::count_if(lines.begin(), lines.end(), [&](const Line& l) {
    return l.text.find(needle) != std::string::npos;
  }));
}

// SIGTERM the daemon, then stop local-queue (which ends a claimWork long poll the daemon may be
// waiting in), and reap both. Warns when the daemon did not exit cleanly.
void StopBoth(std::unique_ptr<Child>& daemon, LocalQueue& lq) {
  if (daemon) {
    daemon->Signal(SIGTERM);
    daemon->WaitExit(std::chrono::milliseconds(500));
  }
  lq.child().Stop(std::chrono::seconds(15));
  if (daemon) {
    bool clean = daemon->Stop(std::chrono::seconds(30));
    int st = daemon->status();
    if (!clean || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      std::fprintf(stderr, "bench_daemon: warning: the daemon exited with status %d\n%s", st,
                   daemon->ErrTail().c_str());
    }
  }
}

struct DaemonResult {
  int capacity = 0;
  int tasks = 0;
  int completed = 0;
  double window_s = 0;                      // first claim -> last resolution (queue's run record)
  std::vector<double> claim_to_resolved_s;  // per task, queue's run record
  std::vector<double> cross_check_s;  // per task, daemon taskStart -> request-log reportCompleted
  double per_minute() const { return window_s > 0 ? tasks / window_s * 60 : 0; }
};

// A task for `worker_type` with `payload` (JSON text); empty payload: a `true` task on kImage.
dw::json::Document TaskDefinition(const std::string& worker_type, int index,
                                  const std::string& payload_json = "") {
  dw::json::Document t(rapidjson::kObjectType);
  auto& a = t.GetAllocator();
  auto now = std::chrono::system_clock::now();
  t.AddMember("provisionerId", "bench", a);
  t.AddMember("workerType", dw::json::Str(worker_type, a), a);
  t.AddMember("created", dw::json::Str(dw::FormatIso(now), a), a);
  t.AddMember("deadline", dw::json::Str(dw::FormatIso(now + std::chrono::hours(1)), a), a);
  dw::json::Value payload(rapidjson::kObjectType);
  if (payload_json.empty()) {
    payload.AddMember("image", dw::json::Str(kImage, a), a);
    dw::json::Value command(rapidjson::kArrayType);
    command.PushBack("true", a);
    payload.AddMember("command", command, a);
    payload.AddMember("maxRunTime", 60, a);
  } else {
    auto parsed = dw::json::Parse(payload_json);
    if (!parsed.ok()) throw BenchError("bad payload: " + parsed.status().message());
    payload.CopyFrom(*parsed, a);
  }
  t.AddMember("payload", payload, a);
  dw::json::Value meta(rapidjson::kObjectType);
  meta.AddMember("name", dw::json::Str("bench " + worker_type + " #" + std::to_string(index), a),
                 a);
  meta.AddMember("description", "bench_daemon task", a);
  meta.AddMember("owner", "bench@localhost.localdomain", a);
  meta.AddMember("source", "https://localhost/bench_daemon", a);
  t.AddMember("metadata", meta, a);
  return t;
}

std::optional<dw::TimePoint> IsoField(const dw::json::Value& v, const char* key) {
  auto s = dw::json::GetString(v, key);
  if (!s) return std::nullopt;
  auto t = dw::ParseIso(*s);
  if (!t.ok()) return std::nullopt;
  return *t;
}

DaemonResult DaemonPhase(const std::string& binary, const std::string& root, int capacity,
                         int tasks) {
  DaemonResult result;
  result.capacity = capacity;
  result.tasks = tasks;
  const std::string worker_type =
      "bench-cap" + std::to_string(capacity) + "-" + std::to_string(getpid());
  const std::string dir = root + "/cap" + std::to_string(capacity);
  LocalQueue lq(binary, dir + "/queue");
  std::unique_ptr<Child> daemon;
  try {
    std::vector<std::string> ids;
    for (int i = 0; i < tasks; ++i) {
      std::string id = dw::NewSlugId();
      auto created = lq.queue().CreateTask(id, TaskDefinition(worker_type, i));
      if (!created.ok()) throw BenchError("createTask: " + created.status().message());
      ids.push_back(id);
    }
    daemon = StartDaemon(binary, lq, worker_type, capacity, dir + "/work");
    auto bound = std::chrono::seconds(std::max(60, tasks * 4));
    bool done = daemon->WaitFor(
        [&](const std::vector<Line>& out, const std::vector<Line>&) {
          return CountEvents(out, "taskFinish") >= static_cast<size_t>(tasks);
        },
        bound);
    if (!done) {
      size_t finished = CountEvents(daemon->Out(), "taskFinish");
      throw BenchError("capacity " + std::to_string(capacity) + ": only " +
                       std::to_string(finished) + " of " + std::to_string(tasks) +
                       " tasks finished" +
                       (daemon->Exited() ? " (the daemon exited)" : " within the time bound") +
                       "\n" + daemon->ErrTail());
    }

    // The queue's run record: started (claim answered) and resolved (reportCompleted handled).
    std::optional<dw::TimePoint> first_claim, last_resolution;
    std::map<std::string, dw::TimePoint> started_at;
    for (const std::string& id : ids) {
      auto status = lq.queue().TaskStatus(id);
      if (!status.ok()) throw BenchError("task status: " + status.status().message());
      const dw::json::Value* st = dw::json::FindObject(*status, "status");
      const dw::json::Value* runs = st ? dw::json::FindArray(*st, "runs") : nullptr;
      if (!runs || runs->Empty()) throw BenchError("task " + id + " has no run");
      const dw::json::Value& run = (*runs)[runs->Size() - 1];
      if (dw::json::GetString(run, "state").value_or("") == "completed") ++result.completed;
      auto started = IsoField(run, "started");
      auto resolved = IsoField(run, "resolved");
      if (!started || !resolved) throw BenchError("task " + id + " is not resolved");
      started_at[id] = *started;
      result.claim_to_resolved_s.push_back(Seconds(*resolved - *started).count());
      if (!first_claim || *started < *first_claim) first_claim = started;
      if (!last_resolution || *resolved > *last_resolution) last_resolution = resolved;
    }
    result.window_s = Seconds(*last_resolution - *first_claim).count();

    // Cross-check: the daemon's taskStart (it has the claim reply in hand) to local-queue's log
    // line of the reportCompleted request.
    std::map<std::string, dw::TimePoint> task_start;
    for (const Line& l : daemon->Out()) {
      auto d = ParseLine(l.text);
      if (!d || dw::json::GetString(*d, "type").value_or("") != "taskStart") continue;
      auto id = dw::json::GetString(*d, "taskId");
      auto t = IsoField(*d, "time");
      if (id && t) task_start[*id] = *t;
    }
    for (const auto& entry : lq.RequestLog()) {
      std::string path = dw::json::GetString(entry, "path").value_or("");
      const std::string prefix = "/api/queue/v1/task/";
      if (path.rfind(prefix, 0) != 0 || path.find("/completed") == std::string::npos) continue;
      std::string id = path.substr(prefix.size(), path.find('/', prefix.size()) - prefix.size());
      auto t = IsoField(entry, "time");
      auto s = task_start.find(id);
      if (t && s != task_start.end())
        result.cross_check_s.push_back(Seconds(*t - s->second).count());
    }
  } catch (...) {
    StopBoth(daemon, lq);
    throw;
  }
  StopBoth(daemon, lq);
  return result;
}

struct IdleResult {
  double rss_mib = 0, hwm_mib = 0, anon_mib = 0, file_mib = 0;
  int threads = 0;
};

IdleResult IdlePhase(const std::string& binary, const std::string& root) {
  const std::string worker_type = "bench-idle-" + std::to_string(getpid());
  LocalQueue lq(binary, root + "/idle/queue");
  std::unique_ptr<Child> daemon;
  IdleResult r;
  try {
    daemon = StartDaemon(binary, lq, worker_type, 1, root + "/idle/work");
    bool ready = daemon->WaitFor(
        [](const std::vector<Line>& out, const std::vector<Line>&) {
          return CountEvents(out, "workerReady") > 0;
        },
        std::chrono::seconds(15));
    if (!ready) throw BenchError("the idle daemon never logged workerReady\n" + daemon->ErrTail());
    std::printf("  idle daemon up (pid %d); waiting %d s before reading its RSS...\n",
                static_cast<int>(daemon->pid()), kIdleSeconds);
    std::fflush(stdout);
    auto until = Steady::now() + std::chrono::seconds(kIdleSeconds);
    while (Steady::now() < until) {
      CheckInterrupted();
      if (daemon->Exited()) throw BenchError("the idle daemon exited\n" + daemon->ErrTail());
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::ifstream in("/proc/" + std::to_string(daemon->pid()) + "/status");
    std::string line;
    auto kib = [&](const char* key, double* mib) {
      if (line.rfind(key, 0) == 0) *mib = std::atof(line.c_str() + std::strlen(key)) / 1024.0;
    };
    while (std::getline(in, line)) {
      kib("VmRSS:", &r.rss_mib);
      kib("VmHWM:", &r.hwm_mib);
      kib("RssAnon:", &r.anon_mib);
      kib("RssFile:", &r.file_mib);
      if (line.rfind("Threads:", 0) == 0) r.threads = std::atoi(line.c_str() + 8);
    }
    if (r.rss_mib <= 0) throw BenchError("cannot read VmRSS of the idle daemon");
  } catch (...) {
    StopBoth(daemon, lq);
    throw;
  }
  StopBoth(daemon, lq);
  return r;
}

// ---------------------------------------------------------------------------------------------
// Report

// ---------------------------------------------------------------------------------------------
// Artifact image: a task whose image is a ~200 MB zstd `docker save` artifact (a layer of random
// bytes, so zstd cannot shrink it), run cold (download + decompress + load, streamed) and warm
// (the loaded image reused). Measured on the worker's own log clock: claim (the queue's
// runs[0].started) -> the "=== Task Starting ===" line, written right before the container
// starts and prints the task's first line.

struct ImageResult {
  double artifact_mib = 0;
  double cold_s = 0, warm_s = 0;            // claim -> first task log line
  double cold_download_load_s = 0;          // "Downloading artifact" -> "... loaded." lines
  bool warm_downloaded = true;              // the warm run logged a download (it must not)
  int blob_gets = 0;                        // local-queue GETs of the artifact's bytes
};

std::optional<dw::TimePoint> LogTime(const std::string& log, const std::string& needle) {
  size_t at = log.find(needle);
  if (at == std::string::npos) return std::nullopt;
  size_t open = log.rfind("[taskcluster ", at);
  if (open == std::string::npos) return std::nullopt;
  std::string stamp = log.substr(open + 13, 24);  // "YYYY-MM-DD HH:MM:SS.mmmZ"
  if (stamp.size() == 24) stamp[10] = 'T';
  auto t = dw::ParseIso(stamp);
  if (!t.ok()) return std::nullopt;
  return *t;
}

void RunShell(const std::string& what, const std::string& script, Steady::duration bound) {
  Child sh(what, {"/bin/sh", "-c", script}, {});
  if (!sh.WaitExit(bound)) {
    sh.Stop(std::chrono::seconds(5));
    throw BenchError(what + ": timed out");
  }
  if (!WIFEXITED(sh.status()) || WEXITSTATUS(sh.status()) != 0) {
    throw BenchError(what + " failed:\n" + sh.ErrTail());
  }
}

ImageResult ImagePhase(const std::string& binary, const std::string& root) {
  ImageResult result;
  const std::string dir = root + "/image";
  fs::create_directories(dir);
  const std::string name = "dw-bench-image-" + std::to_string(getpid());
  const std::string file = dir + "/image.tar.zst";
  // Built with the CLI (bench setup only), then removed from the engine so the cold run loads.
  RunShell("building the 200 MB image artifact",
           "set -e; docker rm -f " + name + " >/dev/null 2>&1 || true;"
           " docker run --name " + name + " " + kImage +
               " sh -c 'head -c 200000000 /dev/urandom > /blob' >/dev/null;"
           " docker commit " + name + " " + name + ":latest >/dev/null;"
           " docker rm " + name + " >/dev/null;"
           " docker save " + name + ":latest | zstd -q -1 -T0 -c > " + file + ";"
           " docker rmi " + name + ":latest >/dev/null",
           std::chrono::minutes(5));
  result.artifact_mib = static_cast<double>(fs::file_size(file)) / 1048576.0;

  LocalQueue lq(binary, dir + "/queue");
  std::unique_ptr<Child> daemon;
  std::string local_name;
  try {
    // Publish on another pool through the worker's own upload path.
    const std::string pub_type = "bench-img-pub-" + std::to_string(getpid());
    const std::string image_task = dw::NewSlugId();
    auto created = lq.queue().CreateTask(image_task, TaskDefinition(pub_type, 0));
    if (!created.ok()) throw BenchError("createTask: " + created.status().message());
    auto claims = lq.queue().ClaimWork("bench/" + pub_type, "bench", "publisher", 1, {});
    if (!claims.ok() || claims->empty()) throw BenchError("cannot claim the publishing task");
    dw::SystemClock clock;
    dw::HttpClient http;
    dw::HttpRunQueue run(lq.queue(), http, clock, image_task, 0, dir + "/publish", {});
    dw::Artifact artifact;
    artifact.name = "public/image.tar.zst";
    artifact.expires = clock.Now() + std::chrono::hours(2);
    artifact.content_type = "application/octet-stream";
    artifact.file = file;
    artifact.uncompressed = true;
    if (dw::Status s = run.CreateArtifact(artifact); !s.ok()) throw BenchError("upload: " + s.message());
    if (dw::Status s = run.Resolve(dw::Resolution::Completed()); !s.ok()) {
      throw BenchError("reportCompleted: " + s.message());
    }
    local_name = dw::ArtifactImages::LocalName(image_task, artifact.name);

    const std::string worker_type = "bench-img-" + std::to_string(getpid());
    daemon = StartDaemon(binary, lq, worker_type, 1, dir + "/work");
    const std::string payload =
        R"({"image": {"type": "task-image", "taskId": ")" + image_task +
        R"(", "path": "public/image.tar.zst"}, "maxRunTime": 600, "command": ["echo", "first line"]})";
    auto run_one = [&](int index, std::string* log) {
      std::string id = dw::NewSlugId();
      auto c = lq.queue().CreateTask(id, TaskDefinition(worker_type, index, payload));
      if (!c.ok()) throw BenchError("createTask: " + c.status().message());
      bool done = daemon->WaitFor(
          [&](const std::vector<Line>& out, const std::vector<Line>&) {
            return CountEvents(out, "taskFinish") >= static_cast<size_t>(index + 1);
          },
          std::chrono::minutes(5));
      if (!done) throw BenchError("the image task did not finish\n" + daemon->ErrTail());
      auto status = lq.queue().TaskStatus(id);
      const dw::json::Value* st = status.ok() ? dw::json::FindObject(*status, "status") : nullptr;
      const dw::json::Value* runs = st ? dw::json::FindArray(*st, "runs") : nullptr;
      if (!runs || runs->Empty()) throw BenchError("the image task has no run");
      if (dw::json::GetString((*runs)[0], "state").value_or("") != "completed") {
        throw BenchError("the image task did not complete\n" + daemon->ErrTail());
      }
      auto url = lq.queue().ArtifactUrl(id, 0, "public/logs/live_backing.log");
      if (!url.ok()) throw BenchError("no backing log: " + url.status().message());
      dw::HttpRequest get;
      get.url = *url;
      get.decode_content = true;
      auto body = http.Send(get);
      if (!body.ok() || !body->ok()) throw BenchError("cannot read the backing log");
      *log = body->body;
      auto started = IsoField((*runs)[0], "started");
      auto first = LogTime(*log, "=== Task Starting ===");
      if (!started || !first) throw BenchError("no timestamps in the image task's log");
      return Seconds(*first - *started).count();
    };
    std::string cold_log, warm_log;
    result.cold_s = run_one(0, &cold_log);
    auto dl = LogTime(cold_log, "Downloading artifact");
    auto loaded = LogTime(cold_log, "' loaded.  Using image ID");
    if (dl && loaded) result.cold_download_load_s = Seconds(*loaded - *dl).count();
    result.warm_s = run_one(1, &warm_log);
    result.warm_downloaded = warm_log.find("Downloading artifact") != std::string::npos;
    for (const auto& entry : lq.RequestLog()) {
      if (dw::json::GetString(entry, "method").value_or("") == "GET" &&
          dw::json::GetString(entry, "artifact").value_or("") ==
              image_task + "/0/public/image.tar.zst") {
        ++result.blob_gets;
      }
    }
  } catch (...) {
    StopBoth(daemon, lq);
    if (!local_name.empty()) RunShell("cleanup", "docker rmi " + local_name + ":latest >/dev/null 2>&1 || true", std::chrono::minutes(1));
    throw;
  }
  StopBoth(daemon, lq);
  RunShell("cleanup", "docker rmi " + local_name + ":latest >/dev/null 2>&1 || true",
           std::chrono::minutes(1));
  return result;
}

void Row(const std::string& figure, const std::string& value, const std::string& baseline,
         const std::string& ratio, const std::string& target, const std::string& result) {
  std::printf("  %-34s %-14s %-22s %-7s %-11s %s\n", figure.c_str(), value.c_str(),
              baseline.c_str(), ratio.c_str(), target.c_str(), result.c_str());
}

std::string Fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

int Main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_daemon WORKER_BINARY [TASKS]\n");
    return 64;
  }
  const std::string binary = fs::absolute(argv[1]).string();
  int n1 = 30, n4 = 40;
  if (argc > 2) {
    n1 = n4 = std::atoi(argv[2]);
    if (n1 < 1) {
      std::fprintf(stderr, "bench_daemon: TASKS must be a positive integer\n");
      return 64;
    }
  }
  if (access(binary.c_str(), X_OK) != 0) {
    std::fprintf(stderr, "bench_daemon: %s is not executable\n", binary.c_str());
    return 64;
  }
  const Engine engine = EngineFromEnv();
  TempDir tmp;

  std::printf("\ndaemon figures (docker-worker start against local-queue, `true` tasks on %s)\n",
              kImage);
  std::fflush(stdout);
  BareSequence(engine);  // warm up: image in the page cache, engine connection paths

  std::printf("  bare loop, %d tasks, 1 thread...\n", n1);
  std::fflush(stdout);
  LoopResult bare1 = BareLoop(engine, n1, 1);
  std::printf("  daemon, capacity 1, %d tasks...\n", n1);
  std::fflush(stdout);
  DaemonResult cap1 = DaemonPhase(binary, tmp.path(), 1, n1);
  std::printf("  bare loop, %d tasks, 4 threads...\n", n4);
  std::fflush(stdout);
  LoopResult bare4 = BareLoop(engine, n4, 4);
  std::printf("  daemon, capacity 4, %d tasks...\n", n4);
  std::fflush(stdout);
  DaemonResult cap4 = DaemonPhase(binary, tmp.path(), 4, n4);
  IdleResult idle = IdlePhase(binary, tmp.path());
  std::printf("  artifact image (200 MB, zstd), cold then warm...\n");
  std::fflush(stdout);
  ImageResult image = ImagePhase(binary, tmp.path());

  std::printf("\n");
  Row("figure", "value", "baseline", "ratio", "target", "result");
  Row("------", "-----", "--------", "-----", "------", "------");
  for (const DaemonResult* d : {&cap1, &cap4}) {
    const LoopResult& bare = d->capacity == 1 ? bare1 : bare4;
    double med = Percentile(d->claim_to_resolved_s, 0.5) * 1000;
    double bare_med = Percentile(bare.sequence_s, 0.5) * 1000;
    std::string cap = "capacity " + std::to_string(d->capacity);
    Row("per-task overhead, " + cap, Fmt("%+.1f ms", med - bare_med),
        Fmt("bare seq %.1f ms", bare_med), Fmt("%.2f", med / bare_med), "-", "-");
    double ratio = d->per_minute() / bare.per_minute();
    bool has_target = d->capacity == 1;
    Row("throughput, " + cap, Fmt("%.1f /min", d->per_minute()),
        Fmt("bare loop %.1f /min", bare.per_minute()), Fmt("%.2f", ratio),
        has_target ? Fmt(">= %.2fx", kTargetThroughputRatio) : "-",
        has_target ? (ratio >= kTargetThroughputRatio ? "PASS" : "MISS") : "-");
  }
  Row("idle RSS after 60 s (VmRSS)", Fmt("%.1f MiB", idle.rss_mib), "-", "-",
      Fmt("<= %.0f MiB", kTargetIdleRssMiB), idle.rss_mib <= kTargetIdleRssMiB ? "PASS" : "MISS");
  Row("idle peak RSS (VmHWM)", Fmt("%.1f MiB", idle.hwm_mib), "-", "-", "-", "-");
  Row("image artifact, cold: first line", Fmt("%.2f s", image.cold_s), "-", "-", "-", "-");
  Row("image artifact, warm: first line", Fmt("%.2f s", image.warm_s), "-", "-",
      "no download", image.warm_downloaded || image.blob_gets != 1 ? "MISS" : "PASS");

  std::printf("\n  details\n");
  for (const DaemonResult* d : {&cap1, &cap4}) {
    const LoopResult& bare = d->capacity == 1 ? bare1 : bare4;
    std::printf(
        "  capacity %d: %d tasks, %d completed; claim->resolution median %.1f ms, p90 "
        "%.1f ms; window %.2f s (first claim -> last resolution)\n",
        d->capacity, d->tasks, d->completed, Percentile(d->claim_to_resolved_s, 0.5) * 1000,
        Percentile(d->claim_to_resolved_s, 0.9) * 1000, d->window_s);
    std::printf(
        "              cross-check taskStart -> reportCompleted log line: median %.1f ms "
        "(%zu tasks)\n",
        Percentile(d->cross_check_s, 0.5) * 1000, d->cross_check_s.size());
    std::printf(
        "  bare, %d thread%s: %d tasks, sequence median %.1f ms, p90 %.1f ms; wall "
        "%.2f s\n",
        d->capacity, d->capacity == 1 ? "" : "s", bare.tasks,
        Percentile(bare.sequence_s, 0.5) * 1000, Percentile(bare.sequence_s, 0.9) * 1000,
        bare.wall_s);
  }
  std::printf(
      "  image artifact: %.1f MiB zstd; cold download+decompress+load (streamed) %.2f s; "
      "artifact bytes fetched %d time(s) for 2 tasks; warm run %s\n",
      image.artifact_mib, image.cold_download_load_s, image.blob_gets,
      image.warm_downloaded ? "DOWNLOADED AGAIN" : "reused the loaded image");
  std::printf("  idle daemon: RssAnon %.1f MiB, RssFile %.1f MiB, %d threads\n", idle.anon_mib,
              idle.file_mib, idle.threads);
  for (const DaemonResult* d : {&cap1, &cap4}) {
    if (d->completed != d->tasks) {
      std::printf("  note: at capacity %d only %d of %d tasks resolved completed\n", d->capacity,
                  d->completed, d->tasks);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  int rc;
  try {
    rc = Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_daemon: %s\n", e.what());
    rc = 1;
  }
  curl_global_cleanup();
  return rc;
}
