// task-image and indexed-image end to end: image artifacts made here from taskenv/busybox with
// the docker CLI (`docker save`) and the zstd / lz4 / gzip CLIs, published on local-queue, then
// run by the daemon on the real engine. Every image this file loads or creates is removed at
// the end (by the names and ids it made; never the taskenv images).
#include <catch2/catch.hpp>

#include <chrono>
#include <cctype>
#include <fstream>
#include <sstream>

#include "docker_worker/artifact_image.h"
#include "docker_worker/json.h"
#include "docker_worker/sha256.h"
#include "docker_worker/slugid.h"
#include "support/local_system.h"
#include "support/subprocess.h"
#include "support/test_http_server.h"

namespace docker_worker {
namespace {

using testing::LocalSystem;
using testing::TempDir;

// Runs `script` with sh; returns its exit code (stdout/stderr kept in `dir`).
int Shell(TempDir& dir, const std::string& script) {
  return testing::RunProcess({"/bin/sh", "-c", script}, {}, dir / "sh.out", dir / "sh.err")
      .exit_code;
}

std::string FileSha256(const std::string& path) {
  Sha256 h;
  h.Update(testing::ReadFile(path));
  return "sha256:" + h.HexDigest();
}

// Removes, at the end of a test, the images it loaded (by local name) or created (by id).
struct ImageCleanup {
  TempDir& dir;
  std::vector<std::string> refs;
  ~ImageCleanup() {
    for (const auto& r : refs) Shell(dir, "docker rmi -f " + r + " >/dev/null 2>&1");
  }
};

std::string TaskImage(const std::string& task_id, const std::string& path,
                      const std::string& command, const std::string& extra = "") {
  return R"({"image": {"type": "task-image", "taskId": ")" + task_id + R"(", "path": ")" + path +
         R"("}, "maxRunTime": 60, "command": ["sh", "-c", )" + json::Quote(command) + "]" +
         extra + "}";
}

// Lines of local-queue's request log that GET the blob of `artifact` ("taskId/run/name").
int BlobGets(const std::string& queue_log, const std::string& artifact) {
  int n = 0;
  std::istringstream in(queue_log);
  for (std::string line; std::getline(in, line);) {
    if (line.find(R"("method":"GET")") != std::string::npos &&
        line.find(R"("path":"/_blob/[redacted]")") != std::string::npos &&
        line.find(R"("artifact":")" + artifact + "\"") != std::string::npos) {
      ++n;
    }
  }
  return n;
}

TEST_CASE("e2e: task-image and indexed-image (zstd, lz4, gzip) run on the real engine, a second "
          "use downloads nothing, private paths need the scope, chain of trust has the hash",
          "[e2e]") {
  TempDir work;
  REQUIRE(Shell(work, "set -e; cd " + work.path() +
                          "; docker save taskenv/busybox:latest -o busybox.tar;"
                          " zstd -q busybox.tar -o busybox.tar.zst; lz4 -q busybox.tar busybox.tar.lz4;"
                          " gzip -c busybox.tar > busybox.tar.gz") == 0);
  TempDir keys;
  LocalSystem::Options options = LocalSystem::With(2, 1200, "e2e-images");
  options.worker_config = R"({"taskQueue": {"pollInterval": 200},
                              "ed25519SigningKeyLocation": ")" + testing::WriteCotSigningKey(keys) +
                          R"("})";
  LocalSystem sys(options);
  const std::string images = sys.PublishArtifacts({{"public/busybox.tar.zst", work / "busybox.tar.zst"},
                                                   {"public/busybox.tar.lz4", work / "busybox.tar.lz4"},
                                                   {"public/busybox.tar.gz", work / "busybox.tar.gz"},
                                                   {"private/busybox.tar.zst", work / "busybox.tar.zst"}});
  REQUIRE(!images.empty());
  const std::string ns = "e2e.images." + NewSlugId().substr(0, 8);
  REQUIRE(sys.IndexTask(ns, images));
  ImageCleanup cleanup{work, {}};
  for (const char* path : {"public/busybox.tar.zst", "public/busybox.tar.lz4", "public/busybox.tar.gz",
                           "private/busybox.tar.zst"}) {
    cleanup.refs.push_back(ArtifactImages::LocalName(images, path) + ":latest");
  }
  sys.StartWorker();

  const std::string cot = R"(, "features": {"chainOfTrust": true})";
  const std::string zst = sys.CreateTask(
      TaskImage(images, "public/busybox.tar.zst", "echo artifact-image-ok", cot));
  REQUIRE(sys.WaitForRun(zst, 0, 120).first == "completed");
  std::string log = sys.Artifact(zst, "public/logs/live_backing.log").value_or("");
  CHECK_THAT(log, Catch::Contains("Downloading artifact \"public/busybox.tar.zst\" from task ID: " +
                                  images + "."));
  CHECK_THAT(log, Catch::Contains("Image 'public/busybox.tar.zst' from task '" + images +
                                  "' loaded.  Using image ID sha256:"));
  CHECK_THAT(log, Catch::Contains("artifact-image-ok"));
  auto cot_doc = json::Parse(sys.Artifact(zst, "public/chain-of-trust.json").value_or(""));
  REQUIRE(cot_doc.ok());
  const json::Value* env = json::FindObject(*cot_doc, "environment");
  REQUIRE(env);
  CHECK(json::GetString(*env, "imageArtifactHash") == FileSha256(work / "busybox.tar.zst"));

  // The same artifact again: reused, not downloaded, and the hash still reported.
  const std::string again = sys.CreateTask(
      TaskImage(images, "public/busybox.tar.zst", "echo reused-ok", cot));
  REQUIRE(sys.WaitForRun(again, 0, 120).first == "completed");
  log = sys.Artifact(again, "public/logs/live_backing.log").value_or("");
  CHECK_THAT(log, Catch::Contains("reused-ok"));
  CHECK(log.find("Downloading artifact") == std::string::npos);
  auto again_cot = json::Parse(sys.Artifact(again, "public/chain-of-trust.json").value_or(""));
  REQUIRE(again_cot.ok());
  CHECK(json::GetString(*json::FindObject(*again_cot, "environment"), "imageArtifactHash") ==
        FileSha256(work / "busybox.tar.zst"));
  CHECK(BlobGets(sys.QueueLog(), images + "/0/public/busybox.tar.zst") == 1);

  // lz4 and (through the index) gzip, concurrently.
  const std::string lz4 =
      sys.CreateTask(TaskImage(images, "public/busybox.tar.lz4", "echo lz4-ok"));
  const std::string indexed = sys.CreateTask(
      R"({"image": {"type": "indexed-image", "namespace": ")" + ns +
      R"(", "path": "public/busybox.tar.gz"}, "maxRunTime": 60, "command": ["sh", "-c", "echo gzip-ok"]})");
  CHECK(sys.WaitForRun(lz4, 0, 120).first == "completed");
  CHECK(sys.WaitForRun(indexed, 0, 120).first == "completed");
  CHECK_THAT(sys.Artifact(lz4, "public/logs/live_backing.log").value_or(""),
             Catch::Contains("lz4-ok"));
  CHECK_THAT(sys.Artifact(indexed, "public/logs/live_backing.log").value_or(""),
             Catch::Contains("gzip-ok"));

  // A private path: refused without queue:get-artifact:<path>, loaded with it.
  const std::string denied =
      sys.CreateTask(TaskImage(images, "private/busybox.tar.zst", "echo never"));
  CHECK(sys.WaitForRun(denied, 0, 60).first == "failed");
  CHECK_THAT(sys.Artifact(denied, "public/logs/live_backing.log").value_or(""),
             Catch::Contains("missing scope: queue:get-artifact:private/busybox.tar.zst"));
  CHECK(BlobGets(sys.QueueLog(), images + "/0/private/busybox.tar.zst") == 0);
  const std::string allowed =
      sys.CreateTask(TaskImage(images, "private/busybox.tar.zst", "echo private-ok"), 0,
                     {"queue:get-artifact:private/busybox.tar.zst"});
  CHECK(sys.WaitForRun(allowed, 0, 120).first == "completed");

  // A namespace nobody indexed.
  const std::string unindexed = sys.CreateTask(
      R"({"image": {"type": "indexed-image", "namespace": "e2e.nothing.here", "path": "public/x.tar"},
          "maxRunTime": 60})");
  CHECK(sys.WaitForRun(unindexed, 0, 60).first == "failed");
  CHECK_THAT(sys.Artifact(unindexed, "public/logs/live_backing.log").value_or(""),
             Catch::Contains("Could not find a task associated with \"e2e.nothing.here\" namespace."));
}

TEST_CASE("e2e: two artifacts claiming the same tag both run, corrupt and stalled artifacts fail "
          "clearly",
          "[e2e]") {
  TempDir work;
  const std::string slug = NewSlugId().substr(0, 10);
  std::string lower;
  for (char c : slug) lower += std::isalnum(static_cast<unsigned char>(c)) ? std::tolower(c) : 'x';
  const std::string tag = "dwtest-same-" + lower + ":latest";
  // Two different images saved under the same repository tag, then removed from the engine.
  REQUIRE(Shell(work, "set -e; cd " + work.path() + "; for m in AAA BBB; do"
                      " docker run --name dwtest-" + lower + "-$m taskenv/busybox:latest"
                      " sh -c \"echo $m > /marker\" >/dev/null;"
                      " docker commit dwtest-" + lower + "-$m " + tag + " > $m.id;"
                      " docker rm dwtest-" + lower + "-$m >/dev/null;"
                      " docker save " + tag + " | zstd -q -c > $m.tar.zst; done;"
                      " docker rmi -f $(cat AAA.id) $(cat BBB.id) >/dev/null") == 0);
  ImageCleanup cleanup{work,
                       {testing::ReadFile(work / "AAA.id"), testing::ReadFile(work / "BBB.id")}};
  for (auto& r : cleanup.refs) r.erase(r.find_last_not_of("\n") + 1);
  REQUIRE(Shell(work, "head -c 200000 /dev/urandom > " + work.path() + "/bad.tar.zst") == 0);
  const std::string good = testing::ReadFile(work / "AAA.tar.zst");
  testing::TestHttpServer stalling([&](const testing::TestRequest&) {
    testing::TestResponse r{200, {}, good};
    r.stall_after = good.size() / 2;
    return r;
  });

  LocalSystem::Options options = LocalSystem::With(2, 1200, "e2e-images2");
  options.worker_config = R"({"taskQueue": {"pollInterval": 200},
      "dockerConfig": {"imageDownloadIdleTimeout": 1000, "maxAttempts": 2, "delayFactor": 200}})";
  LocalSystem sys(options);
  const std::string images = sys.PublishArtifacts(
      {{"public/a.tar.zst", work / "AAA.tar.zst"},
       {"public/b.tar.zst", work / "BBB.tar.zst"},
       {"public/bad.tar.zst", work / "bad.tar.zst"}},
      {{"public/stalled.tar.zst", stalling.url() + "/image.tar.zst"}});
  REQUIRE(!images.empty());
  for (const char* path : {"public/a.tar.zst", "public/b.tar.zst"}) {
    cleanup.refs.push_back(ArtifactImages::LocalName(images, path) + ":latest");
  }
  sys.StartWorker();

  const std::string a = sys.CreateTask(TaskImage(images, "public/a.tar.zst", "cat /marker"));
  const std::string b = sys.CreateTask(TaskImage(images, "public/b.tar.zst", "cat /marker"));
  CHECK(sys.WaitForRun(a, 0, 120).first == "completed");
  CHECK(sys.WaitForRun(b, 0, 120).first == "completed");
  CHECK_THAT(sys.Artifact(a, "public/logs/live_backing.log").value_or(""), Catch::Contains("AAA"));
  CHECK_THAT(sys.Artifact(b, "public/logs/live_backing.log").value_or(""), Catch::Contains("BBB"));
  // Run A again after B loaded: still A (B's claim on the tag overwrote nothing).
  const std::string a2 = sys.CreateTask(TaskImage(images, "public/a.tar.zst", "cat /marker"));
  CHECK(sys.WaitForRun(a2, 0, 120).first == "completed");
  CHECK_THAT(sys.Artifact(a2, "public/logs/live_backing.log").value_or(""), Catch::Contains("AAA"));
  CHECK(Shell(work, "docker image inspect " + tag + " >/dev/null 2>&1") != 0);

  const std::string bad = sys.CreateTask(TaskImage(images, "public/bad.tar.zst", "true"));
  CHECK(sys.WaitForRun(bad, 0, 60).first == "failed");
  const std::string bad_log = sys.Artifact(bad, "public/logs/live_backing.log").value_or("");
  CHECK_THAT(bad_log, Catch::Contains("[taskcluster:error] Pulling docker image has failed."));
  CHECK_THAT(bad_log, Catch::Contains("Error: Error loading docker image. Unsupported image file "
                                      "format."));

  auto start = std::chrono::steady_clock::now();
  const std::string stalled = sys.CreateTask(TaskImage(images, "public/stalled.tar.zst", "true"));
  CHECK(sys.WaitForRun(stalled, 0, 60).first == "failed");
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(30));
  CHECK_THAT(sys.Artifact(stalled, "public/logs/live_backing.log").value_or(""),
             Catch::Contains("the download stalled"));
  CHECK(stalling.requests().size() == 2);  // dockerConfig.maxAttempts
}

}  // namespace
}  // namespace docker_worker
