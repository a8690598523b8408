#include "docker_worker/live_log_server.h"

#include <Poco/Exception.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Timespan.h>
#include <fcntl.h>
#include <poll.h>
#include <sodium.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <exception>
#include <ostream>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "docker_worker/base64.h"
#include "docker_worker/http_server.h"

namespace docker_worker {
namespace live_log_internal {

// One registered log: where its bytes are, how many the TaskLog has written so far, and whether
// more will come. The sink, the LiveLog handle, the server's list and every reader share it.
struct LogState {
  LogState(std::string token_in, std::string path_in)
      : token(std::move(token_in)), path(std::move(path_in)) {}

  const std::string token;
  const std::string path;

  mutable std::mutex mu;
  // Signalled on new bytes, finish, revoke, reader count changes and reader cancellation.
  mutable std::condition_variable cv;
  uint64_t size = 0;      // bytes known to be in the file (guarded by mu)
  bool finished = false;  // the sink was closed: size is final (guarded by mu)
  bool revoked = false;   // the handle was closed: the token is no longer served (guarded by mu)
  int readers = 0;        // readers streaming it (guarded by mu)
};

// One streaming GET, owned by its handler thread and registered with the Core while it streams.
// `fd` (the client socket) stays open while registered. `cancelled` is set by Stop() or when the
// client is seen to go away; the handler then ends the response at once.
struct Reader {
  int fd = -1;
  std::shared_ptr<LogState> log;
  std::atomic<bool> cancelled{false};
};

// Shared state of one server: the registered logs, the streaming readers and the thread that
// watches the readers' sockets for a peer that went away. Outlives the Poco server (the request
// handler factory and every LiveLog hold it). Lock order: Core::mu_ before LogState::mu.
class Core {
 public:
  enum class Admission { kOk, kStopping, kBusy, kGone };

  explicit Core(const LiveLogServer::Options& options) : options_(options) {}
  ~Core() {
    StopWatcher();
    if (wake_fd_ >= 0) ::close(wake_fd_);
  }
  Core(const Core&) = delete;
  Core& operator=(const Core&) = delete;

  const LiveLogServer::Options& options() const { return options_; }

  Status StartWatcher() {
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd_ < 0) {
      return Status(Code::kInternal, std::string("live log: eventfd: ") + std::strerror(errno));
    }
    watcher_ = std::thread([this] { WatchLoop(); });
    return Status::Ok();
  }

  void StopWatcher() {
    if (!watcher_.joinable()) return;
    {
      std::lock_guard lock(mu_);
      watcher_exit_ = true;
      WakeWatcher();
    }
    watcher_.join();
  }

  void AddLog(std::shared_ptr<LogState> log) {
    std::lock_guard lock(mu_);
    logs_.push_back(std::move(log));
  }

  // Unregisters `log` (idempotent) and tells its readers.
  void RemoveLog(LogState* log) {
    {
      std::lock_guard lock(mu_);
      std::erase_if(logs_, [log](const std::shared_ptr<LogState>& l) { return l.get() == log; });
    }
    {
      std::lock_guard lock(log->mu);
      log->revoked = true;
    }
    log->cv.notify_all();
  }

  // The registered log whose token is `token`, or null. Every entry is compared in constant
  // time, so the answer time says nothing about how much of a token matched.
  std::shared_ptr<LogState> FindLog(std::string_view token) const {
    std::lock_guard lock(mu_);
    std::shared_ptr<LogState> found;
    for (const auto& log : logs_) {
      if (log->token.size() == token.size() &&
          sodium_memcmp(log->token.data(), token.data(), token.size()) == 0) {
        found = log;
      }
    }
    return found;
  }

  Admission Register(Reader* reader) {
    std::lock_guard lock(mu_);
    if (stopping_) return Admission::kStopping;
    if (static_cast<int>(readers_.size()) >= options_.max_readers) return Admission::kBusy;
    {
      std::lock_guard log_lock(reader->log->mu);
      if (reader->log->revoked) return Admission::kGone;
      if (reader->log->readers >= options_.max_readers_per_log) return Admission::kBusy;
      ++reader->log->readers;
    }
    reader->log->cv.notify_all();
    readers_.emplace(reader->fd, reader);
    WakeWatcher();
    return Admission::kOk;
  }

  void Unregister(Reader* reader) {
    {
      std::lock_guard lock(mu_);
      readers_.erase(reader->fd);
      WakeWatcher();
    }
    {
      std::lock_guard lock(reader->log->mu);
      --reader->log->readers;
    }
    reader->log->cv.notify_all();
  }

  // Refuses new readers and cancels every current one: its socket is shut down (which also
  // ends a send blocked on a stalled client) and its handler is woken.
  void AbortAll() {
    std::lock_guard lock(mu_);
    stopping_ = true;
    for (auto& [fd, reader] : readers_) {
      reader->cancelled = true;
      ::shutdown(fd, SHUT_RDWR);
      Notify(*reader->log);
    }
  }

  int readers() const {
    std::lock_guard lock(mu_);
    return static_cast<int>(readers_.size());
  }

 private:
  // Wakes whoever waits on `log` after a flag they test has changed (no lost wake-up: the
  // waiter either has not tested yet or is already waiting once we hold its mutex).
  static void Notify(LogState& log) {
    { std::lock_guard lock(log.mu); }
    log.cv.notify_all();
  }

  void WakeWatcher() {
    uint64_t one = 1;
    if (::write(wake_fd_, &one, sizeof one) < 0) {
      // EAGAIN only when the counter is saturated: the watcher is woken anyway.
    }
  }

  // Polls every reader's socket for POLLRDHUP (the client closed or reset the connection) so a
  // follower of an idle log is released at once rather than at the next write. The set is
  // rebuilt whenever a reader comes or goes (the eventfd wakes the poll).
  void WatchLoop() {
    std::vector<pollfd> fds;
    for (;;) {
      fds.clear();
      fds.push_back({wake_fd_, POLLIN, 0});
      {
        std::lock_guard lock(mu_);
        if (watcher_exit_) return;
        for (const auto& [fd, reader] : readers_) {
          if (!reader->cancelled) fds.push_back({fd, POLLRDHUP, 0});
        }
      }
      if (::poll(fds.data(), fds.size(), -1) < 0) continue;  // EINTR
      if (fds[0].revents != 0) {
        uint64_t count;
        if (::read(wake_fd_, &count, sizeof count) < 0) {
          // EAGAIN: already drained.
        }
      }
      for (size_t i = 1; i < fds.size(); ++i) {
        if (fds[i].revents == 0) continue;
        std::lock_guard lock(mu_);
        auto it = readers_.find(fds[i].fd);
        if (it == readers_.end() || it->second->cancelled) continue;
        // The descriptor may have been closed and reused since poll() returned; ask again
        // now that it cannot change (a registered descriptor stays open).
        pollfd now{fds[i].fd, POLLRDHUP, 0};
        if (::poll(&now, 1, 0) <= 0 || (now.revents & (POLLRDHUP | POLLHUP | POLLERR)) == 0) {
          continue;
        }
        it->second->cancelled = true;
        Notify(*it->second->log);
      }
    }
  }

  const LiveLogServer::Options options_;
  mutable std::mutex mu_;
  bool stopping_ = false;                        // guarded by mu_
  bool watcher_exit_ = false;                    // guarded by mu_
  std::vector<std::shared_ptr<LogState>> logs_;  // guarded by mu_
  std::unordered_map<int, Reader*> readers_;     // by client socket; guarded by mu_
  int wake_fd_ = -1;
  std::thread watcher_;
};

}  // namespace live_log_internal

namespace {

using live_log_internal::Core;
using live_log_internal::LogState;
using live_log_internal::Reader;
using Poco::Net::HTTPResponse;

constexpr size_t kReadBufferSize = 64 * 1024;
constexpr size_t kTokenBytes = 32;
constexpr std::string_view kLogPrefix = "/log/";
constexpr const char* kTextPlain = "text/plain; charset=utf-8";

Poco::Timespan ToTimespan(std::chrono::milliseconds ms) {
  return Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(ms.count()) * 1000);
}

// Adds to the TaskLog's stream: records the size and wakes readers. Never fails.
class LiveLogSink final : public LogSink {
 public:
  explicit LiveLogSink(std::shared_ptr<LogState> log) : log_(std::move(log)) {}

  bool Write(std::string_view bytes) override {
    {
      std::lock_guard lock(log_->mu);
      log_->size += bytes.size();
    }
    log_->cv.notify_all();
    return true;
  }

  void Close() override {
    {
      std::lock_guard lock(log_->mu);
      log_->finished = true;
    }
    log_->cv.notify_all();
  }

  // The header lines precede the live log's Link: they are in the backing file already.
  void Attached(uint64_t bytes_before) override {
    {
      std::lock_guard lock(log_->mu);
      log_->size += bytes_before;
    }
    log_->cv.notify_all();
  }

 private:
  std::shared_ptr<LogState> log_;
};

std::string NewToken() {
  unsigned char raw[kTokenBytes];
  randombytes_buf(raw, sizeof raw);
  std::string out = Base64Encode(raw, sizeof raw, Base64::kUrlSafeUnpadded);
  sodium_memzero(raw, sizeof raw);
  return out;
}

bool LooksLikeToken(std::string_view token) {
  if (token.empty() || token.size() > 128) return false;
  return std::all_of(token.begin(), token.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
  });
}

void IgnoreSigpipeIfDefault() {
  struct sigaction current {};
  if (::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    ::sigaction(SIGPIPE, &ignore, nullptr);
  }
}

class UniqueFd {
 public:
  UniqueFd() = default;
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  void reset(int fd) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }
  int get() const { return fd_; }

 private:
  int fd_ = -1;
};

void SendText(Poco::Net::HTTPServerResponse& response, HTTPResponse::HTTPStatus status,
              std::string_view body) {
  response.setStatusAndReason(status);
  response.setContentType(kTextPlain);
  response.setContentLength(static_cast<std::streamsize>(body.size()));
  response.setKeepAlive(false);
  std::ostream& out = response.send();
  out.write(body.data(), static_cast<std::streamsize>(body.size()));
  out.flush();
}

// Sends the log to `out` from its first byte, following it as it grows. Returns true when the
// log is finished and every byte was sent (the response may end cleanly), false when it must be
// aborted: cancelled, client gone or stalled, file unreadable or shorter than the log says, or
// the handle closed before the log finished.
bool StreamLog(LogState& log, Reader& reader, std::ostream& out) {
  std::unique_ptr<char[]> buffer(new char[kReadBufferSize]);
  UniqueFd file;
  uint64_t offset = 0;
  for (;;) {
    uint64_t target;
    bool finished;
    bool revoked;
    {
      std::unique_lock lock(log.mu);
      log.cv.wait(lock, [&] {
        return reader.cancelled || log.size > offset || log.finished || log.revoked;
      });
      if (reader.cancelled) return false;
      target = log.size;
      finished = log.finished;
      revoked = log.revoked;
    }
    if (offset < target) {
      if (file.get() < 0) {
        file.reset(::open(log.path.c_str(), O_RDONLY | O_CLOEXEC));
        if (file.get() < 0) return false;
      }
      while (offset < target) {
        if (reader.cancelled) return false;
        size_t want = static_cast<size_t>(std::min<uint64_t>(kReadBufferSize, target - offset));
        ssize_t n = ::pread(file.get(), buffer.get(), want, static_cast<off_t>(offset));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        out.write(buffer.get(), n);
        if (!out) return false;
        offset += static_cast<uint64_t>(n);
      }
      out.flush();
      if (!out) return false;
      continue;  // look again: more may have come meanwhile
    }
    if (finished) return true;
    if (revoked) return false;
  }
}

// Serves one request. Runs on a Poco server thread.
class LogRequestHandler final : public GuardedRequestHandler {
 public:
  explicit LogRequestHandler(std::shared_ptr<Core> core) : core_(std::move(core)) {}

 private:
  void Handle(Poco::Net::HTTPServerRequest& request,
              Poco::Net::HTTPServerResponse& response) override {
    response.set("Access-Control-Allow-Origin", "*");
    if (request.getMethod() != Poco::Net::HTTPRequest::HTTP_GET) {
      response.set("Allow", "GET");
      SendText(response, HTTPResponse::HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
      return;
    }
    std::string_view path = request.getURI();
    path = path.substr(0, path.find_first_of("?#"));
    if (!path.starts_with(kLogPrefix) || !LooksLikeToken(path.substr(kLogPrefix.size()))) {
      SendText(response, HTTPResponse::HTTP_NOT_FOUND, "not found\n");
      return;
    }
    std::shared_ptr<LogState> log = core_->FindLog(path.substr(kLogPrefix.size()));
    auto* impl = dynamic_cast<Poco::Net::HTTPServerRequestImpl*>(&request);
    if (!log || impl == nullptr) {
      SendText(response, HTTPResponse::HTTP_NOT_FOUND, "not found\n");
      return;
    }
    Poco::Net::StreamSocket& socket = impl->socket();
    Reader reader;
    reader.fd = socket.impl()->sockfd();
    reader.log = log;
    switch (core_->Register(&reader)) {
      case Core::Admission::kOk:
        break;
      case Core::Admission::kGone:
        SendText(response, HTTPResponse::HTTP_NOT_FOUND, "not found\n");
        return;
      case Core::Admission::kBusy:
        SendText(response, HTTPResponse::HTTP_SERVICE_UNAVAILABLE, "too many readers\n");
        return;
      case Core::Admission::kStopping:
        SendText(response, HTTPResponse::HTTP_SERVICE_UNAVAILABLE, "shutting down\n");
        return;
    }
    bool clean = false;
    try {
      socket.setNoDelay(true);
      socket.setSendTimeout(ToTimespan(core_->options().stall_timeout));
      response.setStatusAndReason(HTTPResponse::HTTP_OK);
      response.setContentType(kTextPlain);
      response.set("Cache-Control", "no-cache");
      response.set("X-Content-Type-Options", "nosniff");
      response.set("X-Streaming", "true");
      response.setKeepAlive(false);
      // HTTP/1.0 has no chunked encoding: the end of the connection ends the body.
      response.setChunkedTransferEncoding(request.getVersion() != HTTPResponse::HTTP_1_0);
      std::ostream& out = response.send();  // the header goes out now
      clean = out.good() && StreamLog(*log, reader, out);
    } catch (...) {  // Poco (client gone, stall timeout) or allocation: abort, but unregister
      clean = false;
    }
    // An aborted response must not look complete: closing now makes Poco's final chunk fail.
    if (!clean) ::shutdown(reader.fd, SHUT_RDWR);
    core_->Unregister(&reader);
  }

  std::shared_ptr<Core> core_;
};

class LogRequestHandlerFactory final : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit LogRequestHandlerFactory(std::shared_ptr<Core> core) : core_(std::move(core)) {}

  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new LogRequestHandler(core_);
  }

 private:
  std::shared_ptr<Core> core_;
};

Status CheckOptions(const LiveLogServer::Options& o) {
  if (o.max_readers < 1) return Status(Code::kInvalidArgument, "live log: max_readers < 1");
  if (o.max_readers_per_log < 1) {
    return Status(Code::kInvalidArgument, "live log: max_readers_per_log < 1");
  }
  if (o.max_threads < 0) return Status(Code::kInvalidArgument, "live log: max_threads < 0");
  if (o.max_queued < 0) return Status(Code::kInvalidArgument, "live log: max_queued < 0");
  if (o.request_timeout.count() <= 0 || o.stall_timeout.count() <= 0) {
    return Status(Code::kInvalidArgument, "live log: timeouts must be positive");
  }
  return Status::Ok();
}

}  // namespace

// --- LiveLog ---------------------------------------------------------------------------------

LiveLog::LiveLog(std::shared_ptr<live_log_internal::Core> core,
                 std::shared_ptr<live_log_internal::LogState> state, std::string url)
    : core_(std::move(core)),
      state_(std::move(state)),
      sink_(std::make_shared<LiveLogSink>(state_)),
      token_(state_->token),
      url_(std::move(url)) {}

LiveLog::~LiveLog() { Close(); }

void LiveLog::Close() { core_->RemoveLog(state_.get()); }

int LiveLog::readers() const {
  std::lock_guard lock(state_->mu);
  return state_->readers;
}

bool LiveLog::WaitForReaders(int count, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(state_->mu);
  return state_->cv.wait_for(lock, timeout, [&] { return state_->readers == count; });
}

// --- LiveLogServer ---------------------------------------------------------------------------

Result<std::unique_ptr<LiveLogServer>> LiveLogServer::Start(const Options& options) {
  if (Status s = CheckOptions(options); !s.ok()) return s;
  if (sodium_init() < 0) return Status(Code::kInternal, "live log: libsodium failed to start");
  IgnoreSigpipeIfDefault();

  std::unique_ptr<LiveLogServer> server(new LiveLogServer());
  server->core_ = std::make_shared<Core>(options);
  if (Status s = server->core_->StartWatcher(); !s.ok()) return s;

  HttpServerOptions http;
  http.host = options.listen_address;
  http.port = options.port;
  http.max_threads = options.max_threads > 0 ? options.max_threads : options.max_readers + 16;
  http.min_threads = 2;
  http.max_queued = options.max_queued;
  http.keep_alive = false;
  http.timeout = options.request_timeout;
  auto listening = HttpServer::Listen(http);
  if (!listening.ok()) return listening.status().Prefixed("live log: ");
  server->http_ = std::move(*listening);
  server->port_ = server->http_->port();
  if (Status s = server->http_->Serve(new LogRequestHandlerFactory(server->core_)); !s.ok()) {
    return s.Prefixed("live log: ");
  }

  std::string host =
      options.public_hostname.empty() ? options.listen_address : options.public_hostname;
  server->url_prefix_ = "http://" + UrlHost(host) + ":" + std::to_string(server->port_) + "/log/";
  return server;
}

LiveLogServer::~LiveLogServer() { Stop(); }

std::string LiveLogServer::UrlFor(const std::string& token) const { return url_prefix_ + token; }

std::shared_ptr<LiveLog> LiveLogServer::Open(std::string backing_file_path) {
  auto state = std::make_shared<LogState>(NewToken(), std::move(backing_file_path));
  core_->AddLog(state);
  std::string url = UrlFor(state->token);
  return std::shared_ptr<LiveLog>(new LiveLog(core_, std::move(state), std::move(url)));
}

int LiveLogServer::readers() const { return core_->readers(); }

void LiveLogServer::Stop() {
  std::lock_guard lock(stop_mu_);
  if (stopped_) return;
  stopped_ = true;
  if (core_) core_->AbortAll();
  if (http_) http_->Stop();
  if (core_) core_->StopWatcher();
}

}  // namespace docker_worker
