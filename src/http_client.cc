#include "docker_worker/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <mutex>

namespace docker_worker {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// libcurl's header list, freed on scope exit.
struct SList {
  curl_slist* list = nullptr;
  ~SList() { curl_slist_free_all(list); }
  bool Append(const std::string& line) {
    curl_slist* next = curl_slist_append(list, line.c_str());
    if (!next) return false;
    list = next;
    return true;
  }
};

// Everything the libcurl callbacks of one transfer share. Lives on Send()'s stack.
struct Transfer {
  const HttpRequest* request = nullptr;
  HttpResponse response;
  bool in_block = false;      // inside a header block (after a status line)
  bool headers_done = false;  // the final header block is complete; on_headers ran
  bool sink_body = false;     // body bytes go to request->body_sink
  bool body_too_large = false;
  bool idle_expired = false;  // no byte moved for request->idle_timeout
  Status callback_error;  // first error returned by a callback
  // Idle tracking: the byte counts last seen and when they (or a callback) last moved. A
  // callback that blocks (back-pressure from a sink) counts as activity when it returns.
  curl_off_t last_down = 0, last_up = 0;
  std::chrono::steady_clock::time_point last_activity = std::chrono::steady_clock::now();
  void Touch() { last_activity = std::chrono::steady_clock::now(); }

  // Marks the headers complete and runs on_headers. Returns false to abort.
  bool FinishHeaders() {
    headers_done = true;
    sink_body = request->body_sink && response.ok();
    if (request->on_headers) {
      Status s = request->on_headers(response);
      if (!s.ok()) {
        callback_error = std::move(s);
        return false;
      }
    }
    return true;
  }
};

long ParseStatusLine(std::string_view line) {
  // "HTTP/1.1 200 OK", "HTTP/2 200"
  size_t space = line.find(' ');
  if (space == std::string_view::npos) return 0;
  long code = 0;
  for (size_t i = space + 1; i < line.size() && std::isdigit(static_cast<unsigned char>(line[i]));
       ++i) {
    code = code * 10 + (line[i] - '0');
    if (code > 999) return 0;
  }
  return code;
}

bool IsFollowedRedirect(const Transfer& t) {
  long s = t.response.status;
  return t.request->follow_redirects &&
         (s == 301 || s == 302 || s == 303 || s == 307 || s == 308) &&
         t.response.headers.Has("Location");
}

size_t OnHeader(char* data, size_t size, size_t count, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  size_t n = size * count;
  if (t->headers_done) return n;  // trailers: ignored
  std::string_view line(data, n);
  if (line.substr(0, 5) == "HTTP/") {
    t->response.status = ParseStatusLine(line);
    t->response.headers.clear();
    t->in_block = true;
    return n;
  }
  std::string_view trimmed = Trim(line);
  if (trimmed.empty()) {
    if (!t->in_block) return n;
    t->in_block = false;
    // Interim (1xx) and followed redirect blocks are not the final response.
    if (t->response.status < 200 || IsFollowedRedirect(*t)) return n;
    return t->FinishHeaders() ? n : 0;
  }
  size_t colon = trimmed.find(':');
  if (colon == std::string_view::npos) return n;  // obs-fold or garbage: ignored
  t->response.headers.Add(std::string(Trim(trimmed.substr(0, colon))),
                          std::string(Trim(trimmed.substr(colon + 1))));
  return n;
}

size_t OnBody(char* data, size_t size, size_t count, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  size_t n = size * count;
  if (!t->headers_done && !t->FinishHeaders()) return 0;
  if (t->sink_body) {
    Status s = t->request->body_sink(std::string_view(data, n));
    t->Touch();
    if (!s.ok()) {
      t->callback_error = std::move(s);
      return 0;
    }
    return n;
  }
  std::string& body = t->response.body;
  if (t->response.ok()) {
    if (body.size() + n > t->request->max_body) {
      t->body_too_large = true;
      return 0;
    }
    body.append(data, n);
  } else if (body.size() < t->request->max_error_body) {
    body.append(data, std::min(n, t->request->max_error_body - body.size()));
  }
  return n;
}

size_t OnRead(char* buf, size_t size, size_t count, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  if (t->request->stop.stop_requested()) return CURL_READFUNC_ABORT;
  Result<size_t> got = t->request->body_reader(buf, size * count);
  t->Touch();
  if (!got.ok()) {
    t->callback_error = got.status();
    return CURL_READFUNC_ABORT;
  }
  return std::min(*got, size * count);
}

int OnSeek(void* userdata, curl_off_t offset, int origin) {
  auto* t = static_cast<Transfer*>(userdata);
  if (offset != 0 || origin != SEEK_SET || !t->request->body_rewind) return CURL_SEEKFUNC_CANTSEEK;
  return t->request->body_rewind() ? CURL_SEEKFUNC_OK : CURL_SEEKFUNC_CANTSEEK;
}

// Also the idle timeout: libcurl calls this at least about once a second, even when idle
// (its own low-speed check averages over several seconds, so a stall after a burst would be
// noticed only seconds late).
int OnProgress(void* userdata, curl_off_t, curl_off_t dlnow, curl_off_t, curl_off_t ulnow) {
  auto* t = static_cast<Transfer*>(userdata);
  if (t->request->stop.stop_requested()) return 1;
  if (dlnow != t->last_down || ulnow != t->last_up) {
    t->last_down = dlnow;
    t->last_up = ulnow;
    t->Touch();
  } else if (t->request->idle_timeout.count() > 0 &&
             std::chrono::steady_clock::now() - t->last_activity >= t->request->idle_timeout) {
    t->idle_expired = true;
    return 1;
  }
  return 0;
}

}  // namespace

// ---------------------------------------------------------------------------- HttpHeaders

void HttpHeaders::Add(std::string name, std::string value) {
  fields_.emplace_back(std::move(name), std::move(value));
}

void HttpHeaders::Set(std::string name, std::string value) {
  Remove(name);
  Add(std::move(name), std::move(value));
}

void HttpHeaders::Remove(std::string_view name) {
  std::erase_if(fields_, [&](const Field& f) { return EqualsIgnoreCase(f.first, name); });
}

bool HttpHeaders::Has(std::string_view name) const { return Get(name).has_value(); }

std::optional<std::string> HttpHeaders::Get(std::string_view name) const {
  for (const Field& f : fields_) {
    if (EqualsIgnoreCase(f.first, name)) return f.second;
  }
  return std::nullopt;
}

std::vector<std::string> HttpHeaders::GetAll(std::string_view name) const {
  std::vector<std::string> out;
  for (const Field& f : fields_) {
    if (EqualsIgnoreCase(f.first, name)) out.push_back(f.second);
  }
  return out;
}

// ---------------------------------------------------------------------------- helpers

std::string UrlEscape(std::string_view text) {
  GlobalInit();
  char* escaped = curl_easy_escape(nullptr, text.data(), static_cast<int>(text.size()));
  if (!escaped) return std::string();
  std::string out(escaped);
  curl_free(escaped);
  return out;
}

std::string RedactUrl(std::string_view url) {
  size_t cut = url.find_first_of("?#");
  if (cut != std::string_view::npos) url = url.substr(0, cut);
  // Drop userinfo ("user:password@") from the authority.
  size_t scheme = url.find("://");
  if (scheme != std::string_view::npos) {
    size_t host_start = scheme + 3;
    size_t path_start = url.find('/', host_start);
    std::string_view authority = url.substr(host_start, path_start - host_start);
    size_t at = authority.rfind('@');
    if (at != std::string_view::npos) {
      return std::string(url.substr(0, host_start)) + std::string(authority.substr(at + 1)) +
             std::string(path_start == std::string_view::npos ? "" : url.substr(path_start));
    }
  }
  return std::string(url);
}

// ---------------------------------------------------------------------------- HttpClient

// One pooled libcurl easy handle with the multi handle that drives it. The multi handle owns the
// connection cache, so a handle's keep-alive connection survives between requests.
struct HttpClient::Handle {
  CURL* easy = nullptr;
  CURLM* multi = nullptr;
  ~Handle() {
    if (multi) curl_multi_cleanup(multi);
    if (easy) curl_easy_cleanup(easy);
  }
};

HttpClient::HttpClient(HttpClientOptions options) : options_(std::move(options)) { GlobalInit(); }

namespace {
HttpClientOptions SocketOptions(std::string unix_socket_path) {
  HttpClientOptions options;
  options.unix_socket_path = std::move(unix_socket_path);
  return options;
}
}  // namespace

HttpClient::HttpClient(std::string unix_socket_path)
    : HttpClient(SocketOptions(std::move(unix_socket_path))) {}

HttpClient::~HttpClient() = default;

std::string HttpClient::SocketEndpoint() const {
  return options_.unix_socket_path.empty() ? std::string() : "unix://" + options_.unix_socket_path;
}

std::unique_ptr<HttpClient::Handle> HttpClient::Acquire() {
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      std::unique_ptr<Handle> h = std::move(idle_.back());
      idle_.pop_back();
      return h;
    }
  }
  auto h = std::make_unique<Handle>();
  h->easy = curl_easy_init();
  h->multi = curl_multi_init();
  if (!h->easy || !h->multi) return nullptr;
  return h;
}

void HttpClient::Release(std::unique_ptr<Handle> handle) {
  std::lock_guard lock(mu_);
  if (idle_.size() < options_.max_idle_handles) idle_.push_back(std::move(handle));
}

Result<HttpResponse> HttpClient::Send(const HttpRequest& request) {
  const std::string endpoint =
      options_.unix_socket_path.empty() ? RedactUrl(request.url) : SocketEndpoint();
  const std::string peer =
      options_.peer_name.empty() ? endpoint : options_.peer_name + " at " + endpoint;
  if (request.stop.stop_requested()) {
    return Status(Code::kCancelled, "request to " + peer + " cancelled");
  }

  std::unique_ptr<Handle> handle = Acquire();
  if (!handle) return Status(Code::kInternal, "cannot initialise libcurl");
  CURL* easy = handle->easy;
  curl_easy_reset(easy);

  Transfer t;
  t.request = &request;
  char error_buffer[CURL_ERROR_SIZE] = {0};
  SList headers;
  bool setup_ok = true;
  auto set = [&](CURLcode c) { setup_ok = setup_ok && c == CURLE_OK; };

  set(curl_easy_setopt(easy, CURLOPT_URL, request.url.c_str()));
  set(curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, error_buffer));
  set(curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L));
  set(curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https"));
  set(curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"));
  set(curl_easy_setopt(easy, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L));
  if (!options_.unix_socket_path.empty()) {
    set(curl_easy_setopt(easy, CURLOPT_UNIX_SOCKET_PATH, options_.unix_socket_path.c_str()));
  }
  if (!options_.user_agent.empty()) {
    set(curl_easy_setopt(easy, CURLOPT_USERAGENT, options_.user_agent.c_str()));
  }
  set(curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &OnHeader));
  set(curl_easy_setopt(easy, CURLOPT_HEADERDATA, &t));
  set(curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &OnBody));
  set(curl_easy_setopt(easy, CURLOPT_WRITEDATA, &t));
  set(curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L));
  set(curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, &OnProgress));
  set(curl_easy_setopt(easy, CURLOPT_XFERINFODATA, &t));
  if (request.decode_content) set(curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, ""));
  if (request.follow_redirects) {
    set(curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 1L));
    set(curl_easy_setopt(easy, CURLOPT_MAXREDIRS, 10L));
  }
  if (request.connect_timeout.count() > 0) {
    set(curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                         static_cast<long>(request.connect_timeout.count())));
  }
  if (request.total_timeout.count() > 0) {
    set(curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS,
                         static_cast<long>(request.total_timeout.count())));
  }

  // Method and body.
  const std::string& method = request.method;
  const bool has_body = request.body_reader || !request.body.empty();
  if (request.body_reader) {
    set(curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L));
    set(curl_easy_setopt(easy, CURLOPT_READFUNCTION, &OnRead));
    set(curl_easy_setopt(easy, CURLOPT_READDATA, &t));
    set(curl_easy_setopt(easy, CURLOPT_SEEKFUNCTION, &OnSeek));
    set(curl_easy_setopt(easy, CURLOPT_SEEKDATA, &t));
    if (request.body_size >= 0) {
      set(curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE,
                           static_cast<curl_off_t>(request.body_size)));
    }
    if (method != "PUT") set(curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method.c_str()));
  } else if (method == "GET" && request.body.empty()) {
    set(curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L));
  } else if (method == "HEAD") {
    set(curl_easy_setopt(easy, CURLOPT_NOBODY, 1L));
  } else if (method == "POST" || has_body) {
    set(curl_easy_setopt(easy, CURLOPT_POST, 1L));
    set(curl_easy_setopt(easy, CURLOPT_POSTFIELDS, request.body.data()));
    set(curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                         static_cast<curl_off_t>(request.body.size())));
    if (method != "POST") set(curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method.c_str()));
  } else {
    set(curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method.c_str()));
  }

  // Headers. "Name:" with nothing after it removes one libcurl would add by itself.
  for (const auto& [name, value] : request.headers.fields()) {
    if (name.find_first_of(":\r\n") != std::string::npos ||
        value.find_first_of("\r\n") != std::string::npos) {
      Release(std::move(handle));
      return Status(Code::kInvalidArgument, "invalid HTTP header field for " + peer);
    }
    setup_ok = setup_ok && headers.Append(value.empty() ? name + ";" : name + ": " + value);
  }
  if (!request.headers.Has("Expect")) setup_ok = setup_ok && headers.Append("Expect:");
  if (has_body && !request.headers.Has("Content-Type")) {
    setup_ok = setup_ok && headers.Append("Content-Type:");
  }
  set(curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers.list));

  if (!setup_ok) {
    Release(std::move(handle));
    return Status(Code::kInternal, "cannot set up the request to " + peer);
  }

  // Drive the transfer on this thread; a stop request wakes the poll at once.
  CURLM* multi = handle->multi;
  if (curl_multi_add_handle(multi, easy) != CURLM_OK) {
    Release(std::move(handle));
    return Status(Code::kInternal, "cannot start the request to " + peer);
  }
  bool cancelled = false;
  CURLcode result = CURLE_OK;
  bool finished = false;
  {
    std::stop_callback wake(request.stop, [multi] { curl_multi_wakeup(multi); });
    while (true) {
      int running = 0;
      CURLMcode mc = curl_multi_perform(multi, &running);
      if (mc != CURLM_OK) {
        result = CURLE_RECV_ERROR;
        std::snprintf(error_buffer, sizeof error_buffer, "%s", curl_multi_strerror(mc));
        finished = true;
        break;
      }
      int queued = 0;
      while (CURLMsg* msg = curl_multi_info_read(multi, &queued)) {
        if (msg->msg == CURLMSG_DONE && msg->easy_handle == easy) {
          result = msg->data.result;
          finished = true;
        }
      }
      if (finished) break;
      if (request.stop.stop_requested()) {
        cancelled = true;
        break;
      }
      mc = curl_multi_poll(multi, nullptr, 0, 1000, nullptr);
      if (mc != CURLM_OK) {
        result = CURLE_RECV_ERROR;
        std::snprintf(error_buffer, sizeof error_buffer, "%s", curl_multi_strerror(mc));
        finished = true;
        break;
      }
    }
  }
  curl_multi_remove_handle(multi, easy);
  // The handle must not keep pointers into this frame.
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, nullptr);
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, nullptr);
  Release(std::move(handle));

  if (cancelled ||
      (finished && result == CURLE_ABORTED_BY_CALLBACK && request.stop.stop_requested())) {
    return Status(Code::kCancelled, "request to " + peer + " cancelled");
  }
  if (!t.callback_error.ok()) return t.callback_error;
  if (t.idle_expired) {
    return Status(Code::kDeadlineExceeded,
                  "request to " + peer + " timed out: no data moved for " +
                      std::to_string(request.idle_timeout.count()) + " ms");
  }
  if (t.body_too_large) {
    return Status(Code::kInternal, "response from " + peer + " is larger than " +
                                       std::to_string(request.max_body) + " bytes");
  }
  if (result != CURLE_OK) {
    std::string detail = error_buffer[0] ? error_buffer : curl_easy_strerror(result);
    switch (result) {
      case CURLE_OPERATION_TIMEDOUT:
        return Status(Code::kDeadlineExceeded, "request to " + peer + " timed out: " + detail);
      case CURLE_URL_MALFORMAT:
      case CURLE_UNSUPPORTED_PROTOCOL:
        return Status(Code::kInvalidArgument, "bad URL for " + peer + ": " + detail);
      case CURLE_OUT_OF_MEMORY:
        return Status(Code::kInternal, "out of memory talking to " + peer);
      default:
        return Status(Code::kUnavailable, "cannot reach " + peer + ": " + detail);
    }
  }
  return std::move(t.response);
}

}  // namespace docker_worker
