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
using testing::TarEntry;
using testing::TarFiles;
using testing::TarOf;

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

TEST_CASE("image archive: a manifest.json or index.json nested 200000 deep is refused", "[unit]") {
  // Serialising it would recurse 200000 deep and overflow the transform thread's stack.
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  SECTION("manifest.json") {
    auto out = Retag(TarOf({{'f', "manifest.json", deep}}), "a:latest");
    REQUIRE_FALSE(out.ok());
    CHECK(out.status().code() == Code::kInvalidArgument);
    CHECK_THAT(out.status().message(), Catch::Contains("manifest.json") &&
                                           Catch::Contains("nests deeper than 100"));
  }
  SECTION("index.json") {
    auto out = Retag(TarOf({{'f', "index.json", R"({"manifests":)" + deep + "}"}}), "a:latest");
    REQUIRE_FALSE(out.ok());
    CHECK_THAT(out.status().message(), Catch::Contains("index.json") &&
                                           Catch::Contains("nests deeper than 100"));
  }
}

TEST_CASE("image archive: entries Docker would read as untouched metadata are refused", "[unit]") {
  // Each archive has a manifest.json we rewrite, and a second way for Docker's loader (which
  // cleans paths and follows symlinks) to find metadata claiming someone else's image name.
  const std::string id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  const std::string victim = R"([{"Config":")" + id + R"(.json","RepoTags":["victim:latest"]}])";
  std::vector<TarEntry> entries = {{'f', id + ".json", "{}"},
                                   {'f', "manifest.json", R"([{"Config":")" + id + R"(.json"}])"}};
  std::string expected;
  SECTION("absolute name") {
    entries.push_back({'f', "/manifest.json", victim});
    expected = "non-canonical name \"/manifest.json\"";
  }
  SECTION("empty segment after ./") {
    entries.push_back({'f', ".//manifest.json", victim});
    expected = "non-canonical name";
  }
  SECTION("empty segment inside") {
    entries.push_back({'f', "x//y", "z"});
    expected = "non-canonical name";
  }
  SECTION("dot-dot segment") {
    entries.push_back({'d', "x/", ""});
    entries.push_back({'f', "x/../manifest.json", victim});
    expected = "non-canonical name";
  }
  SECTION("dot segment") {
    entries.push_back({'f', "x/./manifest.json", victim});
    expected = "non-canonical name";
  }
  SECTION("symlink named manifest.json") {
    entries = {{'f', "evil.json", victim}, {'l', "manifest.json", "evil.json"}};
    expected = "manifest.json is a link";
  }
  SECTION("symlink named ./index.json") {
    entries.push_back({'l', "./index.json", "evil.json"});
    expected = "index.json is a link";
  }
  SECTION("symlink named repositories") {
    entries.push_back({'l', "repositories", "evil"});
    expected = "repositories is a link";
  }
  SECTION("hardlink named manifest.json") {
    entries = {{'f', "evil.json", victim}, {'h', "manifest.json", "evil.json"}};
    expected = "manifest.json is a link";
  }
  SECTION("a file under a symlinked directory") {
    entries.push_back({'l', "d", "."});
    entries.push_back({'f', "d/manifest.json", victim});
    expected = "under a symbolic link";
  }
  SECTION("a file deeper under a symlinked directory") {
    entries.push_back({'d', "a/", ""});
    entries.push_back({'l', "./a/b", "../.."});
    entries.push_back({'d', "a/b/c/", ""});
    expected = "under a symbolic link";
  }
  auto out = Retag(TarOf(entries), "mine:latest");
  REQUIRE_FALSE(out.ok());
  CHECK(out.status().code() == Code::kInvalidArgument);
  CHECK_THAT(out.status().message(), Catch::Contains(expected));
}

TEST_CASE("image archive: symlinked files and a leading ./ stay allowed", "[unit]") {
  // Old docker save output links identical layers: <id>/layer.tar -> ../<other>/layer.tar.
  const std::string id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  const std::string other = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
  auto out = Retag(TarOf({{'d', "./", ""},
                          {'d', "./" + other + "/", ""},
                          {'f', "./" + other + "/layer.tar", "L"},
                          {'d', "./" + id + "/", ""},
                          {'l', "./" + id + "/layer.tar", "../" + other + "/layer.tar"},
                          {'f', "./" + id + ".json", "{}"},
                          {'f', "./manifest.json", R"([{"Config":")" + id +
                                                       R"(.json","RepoTags":["x:y"]}])"}}),
                   "mine:latest");
  REQUIRE(out.ok());
  auto manifest = json::Parse(TarFiles(*out)["./manifest.json"]);
  REQUIRE(manifest.ok());
  CHECK(json::Serialize((*manifest)[0]["RepoTags"]) == R"(["mine:latest"])");
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
