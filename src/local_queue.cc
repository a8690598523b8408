#include "docker_worker/local_queue.h"

#include <Poco/Exception.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>

#include "docker_worker/http_server.h"
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/ThreadPool.h>
#include <fcntl.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "docker_worker/hawk.h"
#include "docker_worker/json.h"
#include "docker_worker/slugid.h"
#include "docker_worker/time_format.h"

namespace docker_worker {
namespace {

namespace fs = std::filesystem;

constexpr const char* kIssuerClientId = "local-queue/issuer";
constexpr const char* kIssuerSetting = "issuer_access_token";
constexpr const char* kDefaultClientId = "local-queue/root";
constexpr size_t kChunk = 64 * 1024;

// Printable ASCII only, at most 2 KiB: bytes outside 0x21..0x7e become %XX (a hostile request
// line must not break the log's JSON or UTF-8).
std::string ForLog(std::string_view s) {
  static const char* digits = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s.substr(0, 2048)) {
    if (c > 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(digits[c >> 4]);
      out.push_back(digits[c & 15]);
    }
  }
  return out;
}

std::string LogLine(const std::string& method, const std::string& path, int status,
                    const std::string& client_id, int64_t ms, const std::string& artifact) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  auto str = [&](const char* key, const std::string& value) {
    w.Key(key);
    w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
  };
  w.StartObject();
  str("time", FormatIso(std::chrono::system_clock::now()));
  str("method", ForLog(method));
  str("path", ForLog(path));
  w.Key("status");
  w.Int(status);
  str("clientId", client_id);
  w.Key("ms");
  w.Int64(ms);
  if (!artifact.empty()) str("artifact", ForLog(artifact));
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

// Host and port as Hawk sees them: from the Host header (X-Forwarded-* overriding the port).
void HostAndPort(const Poco::Net::HTTPServerRequest& req, const std::string& fallback_host,
                 int fallback_port, std::string* host, int* port) {
  std::string h = req.getHost();
  *host = fallback_host;
  *port = fallback_port;
  if (!h.empty()) {
    size_t colon = h.rfind(':');
    size_t bracket = h.rfind(']');
    if (colon != std::string::npos && (bracket == std::string::npos || colon > bracket)) {
      *host = h.substr(0, colon);
      try {
        *port = std::stoi(h.substr(colon + 1));
      } catch (const std::exception&) {
        *port = 0;
      }
    } else {
      *host = h;
      *port = 80;
    }
  }
  for (char& c : *host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (req.get("X-Forwarded-Proto", "") == "https") *port = 443;
  std::string fwd_port = req.get("X-Forwarded-Port", "");
  if (!fwd_port.empty()) {
    try {
      *port = std::stoi(fwd_port);
    } catch (const std::exception&) {
    }
  }
}

void SendReply(Poco::Net::HTTPServerResponse& resp, const ApiReply& reply) {
  resp.setStatusAndReason(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(reply.status));
  for (const auto& [k, v] : reply.headers) resp.set(k, v);
  if (!reply.body.empty()) resp.setContentType("application/json; charset=utf-8");
  resp.setContentLength64(static_cast<Poco::Int64>(reply.body.size()));
  std::ostream& out = resp.send();
  out.write(reply.body.data(), static_cast<std::streamsize>(reply.body.size()));
  out.flush();
}

// Reads and drops what is left of the request body, up to 64 KiB; false if more remains.
bool DrainBody(Poco::Net::HTTPServerRequest& req) {
  std::istream& in = req.stream();
  char buf[4096];
  size_t total = 0;
  while (true) {
    in.read(buf, sizeof buf);
    total += static_cast<size_t>(in.gcount());
    if (!in.good()) return in.eof();
    if (total > kChunk) return false;
  }
}

Status WriteClientsFile(const std::string& path, const LocalQueueClient& client) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartArray();
  w.StartObject();
  w.Key("clientId");
  w.String(client.client_id.c_str());
  w.Key("accessToken");
  w.String(client.access_token.c_str());
  w.Key("scopes");
  w.StartArray();
  for (const auto& s : client.scopes) w.String(s.c_str());
  w.EndArray();
  w.EndObject();
  w.EndArray();
  std::string text = std::string(buf.GetString(), buf.GetSize()) + "\n";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Status(Code::kInternal, "cannot create " + path + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      return Status(Code::kInternal, "cannot write " + path + ": " + std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    return Status(Code::kInternal, "cannot write " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

}  // namespace

Result<std::vector<LocalQueueClient>> LoadLocalQueueClients(const std::string& path) {
  auto doc = json::ParseFile(path);
  if (!doc.ok()) return doc.status();
  if (!doc->IsArray()) {
    return Status(Code::kInvalidArgument,
                  path + ": expected a JSON array of {clientId, accessToken, scopes}");
  }
  std::vector<LocalQueueClient> clients;
  std::set<std::string> seen;
  for (rapidjson::SizeType i = 0; i < doc->Size(); ++i) {
    const json::Value& item = (*doc)[i];
    std::string where = path + ": entry " + std::to_string(i);
    if (!item.IsObject()) return Status(Code::kInvalidArgument, where + " is not an object");
    auto id = json::GetString(item, "clientId");
    auto token = json::GetString(item, "accessToken");
    const json::Value* scopes = json::FindArray(item, "scopes");
    if (!id || id->empty()) return Status(Code::kInvalidArgument, where + ": clientId is required");
    where += " (" + *id + ")";
    if (!token || token->empty()) {
      return Status(Code::kInvalidArgument, where + ": accessToken is required");
    }
    if (!scopes) return Status(Code::kInvalidArgument, where + ": scopes must be an array");
    if (*id == kIssuerClientId) {
      return Status(Code::kInvalidArgument, where + ": clientId is reserved for local-queue");
    }
    if (!seen.insert(*id).second) {
      return Status(Code::kInvalidArgument, where + ": duplicate clientId");
    }
    LocalQueueClient c{*id, *token, {}};
    for (const auto& s : scopes->GetArray()) {
      if (!s.IsString()) return Status(Code::kInvalidArgument, where + ": scopes must be strings");
      c.scopes.push_back(s.GetString());
    }
    clients.push_back(std::move(c));
  }
  return clients;
}

Result<std::vector<LocalQueueClient>> EnsureLocalQueueClients(const std::string& path,
                                                              bool* created) {
  std::error_code ec;
  bool exists = fs::exists(path, ec);
  if (created) *created = !exists;
  if (!exists) {
    LocalQueueClient root{kDefaultClientId, NewSlugId() + NewSlugId(), {"*"}};
    Status st = WriteClientsFile(path, root);
    if (!st.ok()) return st;
  }
  return LoadLocalQueueClients(path);
}

// --- the server ----------------------------------------------------------------------------------

struct LocalQueueServer::Impl {
  LocalQueueOptions options;
  SystemClock system_clock;
  Clock* clock = nullptr;
  std::string blob_dir;
  std::map<std::string, HawkClient> clients;  // immutable after Start
  std::string root_url;
  int port = 0;

  int lock_fd = -1;  // flock()ed <data>/local-queue.lock: one server per directory
  std::unique_ptr<LocalQueueStore> store;
  std::unique_ptr<LocalQueueApi> api;
  std::unique_ptr<HttpServer> http;

  std::mutex sweep_mu;
  std::condition_variable sweep_cv;
  bool stopping = false;  // guarded by sweep_mu
  std::thread sweeper;
  bool stopped = false;

  void Serve(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp);
  ApiReply ServeApi(Poco::Net::HTTPServerRequest& req, const std::string& path,
                    const std::string& query, std::string* client_id, bool* close);
  ApiReply ServeBlob(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp,
                     const std::string& id, std::string* artifact, bool* sent, bool* close);
  void Log(const std::string& line) {
    if (options.request_log) options.request_log(line);
  }
  ~Impl() {
    http.reset();
    api.reset();
    store.reset();
    if (lock_fd >= 0) ::close(lock_fd);  // releases the flock, last
  }
};

namespace {

class RequestHandler final : public Poco::Net::HTTPRequestHandler {
 public:
  explicit RequestHandler(LocalQueueServer::Impl& impl) : impl_(impl) {}
  void handleRequest(Poco::Net::HTTPServerRequest& req,
                     Poco::Net::HTTPServerResponse& resp) override {
    impl_.Serve(req, resp);
  }

 private:
  LocalQueueServer::Impl& impl_;
};

class HandlerFactory final : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit HandlerFactory(LocalQueueServer::Impl& impl) : impl_(impl) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new RequestHandler(impl_);
  }

 private:
  LocalQueueServer::Impl& impl_;
};

}  // namespace

void LocalQueueServer::Impl::Serve(Poco::Net::HTTPServerRequest& req,
                                   Poco::Net::HTTPServerResponse& resp) {
  auto start = std::chrono::steady_clock::now();
  const std::string method = req.getMethod();
  const std::string uri = req.getURI();
  size_t q = uri.find('?');
  const std::string path = uri.substr(0, q);
  const std::string query = q == std::string::npos ? "" : uri.substr(q + 1);
  std::string log_path = path;
  std::string client_id;
  std::string artifact;
  bool sent = false;
  bool close = false;
  ApiReply reply;
  try {
    if (path.rfind("/_blob/", 0) == 0) {
      log_path = "/_blob/[redacted]";
      reply = ServeBlob(req, resp, path.substr(7), &artifact, &sent, &close);
    } else if (path.rfind("/api/", 0) == 0) {
      reply = ServeApi(req, path, query, &client_id, &close);
    } else {
      reply = LocalQueueApi::ErrorReply(404, "ResourceNotFound",
                                        "local-queue serves /api/queue/v1/, /api/auth/v1/ and "
                                        "/api/index/v1/");
    }
    if (!sent) {
      // A body left unread would be parsed as the next request on this connection.
      if (!close && !DrainBody(req)) close = true;
      if (close) resp.setKeepAlive(false);
      SendReply(resp, reply);
    }
  } catch (const Poco::Exception& e) {
    reply.status = 500;
    if (!resp.sent()) {
      try {
        resp.setKeepAlive(false);
        SendReply(resp, LocalQueueApi::ErrorReply(500, "InternalServerError",
                                                  "request failed: " + e.displayText()));
      } catch (...) {
      }
    }
  } catch (const std::exception& e) {
    reply.status = 500;
    if (!resp.sent()) {
      try {
        resp.setKeepAlive(false);
        SendReply(resp, LocalQueueApi::ErrorReply(500, "InternalServerError",
                                                  std::string("request failed: ") + e.what()));
      } catch (...) {
      }
    }
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  start)
                .count();
  Log(LogLine(method, log_path, reply.status, client_id, ms, artifact));
}

ApiReply LocalQueueServer::Impl::ServeApi(Poco::Net::HTTPServerRequest& req,
                                          const std::string& path, const std::string& query,
                                          std::string* client_id, bool* close) {
  // /api/<service>/v1/<rest>
  size_t service_end = path.find('/', 5);
  std::string service =
      path.substr(5, service_end == std::string::npos ? std::string::npos : service_end - 5);
  if ((service != "queue" && service != "auth" && service != "index") ||
      service_end == std::string::npos || path.compare(service_end, 4, "/v1/") != 0) {
    return LocalQueueApi::ErrorReply(404, "ResourceNotFound",
                                     "local-queue serves /api/queue/v1/, /api/auth/v1/ and "
                                     "/api/index/v1/");
  }
  bool too_large = false;
  auto body = ReadRequestBody(req, options.max_request_bytes, &too_large);
  if (!body) {
    *close = true;
    return LocalQueueApi::ErrorReply(
        413, "InputTooLarge",
        "request bodies are limited to " + std::to_string(options.max_request_bytes) + " bytes");
  }

  HawkRequest hawk;
  hawk.method = req.getMethod();
  hawk.resource = req.getURI();
  HostAndPort(req, options.host, port, &hawk.host, &hawk.port);
  hawk.authorization = req.get("Authorization", "");
  hawk.payload = std::string_view(*body);
  hawk.content_type = req.getContentType();
  auto lookup = [this](const std::string& id) -> std::optional<HawkClient> {
    auto it = clients.find(id);
    if (it == clients.end()) return std::nullopt;
    return it->second;
  };
  auto identity = HawkVerify(hawk, lookup, ToEpochMillis(clock->Now()) / 1000);
  if (!identity.ok()) {
    ApiReply reply = LocalQueueApi::ErrorReply(
        401, "AuthenticationFailed", "Hawk authentication failed: " + identity.status().message());
    reply.headers.emplace_back("WWW-Authenticate", "hawk");
    return reply;
  }
  *client_id = identity->client_id;

  ApiCall call;
  call.service = service;
  call.method = hawk.method;
  call.path = path.substr(service_end + 4);
  call.query = query;
  call.body = std::move(*body);
  call.client_id = identity->client_id;
  call.scopes = std::move(identity->scopes);
  call.scopes.insert(call.scopes.end(), options.anonymous_scopes.begin(),
                     options.anonymous_scopes.end());
  return api->Handle(call);
}

ApiReply LocalQueueServer::Impl::ServeBlob(Poco::Net::HTTPServerRequest& req,
                                           Poco::Net::HTTPServerResponse& resp,
                                           const std::string& id, std::string* artifact, bool* sent,
                                           bool* close) {
  const std::string method = req.getMethod();
  if (method == "PUT") {
    int64_t declared = req.hasContentLength() ? req.getContentLength64() : -1;
    if (declared > options.max_blob_bytes) {
      *close = true;
      return LocalQueueApi::ErrorReply(
          413, "InputTooLarge",
          "artifacts are limited to " + std::to_string(options.max_blob_bytes) + " bytes");
    }
    auto write = [&](const std::string& tmp_path, int64_t* length) -> std::optional<ApiReply> {
      std::ofstream out(tmp_path, std::ios::binary | std::ios::trunc);
      if (!out) {
        return LocalQueueApi::ErrorReply(500, "InternalServerError", "cannot create a blob file");
      }
      std::istream& in = req.stream();
      char buf[kChunk];
      int64_t total = 0;
      try {
        while (in) {
          in.read(buf, sizeof buf);
          std::streamsize n = in.gcount();
          if (n <= 0) break;
          total += n;
          if (total > options.max_blob_bytes) {
            *close = true;
            return LocalQueueApi::ErrorReply(
                413, "InputTooLarge",
                "artifacts are limited to " + std::to_string(options.max_blob_bytes) + " bytes");
          }
          out.write(buf, n);
        }
      } catch (const Poco::Exception& e) {
        *close = true;
        return LocalQueueApi::ErrorReply(400, "InputError",
                                         "the upload was interrupted: " + e.displayText());
      }
      out.flush();
      if (!out) {
        return LocalQueueApi::ErrorReply(500, "InternalServerError", "cannot write the blob");
      }
      if (declared >= 0 && total != declared) {
        *close = true;
        return LocalQueueApi::ErrorReply(400, "InputError",
                                         "the body is shorter than its Content-Length");
      }
      *length = total;
      return std::nullopt;
    };
    ApiReply reply =
        api->PutBlob(id, req.getContentType(), req.get("Content-Encoding", ""), write, artifact);
    if (reply.status != 200) {
      // The body was not read: do not reuse the connection.
      *close = true;
    }
    return reply;
  }
  if (method != "GET" && method != "HEAD") {
    return LocalQueueApi::ErrorReply(405, "MethodNotAllowed", "blobs take PUT, GET and HEAD");
  }
  BlobFile blob;
  if (auto error = api->GetBlob(id, &blob)) return *error;
  *artifact = blob.artifact;
  std::ifstream in(blob.path, std::ios::binary);
  if (!in) return LocalQueueApi::ErrorReply(404, "ResourceNotFound", "the blob's file is missing");
  resp.setStatusAndReason(Poco::Net::HTTPResponse::HTTP_OK);
  resp.setContentType(blob.content_type);
  if (!blob.content_encoding.empty()) resp.set("Content-Encoding", blob.content_encoding);
  resp.setContentLength64(blob.length);
  std::ostream& out = resp.send();
  *sent = true;
  if (method == "GET") {
    char buf[kChunk];
    int64_t left = blob.length;
    while (left > 0 && in && out) {
      in.read(buf, static_cast<std::streamsize>(std::min<int64_t>(left, sizeof buf)));
      std::streamsize n = in.gcount();
      if (n <= 0) break;
      out.write(buf, n);
      left -= n;
    }
    out.flush();
  }
  ApiReply ok;
  ok.status = 200;
  return ok;
}

LocalQueueServer::LocalQueueServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<LocalQueueServer>> LocalQueueServer::Start(LocalQueueOptions options) {
  if (options.data_dir.empty()) return Status(Code::kInvalidArgument, "no data directory given");
  auto impl = std::make_unique<Impl>();
  impl->clock = options.clock ? options.clock : &impl->system_clock;
  impl->blob_dir = (fs::path(options.data_dir) / "blobs").string();
  std::error_code ec;
  fs::create_directories(impl->blob_dir, ec);
  if (ec) {
    return Status(Code::kInternal, "cannot create " + impl->blob_dir + ": " + ec.message());
  }
  std::string lock_path = (fs::path(options.data_dir) / "local-queue.lock").string();
  impl->lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (impl->lock_fd < 0) {
    return Status(Code::kInternal, "cannot open " + lock_path + ": " + std::strerror(errno));
  }
  if (::flock(impl->lock_fd, LOCK_EX | LOCK_NB) != 0) {
    return Status(Code::kUnavailable, "another local-queue is already serving " + options.data_dir);
  }
  // Partial uploads left by a crash are garbage.
  for (fs::directory_iterator it(impl->blob_dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().filename().string().find(".part-") != std::string::npos) {
      std::error_code ignored;
      fs::remove(it->path(), ignored);
    }
  }
  auto store = LocalQueueStore::Open((fs::path(options.data_dir) / "local-queue.db").string());
  if (!store.ok()) return store.status();
  impl->store = std::move(*store);

  auto secret = impl->store->GetSetting(kIssuerSetting);
  if (!secret.ok()) return secret.status();
  std::string issuer_token;
  if (*secret) {
    issuer_token = **secret;
  } else {
    issuer_token = NewSlugId() + NewSlugId();
    Status st = impl->store->PutSetting(kIssuerSetting, issuer_token);
    if (!st.ok()) return st;
  }
  for (const auto& c : options.clients) {
    if (c.client_id == kIssuerClientId) {
      return Status(Code::kInvalidArgument,
                    std::string("clientId ") + kIssuerClientId + " is reserved for local-queue");
    }
    impl->clients[c.client_id] = HawkClient{c.access_token, c.scopes};
  }
  impl->clients[kIssuerClientId] = HawkClient{issuer_token, {"*"}};

  HttpServerOptions http;
  http.host = options.host;
  http.port = options.port;
  http.min_threads = 2;
  http.max_threads = std::max(4, options.max_threads);
  http.max_queued = 256;
  http.keep_alive = true;
  auto listening = HttpServer::Listen(http);
  if (!listening.ok()) return listening.status();
  impl->http = std::move(*listening);
  impl->port = impl->http->port();
  impl->root_url = options.root_url;
  while (!impl->root_url.empty() && impl->root_url.back() == '/') impl->root_url.pop_back();
  if (impl->root_url.empty()) {
    impl->root_url = "http://" + UrlHost(options.host) + ":" + std::to_string(impl->port);
  }

  LocalQueueApiOptions api_options;
  api_options.root_url = impl->root_url;
  api_options.blob_dir = impl->blob_dir;
  api_options.issuer = Credentials{kIssuerClientId, issuer_token, ""};
  api_options.claim_timeout = options.claim_timeout;
  api_options.claim_poll_timeout = options.claim_poll_timeout;
  impl->api = std::make_unique<LocalQueueApi>(*impl->store, *impl->clock, api_options);
  impl->options = std::move(options);

  if (Status s = impl->http->Serve(new HandlerFactory(*impl)); !s.ok()) return s;

  Impl* raw = impl.get();
  impl->sweeper = std::thread([raw] {
    std::unique_lock lock(raw->sweep_mu);
    while (!raw->stopping) {
      raw->sweep_cv.wait_for(lock, raw->options.sweep_interval);
      if (raw->stopping) break;
      lock.unlock();
      raw->api->Sweep();
      lock.lock();
    }
  });
  return std::unique_ptr<LocalQueueServer>(new LocalQueueServer(std::move(impl)));
}

LocalQueueServer::~LocalQueueServer() { Stop(); }

void LocalQueueServer::Stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  {
    std::lock_guard lock(impl_->sweep_mu);
    impl_->stopping = true;
  }
  impl_->sweep_cv.notify_all();
  if (impl_->sweeper.joinable()) impl_->sweeper.join();
  impl_->api->Shutdown();
  impl_->http->Stop();
}

int LocalQueueServer::port() const { return impl_->port; }
const std::string& LocalQueueServer::root_url() const { return impl_->root_url; }
LocalQueueApi& LocalQueueServer::api() { return *impl_->api; }

}  // namespace docker_worker
