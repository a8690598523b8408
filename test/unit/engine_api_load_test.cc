// EngineApi::LoadImage against a one-shot HTTP server on a unix socket standing in for the
// engine: the request it makes and how it reads the answer. (The real engine:
// test/e2e/image_artifact_test.cc.)
#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <thread>

#include "docker_worker/engine_api.h"
#include "fakes/temp_dir.h"

namespace docker_worker {
namespace {

using testing::TempDir;

// Accepts one connection on `path`, reads one chunked request, answers `body` (200, then close).
class OneShotEngine {
 public:
  OneShotEngine(const std::string& path, std::string body) : body_(std::move(body)) {
    listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listener_, 1) == 0);
    thread_ = std::thread([this] { Serve(); });
  }
  ~OneShotEngine() {
    thread_.join();
    ::close(listener_);
  }
  // What was received, headers and body (valid after the call returned).
  const std::string& request() const { return request_; }

 private:
  void Serve() {
    pollfd p{listener_, POLLIN, 0};
    if (::poll(&p, 1, 10000) != 1) return;
    int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;
    char buf[4096];
    while (true) {
      size_t head_end = request_.find("\r\n\r\n");
      if (head_end != std::string::npos && request_.size() >= head_end + 9 &&
          request_.compare(request_.size() - 5, 5, "0\r\n\r\n") == 0) {
        break;  // the last chunk of a chunked body
      }
      pollfd q{fd, POLLIN, 0};
      if (::poll(&q, 1, 10000) != 1) break;
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;
      request_.append(buf, static_cast<size_t>(n));
    }
    std::string answer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         "Connection: close\r\nContent-Length: " +
                         std::to_string(body_.size()) + "\r\n\r\n" + body_;
    (void)!::write(fd, answer.data(), answer.size());
    ::close(fd);
  }

  std::string body_;
  int listener_ = -1;
  std::thread thread_;
  std::string request_;
};

ByteSource SourceOf(const std::string& bytes) {
  auto offset = std::make_shared<size_t>(0);
  return [&bytes, offset](char* buf, size_t max) -> Result<size_t> {
    size_t n = std::min(max, bytes.size() - *offset);
    std::copy_n(bytes.data() + *offset, n, buf);
    *offset += n;
    return n;
  };
}

TEST_CASE("engine api: an image load asks for progress, so a long layer registration is not silent",
          "[unit]") {
  TempDir dir;
  const std::string archive(3000, 'T');
  std::string answer;
  Code expected = Code::kOk;
  SECTION("progress lines then the result") {
    answer =
        R"({"status":"Loading layer","progressDetail":{"current":32768,"total":65536},)"
        R"("progress":"[=====>     ]","id":"8d3ac3489996"})"
        "\n"
        R"({"stream":"Loaded image: 0123abcd:latest\n"})"
        "\n";
  }
  SECTION("an error line after progress is the load's error") {
    answer =
        R"({"status":"Loading layer","progressDetail":{"current":1,"total":2},"id":"x"})"
        "\n"
        R"({"errorDetail":{"message":"invalid tar header"},"error":"invalid tar header"})"
        "\n";
    expected = Code::kInternal;
  }
  Status s;
  std::string request;
  {
    OneShotEngine engine(dir / "docker.sock", answer);
    EngineApi api(dir / "docker.sock");
    s = api.LoadImage(SourceOf(archive), {});
    request = engine.request();
  }
  INFO(request.substr(0, request.find("\r\n\r\n")));
  CHECK_THAT(request, Catch::StartsWith("POST ") && Catch::Contains("/images/load?quiet=0 "));
  CHECK(request.find(archive) != std::string::npos);
  CHECK(s.code() == expected);
  if (expected != Code::kOk) CHECK(s.message() == "invalid tar header");
}

}  // namespace
}  // namespace docker_worker
