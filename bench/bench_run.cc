// make bench: the wall time of `docker-worker run` for a `true` task against the bare Engine
// API sequence create+start+wait+remove (raw libcurl over the socket, no attach, no log), the
// two interleaved so machine drift cancels out. Prints medians, p90 and the ratio.
//
// usage: bench_run WORKER_BINARY [ITERATIONS]
#include <curl/curl.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

extern char** environ;

namespace {

const char* kImage = "taskenv/busybox:latest";

size_t Collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

std::string Call(CURL* curl, const char* method, const std::string& path, const std::string& body,
                 long* status) {
  std::string out;
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
  std::string url = "http://localhost/v1.41" + path;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.empty() ? nullptr : body.c_str());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  if (std::string(method) == "POST" && body.empty()) curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &out);
  if (curl_easy_perform(curl) != CURLE_OK) {
    std::fprintf(stderr, "bench: engine call %s %s failed\n", method, path.c_str());
    std::exit(1);
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
  return out;
}

double BareSequence(const std::string& socket) {
  auto start = std::chrono::steady_clock::now();
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, socket.c_str());
  struct curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  long status = 0;
  std::string created = Call(curl, "POST", "/containers/create",
                             std::string("{\"Image\":\"") + kImage +
                                 "\",\"Cmd\":[\"true\"],\"Tty\":true}",
                             &status);
  size_t at = created.find("\"Id\":\"");
  if (status != 201 || at == std::string::npos) {
    std::fprintf(stderr, "bench: create failed: %s\n", created.c_str());
    std::exit(1);
  }
  std::string id = created.substr(at + 6, 64);
  // Every step must succeed, or the baseline would time a failure.
  auto step = [&](const char* method, const std::string& path, long ok) {
    std::string body = Call(curl, method, path, "", &status);
    if (status != ok) {
      std::fprintf(stderr, "bench: %s %s answered %ld: %s\n", method, path.c_str(), status,
                   body.c_str());
      std::exit(1);
    }
    return body;
  };
  step("POST", "/containers/" + id + "/start", 204);
  if (step("POST", "/containers/" + id + "/wait", 200).find("\"StatusCode\":0") ==
      std::string::npos) {
    std::fprintf(stderr, "bench: the bare container did not exit 0\n");
    std::exit(1);
  }
  step("DELETE", "/containers/" + id + "?force=1&v=1", 204);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double WorkerRun(const std::string& binary, const std::string& payload, const std::string& out) {
  auto start = std::chrono::steady_clock::now();
  std::vector<std::string> argv = {binary, "run", payload, "--output", out};
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  if (posix_spawn(&pid, binary.c_str(), &actions, nullptr, args.data(), environ) != 0) {
    std::fprintf(stderr, "bench: cannot start %s\n", binary.c_str());
    std::exit(1);
  }
  int wstatus = 0;
  waitpid(pid, &wstatus, 0);
  posix_spawn_file_actions_destroy(&actions);
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    std::fprintf(stderr, "bench: docker-worker run failed (status %d)\n", wstatus);
    std::exit(1);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * (v.size() - 1) + 0.5)];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_run WORKER_BINARY [ITERATIONS]\n");
    return 64;
  }
  std::string binary = argv[1];
  int n = argc > 2 ? std::atoi(argv[2]) : 20;
  if (n < 1) {
    std::fprintf(stderr, "bench_run: ITERATIONS must be at least 1\n");
    return 64;
  }
  const char* host = std::getenv("DOCKER_HOST");
  std::string socket = host && std::string(host).rfind("unix://", 0) == 0 ? host + 7
                                                                          : "/var/run/docker.sock";
  char tmpl[] = "/tmp/dw-bench-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::string payload = dir + "/true.json";
  std::ofstream(payload) << "{\"image\": \"" << kImage
                         << "\", \"command\": [\"true\"], \"maxRunTime\": 60}";
  curl_global_init(CURL_GLOBAL_DEFAULT);
  BareSequence(socket);  // warm up both paths
  WorkerRun(binary, payload, dir + "/warm");
  std::vector<double> bare, worker;
  for (int i = 0; i < n; ++i) {
    bare.push_back(BareSequence(socket));
    worker.push_back(WorkerRun(binary, payload, dir + "/out" + std::to_string(i)));
  }
  std::string cleanup = "rm -rf " + dir;
  if (std::system(cleanup.c_str()) != 0) std::fprintf(stderr, "bench: cannot remove %s\n", dir.c_str());
  double bare_med = Percentile(bare, 0.5), worker_med = Percentile(worker, 0.5);
  std::printf("run overhead (true task, %d interleaved runs each)\n", n);
  std::printf("  bare Engine API create+start+wait+remove  median %7.1f ms   p90 %7.1f ms\n",
              bare_med * 1000, Percentile(bare, 0.9) * 1000);
  std::printf("  docker-worker run                         median %7.1f ms   p90 %7.1f ms\n",
              worker_med * 1000, Percentile(worker, 0.9) * 1000);
  std::printf("  ratio (median)                            %.2f   (target <= 1.30)\n",
              worker_med / bare_med);
  return 0;
}
