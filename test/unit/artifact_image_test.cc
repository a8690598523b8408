// ArtifactImages against a real HTTP server on loopback standing in for the queue, the index and
// the artifact storage, and the in-memory engine: download, retag, load, reuse, serialisation,
// persistence, retries and their limits. (The real engine: test/e2e/image_artifact_test.cc.)
#include <catch2/catch.hpp>

#include <sys/resource.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <thread>

#include "docker_worker/artifact_image.h"
#include "docker_worker/sha256.h"
#include "fakes/fake_docker_engine.h"
#include "fakes/instant_clock.h"
#include "fakes/string_sink.h"
#include "fakes/temp_dir.h"
#include "support/image_tars.h"
#include "support/test_http_server.h"

namespace docker_worker {
namespace {

using testing::StringSink;
using testing::Compress;
using testing::FakeDockerEngine;
using testing::FakeDockerSave;
using testing::InstantClock;
using testing::TempDir;
using testing::TestHttpServer;
using testing::TestRequest;
using testing::TestResponse;

const char kTaskId[] = "fN1wQ8nXRTiA6xk6cCfSNA";
const char kPath[] = "public/image.tar.zst";


struct Fixture {
  InstantClock clock;
  HttpClient http;
  FakeDockerEngine docker;
  TempDir dir;
  std::string artifact = Compress(FakeDockerSave("busybox:latest", std::string(50000, 'b')),
                                  "zstd");
  // What the storage answers for the artifact's bytes (default: all of them).
  std::function<TestResponse()> blob = [this] { return TestResponse{200, {}, artifact}; };
  std::atomic<int> blob_gets{0};
  std::atomic<int> artifact_calls{0};
  std::unique_ptr<TestHttpServer> server;
  std::unique_ptr<TaskclusterClient> tc;
  std::shared_ptr<StringSink> sink = std::make_shared<StringSink>();
  TaskLog log{clock};

  Fixture() {
    server = std::make_unique<TestHttpServer>([this](const TestRequest& r) -> TestResponse {
      if (r.uri.rfind("/api/queue/v1/task/", 0) == 0) {
        ++artifact_calls;
        if (r.uri.find("missing") != std::string::npos) {
          return {404, {}, R"({"code":"ResourceNotFound","message":"no such artifact"})"};
        }
        return {303, {{"Location", server->url() + "/blob/x?signature=SECRET"}}, "{}"};
      }
      if (r.uri.rfind("/blob/", 0) == 0) {
        ++blob_gets;
        return blob();
      }
      if (r.uri == "/api/index/v1/task/project.images.latest") {
        return {200, {}, std::string(R"({"namespace":"project.images.latest","taskId":")") +
                             kTaskId + R"(","rank":0,"data":{},"expires":"2030-01-01T00:00:00.000Z"})"};
      }
      return {404, {}, R"({"message":"not found"})"};
    });
    tc = std::make_unique<TaskclusterClient>(http, clock, server->url(),
                                             Credentials{"c", "t0k3n-NEVER-LOGGED", ""});
    log.AddSink(sink);
  }

  ArtifactImageOptions Options() {
    ArtifactImageOptions o;
    o.state_dir = dir / "records";
    o.idle_timeout = std::chrono::seconds(1);
    o.max_attempts = 3;
    o.backoff = Backoff{.base_ms = 1000, .factor = 2, .jitter = 0};
    return o;
  }
};

std::string Sha256Hex(const std::string& bytes) {
  Sha256 h;
  h.Update(bytes);
  return h.HexDigest();
}

TEST_CASE("artifact image: downloaded, retagged, loaded, then reused without a download",
          "[unit]") {
  Fixture f;
  ArtifactImages images(f.docker, f.clock, f.Options());
  auto first = images.Ensure(*f.tc, kTaskId, kPath, f.log, {});
  REQUIRE(first.ok());
  const std::string name = ArtifactImages::LocalName(kTaskId, kPath);
  CHECK(name.size() == 32);
  CHECK(f.docker.InspectImage(name + ":latest").ok());
  CHECK_FALSE(f.docker.InspectImage("busybox:latest").ok());  // the archive's own tag is gone
  CHECK(first->artifact_hash == "sha256:" + Sha256Hex(f.artifact));
  CHECK(first->image_id == f.docker.InspectImage(name + ":latest")->id);
  CHECK_FALSE(first->reused);
  std::string text = f.sink->text();
  CHECK_THAT(text, Catch::Contains(std::string("Downloading artifact \"") + kPath +
                                   "\" from task ID: " + kTaskId + "."));
  CHECK_THAT(text, Catch::Contains("Downloaded artifact successfully."));
  CHECK_THAT(text, Catch::Contains(std::string("Image '") + kPath + "' from task '" + kTaskId +
                                   "' loaded.  Using image ID " + first->image_id + "."));
  CHECK(text.find("SECRET") == std::string::npos);

  auto second = images.Ensure(*f.tc, kTaskId, kPath, f.log, {});
  REQUIRE(second.ok());
  CHECK(second->reused);
  CHECK(second->artifact_hash == first->artifact_hash);
  CHECK(f.blob_gets == 1);
  CHECK(f.docker.loads() == 1);

  SECTION("a new worker (restart) reuses it too, hash included") {
    ArtifactImages restarted(f.docker, f.clock, f.Options());
    auto third = restarted.Ensure(*f.tc, kTaskId, kPath, f.log, {});
    REQUIRE(third.ok());
    CHECK(third->reused);
    CHECK(third->artifact_hash == first->artifact_hash);
    CHECK(f.blob_gets == 1);
  }
  SECTION("without the record the image is fetched again (the hash must be known)") {
    ArtifactImageOptions o = f.Options();
    o.state_dir = f.dir / "other-records";
    ArtifactImages forgetful(f.docker, f.clock, o);
    auto third = forgetful.Ensure(*f.tc, kTaskId, kPath, f.log, {});
    REQUIRE(third.ok());
    CHECK_FALSE(third->reused);
    CHECK(f.blob_gets == 2);
  }
}

TEST_CASE("artifact image: concurrent runs wanting the same artifact download it once",
          "[unit]") {
  Fixture f;
  ArtifactImages images(f.docker, f.clock, f.Options());
  std::vector<std::thread> threads;
  std::vector<Result<ArtifactImage>> results(4, Status(Code::kInternal, "not run"));
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] { results[i] = images.Ensure(*f.tc, kTaskId, kPath, f.log, {}); });
  }
  for (auto& t : threads) t.join();
  for (const auto& r : results) {
    REQUIRE(r.ok());
    CHECK(r->image_id == results[0]->image_id);
  }
  CHECK(f.blob_gets == 1);
  CHECK(f.docker.loads() == 1);
}

TEST_CASE("artifact image: failures", "[unit]") {
  Fixture f;
  ArtifactImages images(f.docker, f.clock, f.Options());
  SECTION("a missing artifact fails at once") {
    auto r = images.Ensure(*f.tc, kTaskId, "public/missing.tar", f.log, {});
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.status().message(), Catch::StartsWith("Error loading docker image. "));
    CHECK(f.artifact_calls == 1);
    CHECK(f.clock.sleeps() == 0);
  }
  SECTION("a 401 from the storage fails at once") {
    f.blob = [] { return TestResponse{401, {}, "who are you"}; };
    auto r = images.Ensure(*f.tc, kTaskId, kPath, f.log, {});
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Code::kPermissionDenied);
    CHECK(f.blob_gets == 1);
  }
  SECTION("a 403 from the storage is retried with a fresh URL, as upstream does") {
    f.blob = [] { return TestResponse{403, {}, "denied"}; };
    auto r = images.Ensure(*f.tc, kTaskId, kPath, f.log, {});
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Code::kPermissionDenied);
    CHECK_THAT(r.status().message(), Catch::Contains("HTTP 403"));
    CHECK(f.blob_gets == 3);
    CHECK(f.artifact_calls == 3);
  }
  SECTION("an expired signature (403) then success loads the image") {
    f.blob = [&f] {
      if (f.blob_gets == 1) return TestResponse{403, {}, "Request has expired"};
      return TestResponse{200, {}, f.artifact};
    };
    auto r = images.Ensure(*f.tc, kTaskId, kPath, f.log, {});
    REQUIRE(r.ok());
    CHECK(f.blob_gets == 2);
  }
  SECTION("5xx from the storage is retried with backoff, then fails") {
    f.blob = [] { return TestResponse{503, {}, "busy"}; };
    auto r = images.Ensure(*f.tc, kTaskId, kPath, f.log, {});
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.status().message(), Catch::Contains("HTTP 503"));
    CHECK(f.blob_gets == 3);
    CHECK(f.clock.slept() == Millis(1000 + 2000));
  }
  SECTION("a transient failure then success loads the image") {
    f.blob = [&f] {
      if (f.blob_gets == 1) return TestResponse{500, {}, "oops"};
      return TestResponse{200, {}, f.artifact};
    };
    auto r = images.Ensure(*f.tc, kTaskId, kPath, f.log, {});
    REQUIRE(r.ok());
    CHECK(f.blob_gets == 2);
    CHECK(f.docker.loads() == 1);
  }
  SECTION("a stalled download fails within the idle timeout, per attempt") {
    f.blob = [&f] {
      TestResponse r{200, {}, f.artifact};
      r.stall_after = f.artifact.size() / 2;
      return r;
    };
    auto start = std::chrono::steady_clock::now();
    auto r = images.Ensure(*f.tc, kTaskId, kPath, f.log, {});
    auto took = std::chrono::steady_clock::now() - start;
    INFO(f.sink->text());
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.status().message(), Catch::Contains("the download stalled"));
    CHECK(f.blob_gets == 3);
    CHECK(took < std::chrono::seconds(15));  // 3 attempts x ~1-2 s idle timeout
    CHECK(f.docker.loads() == 0);
  }
  SECTION("an artifact that is not an image archive fails clearly, without retries") {
    f.blob = [] { return TestResponse{200, {}, std::string(4096, 'x')}; };
    auto r = images.Ensure(*f.tc, kTaskId, kPath, f.log, {});
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.status().message(),
               Catch::StartsWith("Error loading docker image. Unsupported image file format."));
    CHECK(f.blob_gets == 1);
  }
  SECTION("an engine that refuses the load fails the image") {
    f.docker.load_error = Status(Code::kInternal, "invalid tar header");
    auto r = images.Ensure(*f.tc, kTaskId, kPath, f.log, {});
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.status().message(), Catch::Contains("invalid tar header"));
    CHECK(f.blob_gets == 1);
  }
  SECTION("an engine unreachable or timing out during the load is retried") {
    Code code = GENERATE(Code::kUnavailable, Code::kDeadlineExceeded);
    f.docker.load_error = Status(code, "cannot reach the Docker engine");
    auto r = images.Ensure(*f.tc, kTaskId, kPath, f.log, {});
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.status().message(), Catch::Contains("cannot reach the Docker engine"));
    CHECK(f.blob_gets == 3);
  }
  CHECK(f.sink->text().find("SECRET") == std::string::npos);
}

TEST_CASE("artifact image: bytes after the end of the tar are downloaded and hashed too",
          "[unit]") {
  // GNU tar pads to 10240-byte records and libarchive stops at the end-of-archive marker; the
  // padding is still the artifact. Enough of it that the download is still running when the
  // retag is done (the pipe between them holds 4 MiB).
  Fixture f;
  f.artifact = FakeDockerSave("busybox:latest", std::string(50000, 'b')) +
               std::string(size_t{6} << 20, '\0');
  ArtifactImages images(f.docker, f.clock, f.Options());
  auto r = images.Ensure(*f.tc, kTaskId, kPath, f.log, {});
  INFO(f.sink->text());
  REQUIRE(r.ok());
  CHECK(r->artifact_hash == "sha256:" + Sha256Hex(f.artifact));
  CHECK(f.blob_gets == 1);
  CHECK(f.docker.loads() == 1);
}

TEST_CASE("artifact image: a record that cannot be written completely is not kept", "[unit]") {
  Fixture f;
  ArtifactImages images(f.docker, f.clock, f.Options());
  // Every file write beyond 16 bytes fails (EFBIG) while the image is ensured.
  rlimit saved{};
  REQUIRE(getrlimit(RLIMIT_FSIZE, &saved) == 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = saved;
  small.rlim_cur = 16;
  REQUIRE(setrlimit(RLIMIT_FSIZE, &small) == 0);
  auto r = images.Ensure(*f.tc, kTaskId, kPath, f.log, {});
  setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, old_handler);
  REQUIRE(r.ok());
  // Neither a truncated record nor a stray temp file.
  std::vector<std::string> left;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(f.dir / "records", ec)) {
    left.push_back(e.path().filename().string());
  }
  CHECK(left.empty());
  // So a restarted worker downloads it again, rather than trusting half a record.
  ArtifactImages restarted(f.docker, f.clock, f.Options());
  auto again = restarted.Ensure(*f.tc, kTaskId, kPath, f.log, {});
  REQUIRE(again.ok());
  CHECK_FALSE(again->reused);
}

TEST_CASE("artifact image: the index names the task of an indexed image", "[unit]") {
  Fixture f;
  auto found = FindIndexedTask(*f.tc, "project.images.latest", {});
  REQUIRE(found.ok());
  CHECK(*found == kTaskId);
  auto missing = FindIndexedTask(*f.tc, "project.nothing", {});
  REQUIRE_FALSE(missing.ok());
  CHECK_THAT(missing.status().message(),
             Catch::StartsWith("Could not find a task associated with \"project.nothing\" "
                               "namespace. "));
}

}  // namespace
}  // namespace docker_worker
