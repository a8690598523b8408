// EngineApi (and the HttpClient under it) against the real Docker engine. Uses only the local
// test images (scripts/build-images); never pulls from a registry on the internet. Everything a
// test creates carries the label docker-worker.test=1 and is removed by a Cleanup guard.
#include "docker_worker/engine_api.h"

#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "docker_worker/http_client.h"

namespace docker_worker {
namespace {

using namespace std::chrono_literals;

constexpr char kBusybox[] = "taskenv/busybox:latest";
constexpr char kPass[] = "taskenv_pass:latest";

std::string Unique(const std::string& prefix) {
  static std::mt19937_64 rng(std::random_device{}());
  return prefix + std::to_string(getpid()) + "-" + std::to_string(rng() % 1000000000);
}

// Removes every object registered with it, even when the test failed.
class Cleanup {
 public:
  explicit Cleanup(DockerEngine& engine) : engine_(engine) {}
  ~Cleanup() {
    for (const auto& id : containers_) engine_.RemoveContainer(id);
    for (const auto& id : networks_) engine_.RemoveNetwork(id);
    for (const auto& name : volumes_) engine_.RemoveVolume(name);
    for (const auto& dir : dirs_) std::filesystem::remove_all(dir);
  }
  Cleanup(const Cleanup&) = delete;
  Cleanup& operator=(const Cleanup&) = delete;

  std::string Container(const std::string& id) { return containers_.emplace_back(id); }
  std::string Network(const std::string& id) { return networks_.emplace_back(id); }
  std::string Volume(const std::string& name) { return volumes_.emplace_back(name); }
  std::string Dir(const std::string& dir) { return dirs_.emplace_back(dir); }

 private:
  DockerEngine& engine_;
  std::vector<std::string> containers_, networks_, volumes_, dirs_;
};

ContainerSpec Spec(const std::string& image, std::vector<std::string> cmd) {
  ContainerSpec spec;
  spec.image = image;
  spec.cmd = std::move(cmd);
  spec.labels["docker-worker.test"] = "1";
  spec.network_mode = "none";
  return spec;
}

// Creates a container (registered with `cleanup`), or fails the test.
std::string MustCreate(EngineApi& engine, Cleanup& cleanup, const ContainerSpec& spec) {
  auto id = engine.CreateContainer(spec);
  INFO(id.status().message());
  REQUIRE(id.ok());
  return cleanup.Container(*id);
}

struct RunResult {
  Status attach;
  Status start;
  Result<int64_t> exit_code = Status(Code::kInternal, "not waited");
};

// attach -> (attached) start -> wait -> end of stream, the way a task run does it.
RunResult AttachStartWait(EngineApi& engine, const std::string& id, const ByteSink& sink) {
  RunResult result;
  std::promise<void> attached;
  auto attached_future = attached.get_future();
  std::thread attach(
      [&] { result.attach = engine.AttachContainer(id, [&] { attached.set_value(); }, sink, {}); });
  if (attached_future.wait_for(30s) != std::future_status::ready) {
    engine.RemoveContainer(id);
    attach.join();
    result.start = Status(Code::kDeadlineExceeded, "never attached");
    return result;
  }
  result.start = engine.StartContainer(id);
  result.exit_code = engine.WaitContainer(id, {});
  attach.join();
  return result;
}

ByteSink Collect(std::string& out) {
  return [&out](std::string_view chunk) {
    out.append(chunk);
    return Status::Ok();
  };
}

int64_t PeakRssKb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::atoll(line.c_str() + 6);
  }
  return -1;
}

EngineApi& Engine() {
  static EngineApi engine(EngineApi::SocketFromEnvironment());
  return engine;
}

TEST_CASE("EngineApi pings the engine", "[integration]") {
  Status s = Engine().Ping();
  INFO(s.message());
  CHECK(s.ok());
  CHECK(Engine().Endpoint().rfind("unix:///", 0) == 0);
}

TEST_CASE("EngineApi names the socket when the engine cannot be reached", "[integration]") {
  EngineApi engine("/nonexistent/dw-test/docker.sock");
  Status s = engine.Ping();
  CHECK(s.code() == Code::kUnavailable);
  CHECK_THAT(s.message(), Catch::StartsWith("cannot reach the Docker engine at "
                                            "unix:///nonexistent/dw-test/docker.sock: "));
  auto list = engine.ListContainers({"docker-worker.test=1"});
  CHECK(list.status().code() == Code::kUnavailable);
}

TEST_CASE("EngineApi::SocketFromEnvironment reads DOCKER_HOST", "[integration]") {
  const char* saved = std::getenv("DOCKER_HOST");
  std::string saved_value = saved ? saved : "";
  setenv("DOCKER_HOST", "unix:///run/custom.sock", 1);
  CHECK(EngineApi::SocketFromEnvironment() == "/run/custom.sock");
  unsetenv("DOCKER_HOST");
  CHECK(EngineApi::SocketFromEnvironment() == "/var/run/docker.sock");
  if (saved) setenv("DOCKER_HOST", saved_value.c_str(), 1);
}

TEST_CASE("EngineApi inspects images", "[integration]") {
  auto info = Engine().InspectImage(kBusybox);
  INFO(info.status().message());
  REQUIRE(info.ok());
  CHECK(info->id.rfind("sha256:", 0) == 0);
  CHECK(std::find(info->repo_tags.begin(), info->repo_tags.end(), kBusybox) !=
        info->repo_tags.end());
  CHECK(info->size > 0);

  auto missing = Engine().InspectImage("taskenv/no-such-image:latest");
  CHECK(missing.status().code() == Code::kNotFound);
  CHECK_THAT(missing.status().message(), Catch::Contains("no-such-image"));

  // References that could address another API endpoint never reach the engine.
  CHECK(Engine().InspectImage("../containers/json").status().code() == Code::kInvalidArgument);
  CHECK(Engine().RemoveImage("a/../../containers/x").code() == Code::kInvalidArgument);
  CHECK(Engine().InspectImage("busybox latest").status().code() == Code::kInvalidArgument);
}

TEST_CASE("EngineApi create of a missing image is kNotFound", "[integration]") {
  auto id = Engine().CreateContainer(Spec("taskenv/no-such-image:latest", {"true"}));
  CHECK(id.status().code() == Code::kNotFound);
  CHECK_THAT(id.status().message(), Catch::Contains("No such image"));
}

TEST_CASE("EngineApi runs a container by attach then start then wait", "[integration]") {
  Cleanup cleanup(Engine());
  std::string id =
      MustCreate(Engine(), cleanup, Spec(kBusybox, {"sh", "-c", "echo hello; exit 5"}));
  std::string output;
  RunResult run = AttachStartWait(Engine(), id, Collect(output));
  INFO(run.attach.message() << " / " << run.start.message());
  CHECK(run.attach.ok());
  CHECK(run.start.ok());
  REQUIRE(run.exit_code.ok());
  CHECK(*run.exit_code == 5);
  CHECK(output == "hello\r\n");

  // Once it has exited, wait returns at once.
  auto again = Engine().WaitContainer(id, {});
  REQUIRE(again.ok());
  CHECK(*again == 5);
}

TEST_CASE("EngineApi demultiplexes the output of a non-TTY container", "[integration]") {
  Cleanup cleanup(Engine());
  ContainerSpec spec = Spec(kBusybox, {"sh", "-c", "echo out; sleep 0.1; echo err >&2; exit 0"});
  spec.tty = false;
  std::string id = MustCreate(Engine(), cleanup, spec);
  std::string output;
  RunResult run = AttachStartWait(Engine(), id, Collect(output));
  CHECK(run.attach.ok());
  REQUIRE(run.exit_code.ok());
  CHECK(*run.exit_code == 0);
  CHECK(output == "out\nerr\n");
}

TEST_CASE("EngineApi streams large output with bounded memory", "[integration]") {
  Cleanup cleanup(Engine());
  ContainerSpec spec = Spec(kBusybox, {"sh", "-c", "head -c 50000000 /dev/zero"});
  spec.log_driver = "none";  // keeps the engine from writing 50 MB of json-file log
  std::string id = MustCreate(Engine(), cleanup, spec);
  int64_t before = PeakRssKb();
  int64_t bytes = 0;
  RunResult run = AttachStartWait(Engine(), id, [&bytes](std::string_view chunk) {
    bytes += static_cast<int64_t>(chunk.size());
    return Status::Ok();
  });
  int64_t after = PeakRssKb();
  INFO(run.attach.message());
  CHECK(run.attach.ok());
  REQUIRE(run.exit_code.ok());
  CHECK(*run.exit_code == 0);
  CHECK(bytes == 50000000);
  REQUIRE(before > 0);
  CHECK(after - before < 64 * 1024);
}

TEST_CASE("EngineApi sink errors stop the attach stream", "[integration]") {
  Cleanup cleanup(Engine());
  ContainerSpec spec = Spec(kBusybox, {"sh", "-c", "head -c 10000000 /dev/zero"});
  spec.log_driver = "none";
  std::string id = MustCreate(Engine(), cleanup, spec);
  RunResult run = AttachStartWait(Engine(), id, [](std::string_view) {
    return Status(Code::kInvalidArgument, "sink is full");
  });
  CHECK(run.attach.code() == Code::kInvalidArgument);
  CHECK(run.attach.message() == "sink is full");
}

TEST_CASE("EngineApi kill makes wait return", "[integration]") {
  Cleanup cleanup(Engine());
  std::string id = MustCreate(Engine(), cleanup, Spec(kBusybox, {"sleep", "600"}));
  REQUIRE(Engine().StartContainer(id).ok());
  auto waited = std::async(std::launch::async, [&] { return Engine().WaitContainer(id, {}); });
  std::this_thread::sleep_for(200ms);  // let the wait reach the engine; not needed for correctness
  Status killed = Engine().KillContainer(id);
  INFO(killed.message());
  CHECK(killed.ok());
  REQUIRE(waited.wait_for(30s) == std::future_status::ready);
  auto code = waited.get();
  REQUIRE(code.ok());
  CHECK(*code == 137);
  // Killing a container that is not running is fine; a missing one is kNotFound.
  CHECK(Engine().KillContainer(id).ok());
  CHECK(Engine().KillContainer("dw-test-no-such-container").code() == Code::kNotFound);
}

TEST_CASE("EngineApi streaming calls honour stop", "[integration]") {
  Cleanup cleanup(Engine());
  std::string id = MustCreate(Engine(), cleanup, Spec(kBusybox, {"sleep", "600"}));
  std::stop_source attach_stop;
  std::promise<void> attached;
  auto attached_future = attached.get_future();
  auto attach = std::async(std::launch::async, [&] {
    return Engine().AttachContainer(
        id, [&] { attached.set_value(); }, [](std::string_view) { return Status::Ok(); },
        attach_stop.get_token());
  });
  REQUIRE(attached_future.wait_for(30s) == std::future_status::ready);
  REQUIRE(Engine().StartContainer(id).ok());

  std::stop_source wait_stop;
  auto waited = std::async(std::launch::async,
                           [&] { return Engine().WaitContainer(id, wait_stop.get_token()); });
  std::this_thread::sleep_for(200ms);
  auto t0 = std::chrono::steady_clock::now();
  wait_stop.request_stop();
  attach_stop.request_stop();
  REQUIRE(waited.wait_for(10s) == std::future_status::ready);
  REQUIRE(attach.wait_for(10s) == std::future_status::ready);
  CHECK(std::chrono::steady_clock::now() - t0 < 2s);
  CHECK(waited.get().status().code() == Code::kCancelled);
  CHECK(attach.get().code() == Code::kCancelled);
}

TEST_CASE("EngineApi remove of a missing container is ok", "[integration]") {
  CHECK(Engine().RemoveContainer("dw-test-no-such-container").ok());
  CHECK(Engine().StartContainer("dw-test-no-such-container").code() == Code::kNotFound);
  CHECK(Engine().WaitContainer("dw-test-no-such-container", {}).status().code() == Code::kNotFound);
}

TEST_CASE("EngineApi GetArchive streams files and directories", "[integration]") {
  Cleanup cleanup(Engine());
  std::string id = MustCreate(Engine(), cleanup, Spec(kPass, {}));  // never started

  std::string tar;
  auto file = Engine().GetArchive(id, "/artifacts/result.txt", Collect(tar));
  INFO(file.status().message());
  REQUIRE(file.ok());
  CHECK(file->name == "result.txt");
  CHECK(file->size == 5);  // "pass\n"
  CHECK_FALSE(file->is_dir());
  CHECK(tar.size() >= 1024);
  CHECK(tar.find("result.txt") != std::string::npos);
  CHECK(tar.find("pass\n") != std::string::npos);

  std::string dir_tar;
  auto dir = Engine().GetArchive(id, "/artifacts/dir", Collect(dir_tar));
  REQUIRE(dir.ok());
  CHECK(dir->name == "dir");
  CHECK(dir->is_dir());
  CHECK(dir_tar.find("dir/sub/bar.html") != std::string::npos);

  std::string link_tar;
  auto link = Engine().GetArchive(id, "/artifacts/link-out.txt", Collect(link_tar));
  REQUIRE(link.ok());
  CHECK(link->is_symlink());
  CHECK(link->link_target == "/etc/passwd");

  std::string nothing;
  auto missing = Engine().GetArchive(id, "/artifacts/no-such-file", Collect(nothing));
  CHECK(missing.status().code() == Code::kNotFound);
  CHECK_THAT(missing.status().message(), Catch::Contains("no-such-file"));
  CHECK(nothing.empty());  // the error body never reaches the sink

  CHECK(Engine().GetArchive("dw-test-no-such-container", "/", Collect(nothing)).status().code() ==
        Code::kNotFound);
}

TEST_CASE("EngineApi applies env labels binds and name", "[integration]") {
  Cleanup cleanup(Engine());
  char dir_template[] = "/tmp/dw-engine-test-XXXXXX";
  REQUIRE(mkdtemp(dir_template) != nullptr);
  std::string dir = cleanup.Dir(dir_template);
  std::ofstream(dir + "/in.txt") << "from the host\n";

  std::string tag = Unique("case-");
  ContainerSpec spec = Spec(kBusybox, {"sh", "-c", "echo \"$FOO|$BAR\"; cat /data/in.txt"});
  spec.env = {"FOO=foo value", "BAR=b=ar"};
  spec.labels["docker-worker.case"] = tag;
  spec.binds = {dir + ":/data:ro"};
  spec.extra_hosts = {"example.test:10.1.2.3"};
  spec.name = Unique("dw-test-");
  spec.log_driver = "none";
  spec.shm_size = 64 << 20;
  std::string id = MustCreate(Engine(), cleanup, spec);

  auto listed = Engine().ListContainers({"docker-worker.test=1", "docker-worker.case=" + tag});
  REQUIRE(listed.ok());
  REQUIRE(listed->size() == 1);
  CHECK(listed->front().id == id);
  CHECK(listed->front().state == "created");
  CHECK(listed->front().labels.at("docker-worker.case") == tag);
  CHECK(listed->front().image_id.rfind("sha256:", 0) == 0);
  CHECK(listed->front().created > 0);

  std::string output;
  RunResult run = AttachStartWait(Engine(), id, Collect(output));
  CHECK(run.attach.ok());
  REQUIRE(run.exit_code.ok());
  CHECK(*run.exit_code == 0);
  CHECK(output == "foo value|b=ar\r\nfrom the host\r\n");

  // A second container with the same name is a conflict.
  auto duplicate = Engine().CreateContainer(spec);
  if (duplicate.ok()) cleanup.Container(*duplicate);
  CHECK(duplicate.status().code() == Code::kConflict);

  auto none = Engine().ListContainers({"docker-worker.case=" + tag + "-other"});
  REQUIRE(none.ok());
  CHECK(none->empty());
}

TEST_CASE("EngineApi creates lists and removes networks", "[integration]") {
  Cleanup cleanup(Engine());
  std::string name = Unique("dw-test-net-");
  auto id =
      Engine().CreateNetwork(name, {{"docker-worker.test", "1"}, {"docker-worker.case", name}});
  INFO(id.status().message());
  REQUIRE(id.ok());
  cleanup.Network(*id);

  auto listed = Engine().ListNetworks({"docker-worker.case=" + name});
  REQUIRE(listed.ok());
  REQUIRE(listed->size() == 1);
  CHECK(listed->front().id == *id);
  CHECK(listed->front().name == name);
  CHECK(listed->front().labels.at("docker-worker.test") == "1");

  // CheckDuplicate: the same name again is refused.
  auto duplicate = Engine().CreateNetwork(name, {{"docker-worker.test", "1"}});
  if (duplicate.ok()) cleanup.Network(*duplicate);
  CHECK_FALSE(duplicate.ok());

  CHECK(Engine().RemoveNetwork(*id).ok());
  CHECK(Engine().RemoveNetwork(*id).ok());  // already gone
  auto after = Engine().ListNetworks({"docker-worker.case=" + name});
  REQUIRE(after.ok());
  CHECK(after->empty());
}

TEST_CASE("EngineApi creates lists and removes volumes", "[integration]") {
  Cleanup cleanup(Engine());
  std::string name = Unique("dw-test-vol-");
  auto volume =
      Engine().CreateVolume(name, {{"docker-worker.test", "1"}, {"docker-worker.case", name}});
  INFO(volume.status().message());
  REQUIRE(volume.ok());
  cleanup.Volume(volume->name);
  CHECK(volume->name == name);
  CHECK_FALSE(volume->mountpoint.empty());
  CHECK(volume->labels.at("docker-worker.case") == name);

  auto listed = Engine().ListVolumes({"docker-worker.case=" + name});
  REQUIRE(listed.ok());
  REQUIRE(listed->size() == 1);
  CHECK(listed->front().name == name);

  CHECK(Engine().RemoveVolume(name).ok());
  CHECK(Engine().RemoveVolume(name).ok());  // already gone
  auto after = Engine().ListVolumes({"docker-worker.case=" + name});
  REQUIRE(after.ok());
  CHECK(after->empty());
}

TEST_CASE("EngineApi pull from an unreachable registry fails clearly", "[integration]") {
  std::vector<PullEvent> events;
  Status s = Engine().PullImage("127.0.0.1:1/nothing", "latest", "",
                                [&](const PullEvent& e) { events.push_back(e); }, {});
  UNSCOPED_INFO("pull error: " << s.message());
  CHECK_FALSE(s.ok());
  CHECK(s.code() != Code::kUnavailable);  // the engine was reached; the registry was not
  CHECK_THAT(s.message(), Catch::Contains("127.0.0.1:1"));
}

// --- HttpClient, exercised over the engine socket.

TEST_CASE("HttpClient reports case-insensitive headers before the body", "[integration]") {
  HttpClient client(EngineApi::SocketFromEnvironment());
  HttpRequest request;
  request.url = "http://docker/v1.41/_ping";
  std::vector<std::string> order;
  request.on_headers = [&](const HttpResponse& head) {
    order.push_back("headers " + std::to_string(head.status) + " " +
                    head.headers.Get("api-version").value_or("?"));
    return Status::Ok();
  };
  request.body_sink = [&](std::string_view chunk) {
    order.push_back("body " + std::string(chunk));
    return Status::Ok();
  };
  auto response = client.Send(request);
  REQUIRE(response.ok());
  CHECK(response->status == 200);
  CHECK(response->headers.Get("API-VERSION") == response->headers.Get("Api-Version"));
  CHECK(response->body.empty());  // went to the sink
  REQUIRE(order.size() == 2);
  CHECK(order[0] == "headers 200 1.41");
  CHECK(order[1] == "body OK");
}

TEST_CASE("HttpClient keeps non-2xx bodies and honours header callback errors", "[integration]") {
  HttpClient client(EngineApi::SocketFromEnvironment());
  HttpRequest request;
  request.url = "http://docker/v1.41/containers/dw-test-no-such-container/json";
  bool sink_called = false;
  request.body_sink = [&](std::string_view) {
    sink_called = true;
    return Status::Ok();
  };
  auto response = client.Send(request);
  REQUIRE(response.ok());
  CHECK(response->status == 404);
  CHECK_THAT(response->body, Catch::Contains("No such container"));
  CHECK_FALSE(sink_called);

  request.on_headers = [](const HttpResponse&) { return Status(Code::kConflict, "no thanks"); };
  auto refused = client.Send(request);
  CHECK(refused.status().code() == Code::kConflict);
  CHECK(refused.status().message() == "no thanks");
}

TEST_CASE("HttpClient serves concurrent callers", "[integration]") {
  HttpClient client(EngineApi::SocketFromEnvironment());
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 25; ++j) {
        HttpRequest request;
        request.url = "http://docker/v1.41/_ping";
        auto response = client.Send(request);
        if (response.ok() && response->status == 200 && response->body == "OK") ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(ok == 200);
}

TEST_CASE("HttpClient returns kCancelled for an already stopped request", "[integration]") {
  HttpClient client(EngineApi::SocketFromEnvironment());
  std::stop_source stop;
  stop.request_stop();
  HttpRequest request;
  request.url = "http://docker/v1.41/_ping";
  request.stop = stop.get_token();
  CHECK(client.Send(request).status().code() == Code::kCancelled);
}

TEST_CASE("HttpClient maps timeouts to kDeadlineExceeded", "[integration]") {
  Cleanup cleanup(Engine());
  std::string id = MustCreate(Engine(), cleanup, Spec(kBusybox, {"sleep", "600"}));
  REQUIRE(Engine().StartContainer(id).ok());
  HttpClient client(EngineApi::SocketFromEnvironment());
  HttpRequest request;
  request.method = "POST";
  request.url = "http://docker/v1.41/containers/" + id + "/wait";
  request.total_timeout = 300ms;
  auto response = client.Send(request);
  CHECK(response.status().code() == Code::kDeadlineExceeded);
}

TEST_CASE("RedactUrl drops query strings and credentials", "[integration]") {
  CHECK(RedactUrl("https://user:pw@s3.example/bucket/key?X-Amz-Signature=abc") ==
        "https://s3.example/bucket/key");
  CHECK(RedactUrl("http://host:8080/a#frag") == "http://host:8080/a");
  CHECK(UrlEscape("{\"label\":[\"a=b\"]}") == "%7B%22label%22%3A%5B%22a%3Db%22%5D%7D");
}

}  // namespace
}  // namespace docker_worker
