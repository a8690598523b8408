#include "docker_worker/taskcluster_client.h"

#include <sodium.h>

#include <algorithm>
#include <cmath>

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
  double base = 100.0 * std::ldexp(1.0, attempt);
  double jitter = 0.75 + 0.5 * (randombytes_uniform(1000001) / 1000000.0);
  return Millis(static_cast<int64_t>(std::min(base * jitter, 30000.0)));
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

Result<TcResponse> TaskclusterClient::Call(std::string_view method, std::string_view service,
                                           std::string_view path, const json::Value* body,
                                           const TcCallOptions& options) {
  HttpRequest req;
  req.method = std::string(method);
  req.url = Url(service, path);
  req.total_timeout = options.timeout;
  req.stop = options.stop;
  if (body) {
    req.body = json::Serialize(*body);
    req.headers.Set("Content-Type", "application/json");
  }
  req.headers.Set("Accept", "application/json");
  const std::string what = req.method + " " + std::string(service) + "/" + std::string(path);
  Status last;
  for (int attempt = 0; attempt <= options.max_retries; ++attempt) {
    if (attempt > 0) {
      if (!clock_.SleepUntil(clock_.Now() + TaskclusterRetryDelay(attempt), options.stop)) {
        return Status(Code::kCancelled, what + ": cancelled");
      }
    }
    Credentials creds = credentials();
    if (!creds.empty()) {
      HawkSignOptions sign;
      sign.ts = ToEpochMillis(clock_.Now()) / 1000;
      sign.nonce = Nonce();
      sign.authorized_scopes = options.authorized_scopes;
      auto header = HawkAuthorizationHeader(creds, req.method, req.url, sign);
      if (!header.ok()) return header.status().Prefixed(what + ": ");
      req.headers.Set("Authorization", *header);
    }
    auto resp = http_.Send(req);
    if (!resp.ok()) {
      last = resp.status().Prefixed(what + ": ");
      if (resp.status().code() == Code::kCancelled) return last;
      if (resp.status().code() == Code::kUnavailable ||
          resp.status().code() == Code::kDeadlineExceeded) {
        continue;
      }
      return last;
    }
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
    last = Status(CodeForStatus(resp->status),
                  what + ": " + std::to_string(resp->status) + " " + ServerMessage(resp->body));
    if (resp->status < 500) return last;
  }
  return last;
}

}  // namespace docker_worker
