// RetagImageArchive: recognises the compression by content, rewrites the tags, streams.
#include <catch2/catch.hpp>

#include <algorithm>
#include <memory>
#include <thread>

#include "docker_worker/byte_pipe.h"
#include "docker_worker/image_archive.h"
#include "docker_worker/json.h"
#include "docker_worker/tar_builder.h"
#include "support/image_tars.h"

namespace docker_worker {
namespace {

using testing::Compress;
using testing::FakeDockerSave;
using testing::TarFiles;

// A source over `bytes` handing out at most `chunk` bytes per call.
ByteSource SourceOf(const std::string& bytes, size_t chunk = 1000) {
  auto offset = std::make_shared<size_t>(0);
  return [&bytes, offset, chunk](char* buf, size_t max) -> Result<size_t> {
    size_t n = std::min({max, chunk, bytes.size() - *offset});
    std::copy_n(bytes.data() + *offset, n, buf);
    *offset += n;
    return n;
  };
}

Result<std::string> Retag(const std::string& input, const std::string& repo_tag) {
  std::string out;
  Status s = RetagImageArchive(SourceOf(input), [&](std::string_view b) {
    out.append(b);
    return Status::Ok();
  }, repo_tag);
  if (!s.ok()) return s;
  return out;
}

TEST_CASE("image archive: any of plain, gzip, lz4, zstd is retagged by content", "[unit]") {
  std::string filter = GENERATE(std::string(""), std::string("gzip"), std::string("lz4"),
                                std::string("zstd"));
  const std::string layer(300000, 'L');
  std::string input = Compress(FakeDockerSave("busybox:latest", layer), filter);
  auto out = Retag(input, "d41d8cd98f00b204e9800998ecf8427e:latest");
  REQUIRE(out.ok());
  auto files = TarFiles(*out);
  // The layer passes through byte for byte; the legacy repositories file is dropped.
  std::string id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  CHECK(files[id + "/layer.tar"] == layer);
  CHECK(files.count("repositories") == 0);
  auto manifest = json::Parse(files["manifest.json"]);
  REQUIRE(manifest.ok());
  CHECK(json::Serialize((*manifest)[0]["RepoTags"]) ==
        R"(["d41d8cd98f00b204e9800998ecf8427e:latest"])");
  CHECK(json::GetString((*manifest)[0], "Config") == id + ".json");
}

TEST_CASE("image archive: a v1.0 archive (repositories only) is renamed", "[unit]") {
  auto out = Retag(Compress(FakeDockerSave("team/app:v1", "x", false), "zstd"), "abc:latest");
  REQUIRE(out.ok());
  auto files = TarFiles(*out);
  CHECK(files["repositories"] ==
        R"({"abc":{"latest":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}})");
  CHECK(files.count("manifest.json") == 0);
}

TEST_CASE("image archive: bad archives fail with a clear message", "[unit]") {
  SECTION("not an archive") {
    auto out = Retag(std::string(5000, '\x42'), "a:latest");
    REQUIRE_FALSE(out.ok());
    CHECK(out.status().code() == Code::kInvalidArgument);
    CHECK_THAT(out.status().message(), Catch::StartsWith("Unsupported image file format."));
  }
  SECTION("a tar that is no docker image") {
    TarBuilder tar;
    tar.AddFile("hello.txt", "hi");
    auto out = Retag(*tar.Finish(), "a:latest");
    REQUIRE_FALSE(out.ok());
    CHECK(out.status().message() == "Unknown docker archive format");
  }
  SECTION("two images") {
    TarBuilder tar;
    tar.AddFile("manifest.json", R"([{"Config":"a.json"},{"Config":"b.json"}])");
    auto out = Retag(*tar.Finish(), "a:latest");
    REQUIRE_FALSE(out.ok());
    CHECK_THAT(out.status().message(), Catch::Contains("only contain one image"));
  }
  SECTION("truncated zstd") {
    std::string input = Compress(FakeDockerSave("a:b", std::string(200000, 'z')), "zstd");
    input.resize(input.size() / 2);
    auto out = Retag(input, "a:latest");
    REQUIRE_FALSE(out.ok());
    CHECK(out.status().code() == Code::kInvalidArgument);
  }
}

TEST_CASE("image archive: errors of the source and the sink come back unchanged", "[unit]") {
  std::string input = FakeDockerSave("a:b", std::string(100000, 'q'));
  size_t served = 0;
  Status s = RetagImageArchive(
      [&](char* buf, size_t max) -> Result<size_t> {
        if (served > 20000) return Status(Code::kDeadlineExceeded, "download stalled");
        size_t n = std::min<size_t>(max, 4096);
        std::copy_n(input.data() + served, n, buf);
        served += n;
        return n;
      },
      [](std::string_view) { return Status::Ok(); }, "x:latest");
  CHECK(s.code() == Code::kDeadlineExceeded);
  CHECK(s.message() == "download stalled");

  s = RetagImageArchive(SourceOf(input), [](std::string_view) {
    return Status(Code::kUnavailable, "engine went away");
  }, "x:latest");
  CHECK(s.message() == "engine went away");
}

TEST_CASE("byte pipe: hands bytes across threads in order and reports both ends' closes",
          "[unit]") {
  BytePipe pipe(64);
  std::string data;
  for (int i = 0; i < 10000; ++i) data += static_cast<char>('a' + i % 26);
  std::thread writer([&] {
    for (size_t i = 0; i < data.size(); i += 100) {
      REQUIRE(pipe.Write(std::string_view(data).substr(i, 100)).ok());
    }
    pipe.CloseWrite();
  });
  std::string got;
  char buf[37];
  while (true) {
    auto n = pipe.Read(buf, sizeof buf);
    REQUIRE(n.ok());
    if (*n == 0) break;
    got.append(buf, *n);
  }
  writer.join();
  CHECK(got == data);

  BytePipe failed;
  failed.CloseWrite(Status(Code::kUnavailable, "boom"));
  CHECK(failed.Read(buf, sizeof buf).status().message() == "boom");

  BytePipe abandoned(8);
  abandoned.CloseRead();
  CHECK(BytePipe::IsDownstreamClosed(abandoned.Write("0123456789abcdef")));
}

}  // namespace
}  // namespace docker_worker
