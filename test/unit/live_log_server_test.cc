// LiveLogServer over real sockets on 127.0.0.1: libcurl readers (which also check the chunked
// framing: a response cut before its final chunk is an error) and raw sockets for stalled,
// vanishing and malformed clients. Waits are bounded waits on conditions, never sleeps.
#include "docker_worker/live_log_server.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "docker_worker/clock.h"
#include "docker_worker/task_log.h"
#include "fakes/temp_dir.h"

namespace docker_worker {
namespace {

using namespace std::chrono_literals;
using testing::ReadFile;
using testing::TempDir;
using Clock = std::chrono::steady_clock;

void InitCurlOnce() {
  static const bool done = [] { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; }();
  REQUIRE(done);
}

// One HTTP request with libcurl on its own thread. The test can wait for the response header
// (the server has then registered the reader) and for the end of the transfer. The destructor
// aborts a transfer still running.
class CurlReader {
 public:
  explicit CurlReader(std::string url, std::string method = "GET")
      : url_(std::move(url)), method_(std::move(method)) {
    InitCurlOnce();
    thread_ = std::thread([this] { Run(); });
  }
  ~CurlReader() {
    cancel_ = true;
    thread_.join();
  }

  bool WaitHeaders(std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return headers_done_ || done_; });
  }
  bool WaitBody(size_t size, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return body_.size() >= size || done_; });
  }
  bool WaitDone(std::chrono::milliseconds timeout = 60s) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return done_; });
  }
  CURLcode code() {
    std::lock_guard lock(mu_);
    return code_;
  }
  long status() {
    std::lock_guard lock(mu_);
    return status_;
  }
  std::string body() {
    std::lock_guard lock(mu_);
    return body_;
  }
  std::string headers() {
    std::lock_guard lock(mu_);
    return headers_;
  }

 private:
  static size_t OnHeader(char* data, size_t size, size_t n, void* self_ptr) {
    auto* self = static_cast<CurlReader*>(self_ptr);
    std::string_view line(data, size * n);
    std::lock_guard lock(self->mu_);
    self->headers_.append(line);
    if (line == "\r\n" && self->headers_.find(" 100 ") == std::string::npos) {
      self->headers_done_ = true;
      self->cv_.notify_all();
    }
    return size * n;
  }
  static size_t OnBody(char* data, size_t size, size_t n, void* self_ptr) {
    auto* self = static_cast<CurlReader*>(self_ptr);
    std::lock_guard lock(self->mu_);
    self->body_.append(data, size * n);
    self->cv_.notify_all();
    return size * n;
  }
  static int OnProgress(void* self_ptr, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    return static_cast<CurlReader*>(self_ptr)->cancel_ ? 1 : 0;
  }

  void Run() {
    CURL* curl = curl_easy_init();
    curl_easy_setopt(curl, CURLOPT_URL, url_.c_str());
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method_.c_str());
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &CurlReader::OnHeader);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, this);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &CurlReader::OnBody);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, this);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &CurlReader::OnProgress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, this);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 120L);
    CURLcode code = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(curl);
    std::lock_guard lock(mu_);
    code_ = code;
    status_ = status;
    done_ = true;
    cv_.notify_all();
  }

  const std::string url_;
  const std::string method_;
  std::atomic<bool> cancel_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool headers_done_ = false;
  bool done_ = false;
  CURLcode code_ = CURLE_OK;
  long status_ = 0;
  std::string headers_;
  std::string body_;
  std::thread thread_;
};

struct Fetched {
  CURLcode code;
  long status;
  std::string headers;
  std::string body;
};

Fetched Fetch(const std::string& url, const std::string& method = "GET") {
  CurlReader reader(url, method);
  REQUIRE(reader.WaitDone(30s));
  return {reader.code(), reader.status(), reader.headers(), reader.body()};
}

// A client on a plain socket: it sends what it is told and reads only when asked.
class RawClient {
 public:
  // `receive_buffer` > 0 shrinks SO_RCVBUF (before connecting, so the window stays small).
  RawClient(int port, int receive_buffer = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    if (receive_buffer > 0) {
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~RawClient() { Close(); }

  void Send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      REQUIRE(n > 0);
      data.remove_prefix(static_cast<size_t>(n));
    }
  }
  // Everything until the server closes the connection (or `timeout` passes).
  std::string ReadToEnd(std::chrono::milliseconds timeout = 10s) {
    std::string out;
    auto deadline = Clock::now() + timeout;
    char buf[4096];
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// A task's log as TaskRun builds it: the backing file first, then the live log sink.
struct TaskLogFixture {
  SystemClock clock;
  TempDir dir;
  std::string path = dir / "live_backing.log";
  TaskLog log{clock};
  std::shared_ptr<LiveLog> live;

  explicit TaskLogFixture(LiveLogServer& server) {
    auto file = FileLogSink::Create(path);
    REQUIRE(file.ok());
    log.AddSink(std::shared_ptr<LogSink>(std::move(*file)));
    live = server.Open(path);
    log.AddSink(live->sink());
  }
};

std::unique_ptr<LiveLogServer> StartServer(LiveLogServer::Options options = {}) {
  auto server = LiveLogServer::Start(options);
  REQUIRE(server.ok());
  return std::move(*server);
}

// Deterministic text of `size` bytes, varied enough that a misplaced byte shows.
std::string Pattern(size_t size, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(size, '\0');
  for (auto& c : s) c = static_cast<char>('a' + rng() % 26);
  for (size_t i = 79; i < s.size(); i += 80) s[i] = '\n';
  return s;
}

// Writes `text` through `log` in pieces of 1..max_piece bytes.
void WriteInPieces(TaskLog& log, std::string_view text, size_t max_piece, uint32_t seed) {
  std::mt19937 rng(seed);
  while (!text.empty()) {
    size_t n = std::min(text.size(), 1 + rng() % max_piece);
    log.Write(text.substr(0, n));
    text.remove_prefix(n);
  }
}

bool HasHeader(const std::string& headers, const std::string& line) {
  return headers.find(line + "\r\n") != std::string::npos;
}

TEST_CASE("live log: tokens are long, URL-safe, distinct and make the URL", "[unit]") {
  auto server = StartServer();
  REQUIRE(server->port() > 0);
  TempDir dir;
  auto a = server->Open(dir / "a.log");
  auto b = server->Open(dir / "b.log");
  CHECK(a->token() != b->token());
  for (const auto& log : {a, b}) {
    CHECK(log->token().size() >= 22);
    for (char c : log->token()) {
      CHECK((std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'));
    }
    CHECK(log->url() == server->UrlFor(log->token()));
    CHECK(log->url() ==
          "http://127.0.0.1:" + std::to_string(server->port()) + "/log/" + log->token());
  }

  LiveLogServer::Options options;
  options.public_hostname = "worker.example.com";
  auto named = StartServer(options);
  CHECK(named->UrlFor("t") ==
        "http://worker.example.com:" + std::to_string(named->port()) + "/log/t");
}

TEST_CASE("live log: Start rejects a port in use and bad options", "[unit]") {
  auto first = StartServer();
  LiveLogServer::Options options;
  options.port = static_cast<uint16_t>(first->port());
  auto second = LiveLogServer::Start(options);
  REQUIRE_FALSE(second.ok());
  CHECK(second.status().code() == Code::kUnavailable);

  LiveLogServer::Options bad;
  bad.max_readers = 0;
  auto third = LiveLogServer::Start(bad);
  REQUIRE_FALSE(third.ok());
  CHECK(third.status().code() == Code::kInvalidArgument);
}

TEST_CASE("live log: a reader that connects before any write gets every byte, then the end",
          "[unit]") {
  auto server = StartServer();
  TaskLogFixture task(*server);
  CurlReader reader(task.live->url());
  REQUIRE(reader.WaitHeaders());
  CHECK(task.live->readers() == 1);
  CHECK(server->readers() == 1);

  std::string headers = reader.headers();
  CHECK(headers.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(HasHeader(headers, "Content-Type: text/plain; charset=utf-8"));
  CHECK(HasHeader(headers, "Transfer-Encoding: chunked"));
  CHECK(HasHeader(headers, "Access-Control-Allow-Origin: *"));
  CHECK(HasHeader(headers, "X-Streaming: true"));

  std::string expected;
  for (int i = 0; i < 200; ++i) {
    std::string line = "line " + std::to_string(i) + "\n";
    task.log.Write(line);
    expected += line;
  }
  task.log.Info("done");
  task.log.Close();

  REQUIRE(reader.WaitDone());
  CHECK(reader.code() == CURLE_OK);
  CHECK(reader.status() == 200);
  std::string file = ReadFile(task.path);
  CHECK(file.rfind(expected, 0) == 0);
  CHECK(reader.body() == file);
  CHECK(task.live->WaitForReaders(0, 10s));
}

TEST_CASE("live log: lines written before the live log was added are served too", "[unit]") {
  // As in a task run: the header lines go to the backing file before the feature links the live
  // log. A reader during the run must still get the file from its first byte to its end.
  auto server = StartServer();
  SystemClock clock;
  TempDir dir;
  const std::string path = dir / "live_backing.log";
  TaskLog log(clock);
  auto file = FileLogSink::Create(path);
  REQUIRE(file.ok());
  log.AddSink(std::shared_ptr<LogSink>(std::move(*file)));
  const std::string header = Pattern(5000, 3);  // longer than what follows
  log.Write(header);
  auto live = server->Open(path);
  log.AddSink(live->sink());
  CurlReader reader(live->url());
  REQUIRE(reader.WaitHeaders());
  log.Write("after the link\n");
  log.Close();
  REQUIRE(reader.WaitDone());
  CHECK(reader.code() == CURLE_OK);
  CHECK(reader.body() == header + "after the link\n");
}

TEST_CASE("live log: a reader that connects after the end gets the whole file", "[unit]") {
  auto server = StartServer();
  TaskLogFixture task(*server);
  std::string text = Pattern(300'000, 1);
  WriteInPieces(task.log, text, 5000, 2);
  task.log.Close();

  Fetched got = Fetch(task.live->url());
  CHECK(got.code == CURLE_OK);
  CHECK(got.status == 200);
  CHECK(got.body.size() == text.size());
  CHECK(got.body == text);
}

TEST_CASE("live log: an empty finished log is an empty 200", "[unit]") {
  auto server = StartServer();
  TaskLogFixture task(*server);
  task.log.Close();
  Fetched got = Fetch(task.live->url());
  CHECK(got.code == CURLE_OK);
  CHECK(got.status == 200);
  CHECK(got.body.empty());
}

TEST_CASE("live log: a reader that connects mid-way gets everything from the first byte",
          "[unit]") {
  auto server = StartServer();
  TaskLogFixture task(*server);
  std::string first = Pattern(100'000, 3);
  std::string second = Pattern(100'000, 4);
  WriteInPieces(task.log, first, 700, 5);

  CurlReader reader(task.live->url());
  REQUIRE(reader.WaitHeaders());
  WriteInPieces(task.log, second, 700, 6);
  task.log.Close();

  REQUIRE(reader.WaitDone());
  CHECK(reader.code() == CURLE_OK);
  CHECK(reader.body() == first + second);
}

TEST_CASE("live log: 10 concurrent readers all get the file, byte for byte", "[unit]") {
  auto server = StartServer();
  TaskLogFixture task(*server);
  std::string text = Pattern(5 * 1024 * 1024, 7);
  std::string_view rest = text;

  std::vector<std::unique_ptr<CurlReader>> readers;
  for (int i = 0; i < 5; ++i) {
    readers.push_back(std::make_unique<CurlReader>(task.live->url()));
    REQUIRE(readers.back()->WaitHeaders());
  }
  WriteInPieces(task.log, rest.substr(0, text.size() / 3), 2048, 8);
  rest.remove_prefix(text.size() / 3);
  for (int i = 0; i < 5; ++i) {  // these join while the log is being written
    readers.push_back(std::make_unique<CurlReader>(task.live->url()));
  }
  WriteInPieces(task.log, rest, 2048, 9);
  for (auto& r : readers) REQUIRE(r->WaitHeaders());
  task.log.Close();

  std::string file = ReadFile(task.path);
  REQUIRE(file == text);
  for (auto& r : readers) {
    REQUIRE(r->WaitDone());
    CHECK(r->code() == CURLE_OK);
    CHECK(r->body().size() == text.size());
    CHECK(r->body() == text);
  }
}

TEST_CASE("live log: a stalled reader blocks neither the writer nor other readers", "[unit]") {
  auto server = StartServer();
  TaskLogFixture task(*server);

  RawClient stalled(server->port(), /*receive_buffer=*/4096);
  std::string path = task.live->url().substr(task.live->url().find("/log/"));
  stalled.Send("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n");  // and never reads
  REQUIRE(task.live->WaitForReaders(1, 10s));

  CurlReader reader(task.live->url());
  REQUIRE(reader.WaitHeaders());
  REQUIRE(task.live->readers() == 2);

  const std::string block = Pattern(4096, 10);
  constexpr int kBlocks = 20 * 256;  // 20 MiB
  std::mutex mu;
  std::condition_variable cv;
  bool written = false;
  auto started = Clock::now();
  std::thread writer([&] {
    for (int i = 0; i < kBlocks; ++i) task.log.Write(block);
    std::lock_guard lock(mu);
    written = true;
    cv.notify_all();
  });
  {
    std::unique_lock lock(mu);
    bool in_time = cv.wait_for(lock, 20s, [&] { return written; });
    CHECK(in_time);
  }
  writer.join();
  auto write_time = Clock::now() - started;
  INFO("writing 20 MiB took "
       << std::chrono::duration_cast<std::chrono::milliseconds>(write_time).count() << " ms");
  task.log.Close();

  REQUIRE(reader.WaitDone());
  CHECK(reader.code() == CURLE_OK);
  CHECK(reader.body().size() == static_cast<size_t>(kBlocks) * block.size());
  CHECK(reader.body() == ReadFile(task.path));
  CHECK(task.live->readers() == 1);  // the stalled one is still there, stuck in a send

  auto stop_started = Clock::now();
  server->Stop();
  CHECK(Clock::now() - stop_started < 5s);
  CHECK(task.live->readers() == 0);
}

TEST_CASE("live log: a reader that accepts nothing for stall_timeout is dropped", "[unit]") {
  LiveLogServer::Options options;
  options.stall_timeout = 200ms;
  auto server = StartServer(options);
  TaskLogFixture task(*server);
  RawClient stalled(server->port(), /*receive_buffer=*/4096);
  std::string path = task.live->url().substr(task.live->url().find("/log/"));
  stalled.Send("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n");
  REQUIRE(task.live->WaitForReaders(1, 10s));
  task.log.Write(Pattern(8 * 1024 * 1024, 11));  // far more than the socket buffers hold
  CHECK(task.live->WaitForReaders(0, 20s));
  task.log.Close();
}

TEST_CASE("live log: wrong tokens and paths get 404, other methods 405", "[unit]") {
  auto server = StartServer();
  TaskLogFixture task(*server);
  task.log.Write("secret-ish\n");
  std::string base = "http://127.0.0.1:" + std::to_string(server->port());

  std::string wrong = task.live->token();
  wrong.back() = wrong.back() == 'A' ? 'B' : 'A';
  for (const std::string& path :
       {"/log/" + wrong, std::string("/log/"), std::string("/log"), std::string("/other"),
        std::string("/"), "/log/" + task.live->token() + "/x", "/log/" + task.live->token() + "x",
        "/log/" + task.live->token().substr(0, 10), std::string("/log/..%2Fetc")}) {
    Fetched got = Fetch(base + path);
    INFO(path);
    CHECK(got.code == CURLE_OK);
    CHECK(got.status == 404);
    CHECK(got.body == "not found\n");
    CHECK(HasHeader(got.headers, "Content-Type: text/plain; charset=utf-8"));
  }

  for (const char* method : {"POST", "PUT", "DELETE"}) {
    Fetched got = Fetch(task.live->url(), method);
    INFO(method);
    CHECK(got.status == 405);
    CHECK(HasHeader(got.headers, "Allow: GET"));
  }

  task.log.Close();
  Fetched with_query = Fetch(task.live->url() + "?x=1");  // a query string is ignored
  CHECK(with_query.status == 200);
  CHECK(with_query.body == "secret-ish\n");

  std::string url = task.live->url();
  task.live.reset();
  Fetched gone = Fetch(url);
  CHECK(gone.status == 404);
}

TEST_CASE("live log: a request Poco cannot parse gets 400", "[unit]") {
  auto server = StartServer();
  RawClient client(server->port());
  client.Send(std::string(100, 'A') + " / HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string answer = client.ReadToEnd();
  CHECK(answer.rfind("HTTP/1.1 400", 0) == 0);
}

TEST_CASE("live log: dropping the handle ends an unfinished stream as incomplete", "[unit]") {
  auto server = StartServer();
  TaskLogFixture task(*server);
  task.log.Write("partial\n");
  CurlReader reader(task.live->url());
  REQUIRE(reader.WaitHeaders());
  std::string url = task.live->url();
  std::shared_ptr<LogSink> sink = task.live->sink();
  task.live.reset();

  REQUIRE(reader.WaitDone());
  CHECK(reader.code() != CURLE_OK);  // no final chunk: the client knows the log is cut
  CHECK(reader.body() == "partial\n");
  CHECK(Fetch(url).status == 404);
  task.log.Write("still fine\n");  // the sink outlives the registration
  task.log.Close();
}

TEST_CASE("live log: Stop with readers attached is prompt and ends their connections", "[unit]") {
  auto server = StartServer();
  TaskLogFixture task(*server);
  task.log.Write("before stop\n");
  std::vector<std::unique_ptr<CurlReader>> readers;
  for (int i = 0; i < 3; ++i) {
    readers.push_back(std::make_unique<CurlReader>(task.live->url()));
    REQUIRE(readers.back()->WaitBody(12));  // following now, with nothing more to send
  }
  REQUIRE(task.live->WaitForReaders(3, 10s));

  auto started = Clock::now();
  server->Stop();
  auto took = Clock::now() - started;
  CHECK(took < 2s);
  CHECK(server->readers() == 0);
  for (auto& r : readers) {
    REQUIRE(r->WaitDone(10s));
    CHECK(r->code() != CURLE_OK);
    CHECK(r->body() == "before stop\n");
  }
  server->Stop();  // idempotent
  task.log.Write("after stop\n");
  task.log.Close();
}

TEST_CASE("live log: a follower that hangs up while the log is idle is released at once",
          "[unit]") {
  auto server = StartServer();
  TaskLogFixture task(*server);
  std::string path = task.live->url().substr(task.live->url().find("/log/"));
  {
    RawClient client(server->port());
    client.Send("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n");
    REQUIRE(task.live->WaitForReaders(1, 10s));
  }  // closed, with no write to the log to reveal it
  CHECK(task.live->WaitForReaders(0, 10s));
  CHECK(server->readers() == 0);
}

TEST_CASE("live log: readers beyond the caps get 503", "[unit]") {
  LiveLogServer::Options options;
  options.max_readers = 2;
  options.max_readers_per_log = 1;
  auto server = StartServer(options);
  TaskLogFixture a(*server);
  TaskLogFixture b(*server);
  TaskLogFixture c(*server);

  CurlReader first(a.live->url());
  REQUIRE(first.WaitHeaders());
  Fetched same_log = Fetch(a.live->url());
  CHECK(same_log.status == 503);

  CurlReader second(b.live->url());
  REQUIRE(second.WaitHeaders());
  Fetched over_total = Fetch(c.live->url());
  CHECK(over_total.status == 503);

  a.log.Close();
  REQUIRE(first.WaitDone());
  REQUIRE(a.live->WaitForReaders(0, 10s));
  c.log.Close();
  Fetched now_fits = Fetch(c.live->url());
  CHECK(now_fits.status == 200);
  b.log.Close();
}

TEST_CASE("live log: HTTP/1.0 clients get the log ended by the connection", "[unit]") {
  auto server = StartServer();
  TaskLogFixture task(*server);
  task.log.Write("hello\n");
  task.log.Close();
  std::string path = task.live->url().substr(task.live->url().find("/log/"));
  RawClient client(server->port());
  client.Send("GET " + path + " HTTP/1.0\r\n\r\n");
  std::string answer = client.ReadToEnd();
  CHECK(answer.rfind("HTTP/1.0 200", 0) == 0);
  CHECK(answer.find("chunked") == std::string::npos);
  CHECK(answer.size() > 6);
  CHECK(answer.substr(answer.size() - 10) == "\r\n\r\nhello\n");
}

}  // namespace
}  // namespace docker_worker
