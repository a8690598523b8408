// CacheVolumes on a temp dir: hit/miss, exclusivity, most recently used first, purge, restart,
// another process's lock, removal under pressure, names, foreign entries under the root,
// deletion outside the table's lock, leases kept until the process ends.
#include "docker_worker/cache_volumes.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <future>
#include <set>
#include <thread>

#include "fakes/manual_clock.h"
#include "fakes/temp_dir.h"

namespace docker_worker {
namespace {

using testing::ManualClock;
using testing::ReadFile;
using testing::TempDir;
using testing::WriteFile;

struct Harness {
  TempDir dir;
  ManualClock clock;
  WorkerLog log{nullptr};
  CacheVolumes caches{dir / "root", clock, log};

  CacheLease Acquire(const std::string& name) {
    auto lease = caches.Acquire(name);
    REQUIRE(lease.ok());
    return std::move(*lease);
  }
};

TEST_CASE("caches: a released instance is reused, a held one is never handed out twice",
          "[unit]") {
  Harness h;
  CacheLease a = h.Acquire("build");
  CHECK_FALSE(a.hit());
  CHECK(a.path().rfind(h.dir / "root/build/", 0) == 0);
  CHECK(std::filesystem::is_directory(a.path()));
  WriteFile(a.path() + "/file", "from a");
  CacheLease b = h.Acquire("build");  // a is held: a fresh instance
  CHECK_FALSE(b.hit());
  CHECK(b.path() != a.path());
  const std::string a_path = a.path();
  a.Release();
  CacheLease c = h.Acquire("build");
  CHECK(c.hit());
  CHECK(c.path() == a_path);
  CHECK(ReadFile(c.path() + "/file") == "from a");
  CacheLease other = h.Acquire("other");  // names never share instances
  CHECK_FALSE(other.hit());
}

TEST_CASE("caches: the most recently used unmounted instance is taken", "[unit]") {
  Harness h;
  CacheLease a = h.Acquire("c");
  CacheLease b = h.Acquire("c");
  const std::string a_path = a.path(), b_path = b.path();
  b.Release();
  h.clock.Advance(std::chrono::minutes(1));
  a.Release();  // a is the latest
  CacheLease first = h.Acquire("c");
  CHECK(first.path() == a_path);
  CacheLease second = h.Acquire("c");
  CHECK(second.path() == b_path);
  CHECK(second.hit());
}

TEST_CASE("caches: a purged instance is deleted when released", "[unit]") {
  Harness h;
  CacheLease a = h.Acquire("c");
  const std::string path = a.path();
  WriteFile(path + "/junk", "x");
  a.PurgeOnRelease();
  CHECK(std::filesystem::exists(path));  // not while mounted
  a.Release();
  CHECK_FALSE(std::filesystem::exists(path));
  CHECK(h.caches.List().empty());
  CHECK_FALSE(h.Acquire("c").hit());
}

TEST_CASE("caches: instances outlive the process that made them (worker restart)", "[unit]") {
  Harness h;
  std::string path;
  {
    CacheLease a = h.Acquire("c");
    path = a.path();
  }  // destruction releases
  CacheVolumes restarted(h.dir / "root", h.clock, h.log);
  auto again = restarted.Acquire("c");
  REQUIRE(again.ok());
  CHECK(again->hit());
  CHECK(again->path() == path);
}

TEST_CASE("caches: an instance locked by another process is neither reused nor removed",
          "[unit]") {
  Harness h;
  std::string path;
  {
    CacheLease a = h.Acquire("c");
    path = a.path();
  }
  // Another process holds it: its own open file description of the lock file.
  int fd = ::open((path + ".lock").c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  REQUIRE(::flock(fd, LOCK_EX | LOCK_NB) == 0);
  auto list = h.caches.List();
  REQUIRE(list.size() == 1);
  CHECK(list[0].mounted);
  CHECK(h.caches.RemoveUnmounted() == 0);
  CHECK(std::filesystem::exists(path));
  CacheLease b = h.Acquire("c");
  CHECK_FALSE(b.hit());
  CHECK(b.path() != path);
  ::close(fd);  // the other process ends: the instance is free again
  b.Release();
  CHECK(h.caches.RemoveUnmounted() == 2);
  CHECK(h.caches.List().empty());
}

TEST_CASE("caches: RemoveUnmounted deletes only instances nobody holds", "[unit]") {
  Harness h;
  CacheLease held = h.Acquire("c");
  std::string free_path;
  {
    CacheLease a = h.Acquire("c");
    CacheLease b = h.Acquire("d");
    free_path = a.path();
  }
  CHECK(h.caches.RemoveUnmounted() == 2);
  CHECK_FALSE(std::filesystem::exists(free_path));
  CHECK(std::filesystem::exists(held.path()));
  auto list = h.caches.List();
  REQUIRE(list.size() == 1);
  CHECK(list[0].path == held.path());
  CHECK(list[0].mounted);
}

TEST_CASE("caches: hits and misses go to the worker log", "[unit]") {
  TempDir dir;
  ManualClock clock;
  FILE* out = std::fopen((dir / "worker.log").c_str(), "w");
  REQUIRE(out);
  {
    WorkerLog log(out);
    CacheVolumes caches(dir / "root", clock, log);
    { auto a = caches.Acquire("c"); }
    auto b = caches.Acquire("c");
    REQUIRE(b.ok());
  }
  std::fclose(out);
  std::string text = ReadFile(dir / "worker.log");
  CHECK(text.find(R"("type":"cache volume miss","cache":"c")") != std::string::npos);
  CHECK(text.find(R"("type":"cache volume hit","cache":"c")") != std::string::npos);
}

TEST_CASE("caches: names", "[unit]") {
  for (const char* ok : {"a", "level-3-checkouts-v2", "gecko.tooltool", ".hidden"}) {
    INFO(ok);
    CHECK(CacheVolumes::CheckName(ok).ok());
  }
  CHECK(CacheVolumes::CheckName("a::b").message() ==
        "Invalid key name was provided.  Ensure that the cache name does not contain \"::\".");
  CHECK(CacheVolumes::CheckName("a/b").message() ==
        "Invalid cache name \"a/b\": it must not contain \"/\".");
  CHECK(CacheVolumes::CheckName("../etc").message() ==
        "Invalid cache name \"../etc\": it must not contain \"/\".");
  CHECK(CacheVolumes::CheckName("a:b").message() ==
        "Invalid cache name \"a:b\": it must not contain \":\".");
  CHECK(CacheVolumes::CheckName(":").message() ==
        "Invalid cache name \":\": it must not contain \":\".");
  CHECK(CacheVolumes::CheckName("..").message() ==
        "Invalid cache name \"..\": it must not be \".\" or \"..\".");
  CHECK(CacheVolumes::CheckName("").message() ==
        "Invalid cache name \"\": it must be 1 to 200 bytes long.");
  CHECK(!CacheVolumes::CheckName(std::string(201, 'a')).ok());
  CHECK(!CacheVolumes::CheckName("a\nb").ok());
  CHECK(CacheVolumes::CheckMountPoint("c", "/cache").ok());
  for (const char* bad : {"", "/", "cache", "/c:ro", "/a:b", "/a\tb"}) {
    INFO(bad);
    CHECK_FALSE(CacheVolumes::CheckMountPoint("c", bad).ok());
  }
  Harness h;
  CHECK(h.caches.Acquire("a/../../escape").status().message() ==
        "Invalid cache name \"a/../../escape\": it must not contain \"/\".");
  CHECK_FALSE(std::filesystem::exists(h.dir / "escape"));
  CHECK(h.caches.Acquire("a:b").status().message() ==
        "Invalid cache name \"a:b\": it must not contain \":\".");
  CHECK_FALSE(std::filesystem::exists(h.dir / "root/a:b"));
}

// Every path under `root`, relative to it.
std::set<std::string> Tree(const std::string& root) {
  std::set<std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
    out.insert(std::filesystem::relative(e.path(), root).string());
  }
  return out;
}

TEST_CASE("caches: what is not an instance is never listed, locked or deleted", "[unit]") {
  Harness h;
  namespace fs = std::filesystem;
  const std::string root = h.dir / "root";
  // The root shared with other things (cache.volumeCachePath=/mnt, Docker's data root there).
  fs::create_directories(root + "/docker/overlay2/l");
  WriteFile(root + "/docker/overlay2/l/layer", "precious");
  fs::create_directories(root + "/lost+found");
  WriteFile(root + "/notes", "x");
  // Inside a cache's own directory: foreign entries, and look-alikes without a lock file.
  const std::string uuid = "0f8fad5b-d9cb-469f-a165-70867728950e";
  const std::string uuid2 = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
  fs::create_directories(root + "/c/foreign/sub");
  fs::create_directories(root + "/c/" + uuid + "/data");  // a v4 UUID but no lock file
  fs::create_directories(root + "/c/" + uuid2);
  fs::create_directories(root + "/c/" + uuid2 + ".lock");  // not a regular file
  fs::create_directories(root + "/c/.trash-foreign");      // not this code's trash name
  fs::create_directories(root + "/c/0F8FAD5B-D9CB-469F-A165-70867728950E");  // upper case
  WriteFile(root + "/c/readme", "x");
  const std::set<std::string> before = Tree(root);

  CHECK(h.caches.List().empty());
  std::string instance;
  {
    CacheLease a = h.Acquire("c");
    CHECK_FALSE(a.hit());
    instance = a.path();
    CacheLease d = h.Acquire("docker");  // a cache named like the foreign directory
    CHECK_FALSE(d.hit());
  }
  CHECK(h.caches.List().size() == 2);
  CHECK(h.Acquire("c").path() == instance);  // the real instance, not a look-alike
  CHECK(h.caches.RemoveUnmounted() == 2);
  CHECK(h.caches.List().empty());
  CHECK(Tree(root) == before);  // no .lock file was created next to anything foreign
  CHECK(ReadFile(root + "/docker/overlay2/l/layer") == "precious");
}

TEST_CASE("caches: an interrupted removal's trash is deleted, and only it", "[unit]") {
  Harness h;
  namespace fs = std::filesystem;
  const std::string root = h.dir / "root";
  { CacheLease a = h.Acquire("c"); }
  const std::string trash = root + "/c/.trash-0f8fad5b-d9cb-469f-a165-70867728950e-" +
                            "7c9e6679-7425-40de-944b-e07fc1f90ae7";
  fs::create_directories(trash + "/left");
  const std::string lookalike = root + "/c/.trash-0f8fad5b-d9cb-469f-a165-70867728950e-x";
  fs::create_directories(lookalike);
  CHECK(h.caches.RemoveUnmounted() == 1);
  CHECK_FALSE(fs::exists(trash));
  CHECK(fs::exists(lookalike));
  CHECK(Tree(root) == std::set<std::string>{"c", "c/" + fs::path(lookalike).filename().string()});
}

TEST_CASE("caches: deleting instances never blocks Acquire", "[unit]") {
  TempDir dir;
  ManualClock clock;
  WorkerLog log(nullptr);
  std::promise<void> deleting, may_finish;
  auto may_finish_future = may_finish.get_future().share();
  std::atomic<bool> first = true;
  CacheVolumes caches(dir / "root", clock, log, [&](const std::string& path) {
    if (first.exchange(false)) {
      deleting.set_value();
      may_finish_future.wait_for(std::chrono::seconds(10));  // a huge tree
    }
    std::filesystem::remove_all(path);
  });
  std::string old_path;
  {
    auto a = caches.Acquire("c");
    REQUIRE(a.ok());
    old_path = a->path();
  }
  int removed = -1;
  std::thread sweeper([&] { removed = caches.RemoveUnmounted(); });
  deleting.get_future().wait();
  // While the tree is being deleted, the table is free: Acquire, List and a purge proceed.
  auto acquired = std::async(std::launch::async, [&] {
    auto b = caches.Acquire("c");
    bool miss = b.ok() && !b->hit() && b->path() != old_path;
    bool listed = caches.List().size() == 1;
    if (b.ok()) b->PurgeOnRelease();
    return miss && listed;
  });
  bool in_time = acquired.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
  may_finish.set_value();
  sweeper.join();
  REQUIRE(in_time);
  CHECK(acquired.get());
  CHECK(removed == 1);
  CHECK_FALSE(std::filesystem::exists(old_path));
  CHECK(caches.List().empty());
  CHECK(Tree(dir / "root") == std::set<std::string>{"c"});
}

TEST_CASE("caches: HoldUntilExit keeps the instance mounted after the lease is gone", "[unit]") {
  Harness h;
  std::string path;
  {
    CacheLease a = h.Acquire("c");
    path = a.path();
    a.PurgeOnRelease();
    a.HoldUntilExit();
    CHECK_FALSE(a.held());
  }
  CHECK(std::filesystem::exists(path));
  auto list = h.caches.List();
  REQUIRE(list.size() == 1);
  CHECK(list[0].mounted);
  CHECK(h.caches.RemoveUnmounted() == 0);
  CHECK_FALSE(h.Acquire("c").hit());
}

}  // namespace
}  // namespace docker_worker
