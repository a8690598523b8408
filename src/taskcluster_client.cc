#include "docker_worker/taskcluster_client.h"

#include "docker_worker/backoff.h"

#include <sodium.h>

#include <algorithm>

namespace docker_worker {
namespace {

std::string Nonce() {
  static const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string nonce(8, 'x');
  for (char& c : nonce) c = kAlphabet[randombytes_uniform(sizeof kAlphabet - 1)];
  return nonce;
}

Code CodeForStatus(long status) {
  if (status == 401 || status == 403) return Code::kPermissionDenied;
  if (status == 404 || status == 410) return Code::kNotFound;
  if (status == 409) return Code::kConflict;
  if (status >= 500) return Code::kUnavailable;
  return Code::kInvalidArgument;
}

// The first line of the server's JSON "message", or the start of the body.
std::string ServerMessage(const std::string& body) {
  std::string message;
  auto doc = json::Parse(body);
  if (doc.ok()) message = json::GetString(*doc, "message").value_or("");
  if (message.empty()) message = body.substr(0, 200);
  size_t nl = message.find('\n');
  if (nl != std::string::npos) message.resize(nl);
  return message;
}

}  // namespace

Millis TaskclusterRetryDelay(int attempt) {
  static constexpr Backoff kRetry{.base_ms = 100, .factor = 2, .jitter = 0.25, .max_ms = 30000};
  return kRetry.Delay(attempt);
}

TaskclusterClient::TaskclusterClient(HttpClient& http, Clock& clock, std::string root_url,
                                     Credentials credentials)
    : http_(http), clock_(clock), root_url_([&] {
        while (!root_url.empty() && root_url.back() == '/') root_url.pop_back();
        return root_url;
      }()),
      credentials_(std::move(credentials)) {}

void TaskclusterClient::SetCredentials(Credentials credentials) {
  std::lock_guard lock(mu_);
  credentials_ = std::move(credentials);
}

Credentials TaskclusterClient::credentials() const {
  std::lock_guard lock(mu_);
  return credentials_;
}

std::string TaskclusterClient::Url(std::string_view service, std::string_view path) const {
  return root_url_ + "/api/" + std::string(service) + "/v1/" + std::string(path);
}

Result<HttpResponse> TaskclusterClient::Send(HttpRequest req, const TcCallOptions& options) {
  req.stop = options.stop;
  Result<HttpResponse> last = Status(Code::kUnavailable, "not sent");
  for (int attempt = 0; attempt <= options.max_retries; ++attempt) {
    if (attempt > 0) {
      if (!clock_.SleepUntil(clock_.Now() + TaskclusterRetryDelay(attempt), options.stop)) {
        return Status(Code::kCancelled, "cancelled");
      }
    }
    Credentials creds = credentials();  // the newest: reclaim may have swapped them
    if (!creds.empty()) {
      HawkSignOptions sign;
      sign.ts = ToEpochMillis(clock_.Now()) / 1000;
      sign.nonce = Nonce();
      sign.authorized_scopes = options.authorized_scopes;
      auto header = HawkAuthorizationHeader(creds, req.method, req.url, sign);
      if (!header.ok()) return header.status();
      req.headers.Set("Authorization", *header);
    }
    last = http_.Send(req);
    if (!last.ok()) {
      const Code code = last.status().code();
      if (code == Code::kUnavailable || code == Code::kDeadlineExceeded) continue;
      return last;
    }
    if (last->status < 500) return last;
  }
  return last;
}

Result<TcResponse> TaskclusterClient::Call(std::string_view method, std::string_view service,
                                           std::string_view path, const json::Value* body,
                                           const TcCallOptions& options) {
  HttpRequest req;
  req.method = std::string(method);
  req.url = Url(service, path);
  req.total_timeout = options.timeout;
  if (body) {
    req.body = json::Serialize(*body);
    req.headers.Set("Content-Type", "application/json");
  }
  req.headers.Set("Accept", "application/json");
  const std::string what = req.method + " " + std::string(service) + "/" + std::string(path);
  auto resp = Send(std::move(req), options);
  if (!resp.ok()) return resp.status().Prefixed(what + ": ");
  if (resp->ok() || resp->status == 303) {
    TcResponse out;
    out.status = resp->status;
    out.headers = std::move(resp->headers);
    if (!resp->body.empty()) {
      auto doc = json::Parse(resp->body);
      if (doc.ok()) out.body = std::move(*doc);
    }
    return out;
  }
  return Status(CodeForStatus(resp->status),
                what + ": " + std::to_string(resp->status) + " " + ServerMessage(resp->body));
}

}  // namespace docker_worker
