// The live log server (feature localLiveLog), served from the worker process.
//
// Upstream ran a separate livelog container fed by a PUT stream; here the worker serves
// GET /log/<token> itself, straight from each task's backing log file. A LiveLogServer is one
// Poco HTTP server; each task registers its log with Open() and adds the returned sink to its
// TaskLog after the FileLogSink of the same file, so whenever the sink hears of N new bytes they
// are already in the file. Readers pull from the file at their own pace: the writer only records
// the new size and wakes them, so a slow or stalled reader never blocks the task or other readers.
// All classes here are thread-safe; no Poco exception escapes them.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "docker_worker/http_server.h"
#include "docker_worker/status.h"
#include "docker_worker/task_log.h"

namespace docker_worker {

namespace live_log_internal {
class Core;
struct LogState;
}  // namespace live_log_internal

// One task's registration with a LiveLogServer, returned by LiveLogServer::Open(). token() is a
// fresh random secret (256 bits, 43 characters of unpadded URL-safe base64) and url() the public
// GET URL built from it. sink() is the LogSink to add to the task's TaskLog after the FileLogSink
// of the backing file: its Write records the new size and wakes readers (O(1), no I/O, never
// waits on a reader); its Close marks the log finished, after which each reader gets the rest of
// the file and a properly ended response. Close() (also run by the destructor) unregisters the
// token: later GETs get 404, and open readers get what has been written and then the response
// ends, cleanly if the log was finished, otherwise by closing the connection without the final
// chunk (so the client can tell the log is incomplete). The sink stays valid (and harmless) after
// Close() and after the server is gone. The handle may outlive the server.
class LiveLog {
 public:
  ~LiveLog();
  LiveLog(const LiveLog&) = delete;
  LiveLog& operator=(const LiveLog&) = delete;

  const std::string& token() const { return token_; }
  const std::string& url() const { return url_; }
  std::shared_ptr<LogSink> sink() const { return sink_; }

  // Readers currently streaming this log.
  int readers() const;
  // Blocks until readers() == count or `timeout` passes; true on the former.
  bool WaitForReaders(int count, std::chrono::milliseconds timeout) const;
  // Unregisters the token (idempotent).
  void Close();

 private:
  friend class LiveLogServer;
  LiveLog(std::shared_ptr<live_log_internal::Core> core,
          std::shared_ptr<live_log_internal::LogState> state, std::string url);

  std::shared_ptr<live_log_internal::Core> core_;
  std::shared_ptr<live_log_internal::LogState> state_;
  std::shared_ptr<LogSink> sink_;
  std::string token_;
  std::string url_;
};

// An HTTP server for live logs: GET /log/<token> answers 200 `text/plain; charset=utf-8` (with
// `Access-Control-Allow-Origin: *` and `X-Streaming: true`), chunked for HTTP/1.1, streaming the
// backing file from its first byte and then following it until the log is finished and fully
// sent. Unknown tokens and other paths get 404, other methods 405, requests Poco cannot parse
// 400, and readers beyond max_readers (in all) or max_readers_per_log get 503. Every connection
// is closed after its response. Each streaming reader occupies one server thread and one fixed
// 64 KiB read buffer; a reader that accepts no bytes for stall_timeout is disconnected, and a
// reader whose client goes away is noticed at once, even while the log is idle.
// Start() also sets SIGPIPE to "ignore" when it is at its default (a peer that resets the
// connection must not kill the worker; Poco sends without MSG_NOSIGNAL). Stop() (also run by the
// destructor) closes the listening socket, aborts every open response (the client sees the
// connection end before the final chunk) and returns once every server thread is done.
class LiveLogServer {
 public:
  struct Options {
    std::string listen_address = "127.0.0.1";
    uint16_t port = 0;            // 0: any free port; see port()
    std::string public_hostname;  // host put in URLs; empty: listen_address
    int max_readers = 256;        // concurrent readers over all logs
    int max_readers_per_log = 64;
    int max_threads = 0;  // server threads; 0: max_readers + 16 (headroom for 404/503 answers)
    int max_queued = 64;  // accepted connections waiting for a thread; more are closed
    std::chrono::milliseconds request_timeout{10'000};  // to receive a request's header
    std::chrono::milliseconds stall_timeout{60'000};    // a send making no progress that long
  };

  // Binds and starts serving. Errors: kInvalidArgument for bad options or an address that does
  // not parse, kUnavailable when the address cannot be bound, kInternal when libsodium fails.
  static Result<std::unique_ptr<LiveLogServer>> Start(const Options& options);
  ~LiveLogServer();
  LiveLogServer(const LiveLogServer&) = delete;
  LiveLogServer& operator=(const LiveLogServer&) = delete;

  // The bound port (the real one when Options::port was 0).
  int port() const { return port_; }
  // "http://<public_hostname>:<port>/log/<token>" (an IPv6 literal is put in brackets).
  std::string UrlFor(const std::string& token) const;

  // Registers the log backed by the file at `backing_file_path` (which need not exist yet: it is
  // opened by each reader when there is something to read) and returns its handle. Never fails;
  // after Stop() the handle works but nobody can read it.
  std::shared_ptr<LiveLog> Open(std::string backing_file_path);

  // Readers currently streaming, over all logs.
  int readers() const;

  // Idempotent; see the class comment.
  void Stop();

 private:
  LiveLogServer() = default;

  std::shared_ptr<live_log_internal::Core> core_;
  std::unique_ptr<HttpServer> http_;
  int port_ = 0;
  std::string url_prefix_;  // "http://host:port/log/"
  std::mutex stop_mu_;
  bool stopped_ = false;  // guarded by stop_mu_
};

}  // namespace docker_worker
