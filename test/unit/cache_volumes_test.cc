// CacheVolumes on a temp dir: hit/miss, exclusivity, most recently used first, purge, restart,
// another process's lock, removal under pressure, names.
#include "docker_worker/cache_volumes.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <filesystem>

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
  for (const char* ok : {"a", "level-3-checkouts-v2", "gecko.tooltool", ".hidden", "a:b"}) {
    INFO(ok);
    CHECK(CacheVolumes::CheckName(ok).ok());
  }
  CHECK(CacheVolumes::CheckName("a::b").message() ==
        "Invalid key name was provided.  Ensure that the cache name does not contain \"::\".");
  CHECK(CacheVolumes::CheckName("a/b").message() ==
        "Invalid cache name \"a/b\": it must not contain \"/\".");
  CHECK(CacheVolumes::CheckName("../etc").message() ==
        "Invalid cache name \"../etc\": it must not contain \"/\".");
  CHECK(CacheVolumes::CheckName("..").message() ==
        "Invalid cache name \"..\": it must not be \".\" or \"..\".");
  CHECK(CacheVolumes::CheckName("").message() ==
        "Invalid cache name \"\": it must be 1 to 200 bytes long.");
  CHECK(!CacheVolumes::CheckName(std::string(201, 'a')).ok());
  CHECK(!CacheVolumes::CheckName("a\nb").ok());
  CHECK(CacheVolumes::CheckMountPoint("c", "/cache").ok());
  for (const char* bad : {"", "/", "cache", "/c:ro", "/a\tb"}) {
    INFO(bad);
    CHECK_FALSE(CacheVolumes::CheckMountPoint("c", bad).ok());
  }
  Harness h;
  CHECK(h.caches.Acquire("a/../../escape").status().message() ==
        "Invalid cache name \"a/../../escape\": it must not contain \"/\".");
  CHECK_FALSE(std::filesystem::exists(h.dir / "escape"));
}

}  // namespace
}  // namespace docker_worker
