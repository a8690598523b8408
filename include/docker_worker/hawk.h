// Hawk authentication exactly as Taskcluster uses it (HMAC-SHA256 header scheme v1, the
// access token's UTF-8 bytes as the key, `ext` carrying certificate and authorizedScopes), both
// sides: signing requests (clients) and verifying them (local-queue).
//
// Pure functions of their inputs: time and randomness are parameters, so every official vector
// replays byte for byte. Secrets (access tokens, temporary keys) never appear in a returned
// error message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "docker_worker/json.h"
#include "docker_worker/status.h"

namespace docker_worker {

// Taskcluster credentials. `certificate` is the JSON text of a temporary credential's
// certificate ("" for permanent credentials), exactly as the queue or the environment hands it.
struct Credentials {
  std::string client_id;
  std::string access_token;
  std::string certificate;
  bool empty() const { return client_id.empty(); }
};

// What signing needs besides the credentials.
struct HawkSignOptions {
  int64_t ts = 0;                                             // unix seconds
  std::string nonce;                                          // any short string; fresh per attempt
  std::optional<std::vector<std::string>> authorized_scopes;  // nullopt: not sent
  std::optional<std::string> payload_hash;  // base64 payload hash; official clients never send it
};

// The parts of a URL that Hawk signs: resource = path + "?" + query exactly as sent (percent
// encoding preserved), host lower-cased without port, port explicit or 80/443 by scheme.
// An IPv6 literal keeps its brackets ("[::1]"), as in the JS client and the Host header.
struct HawkTarget {
  std::string resource;
  std::string host;
  int port = 0;
};
Result<HawkTarget> HawkTargetFromUrl(std::string_view url);

// The `ext` attribute: base64 of {"certificate": <object>, "authorizedScopes": [...]} with
// absent parts left out, "" when both are absent. A certificate that is not a JSON object is an
// error (the server rejects a string).
Result<std::string> HawkExt(const Credentials& creds,
                            const std::optional<std::vector<std::string>>& authorized_scopes);

// The optional Hawk payload hash (standard base64 SHA-256 of "hawk.1.payload\n<content type,
// lower-cased, parameters dropped>\n<payload>\n"), for callers that choose to send `hash`.
std::string HawkPayloadHash(std::string_view content_type, std::string_view payload);

// The normalized string (type "header" or "bewit") and its MAC (standard base64).
std::string HawkNormalizedString(std::string_view type, int64_t ts, std::string_view nonce,
                                 std::string_view method, const HawkTarget& target,
                                 std::string_view hash, std::string_view ext);
std::string HawkMac(std::string_view key, std::string_view normalized);

// `Hawk id="...", ts="...", nonce="..."[, hash="..."][, ext="..."], mac="..."`
Result<std::string> HawkAuthorizationHeader(const Credentials& creds, std::string_view method,
                                            std::string_view url, const HawkSignOptions& options);

// `url` with a bewit query parameter valid until `expires` (unix seconds); GET only.
Result<std::string> HawkSignUrl(const Credentials& creds, std::string_view url, int64_t expires,
                                const std::optional<std::vector<std::string>>& authorized_scopes);

// Temporary credentials as the auth service issues them (named when `name` is non-empty).
// `start`/`expiry` in epoch milliseconds; `seed` is 44 characters (two slugids).
Result<Credentials> CreateTemporaryCredentials(const Credentials& issuer, std::string_view name,
                                               const std::vector<std::string>& scopes,
                                               int64_t start, int64_t expiry,
                                               std::string_view seed);

// --- Verification (server side) ---

// A client the verifier knows: its permanent access token and scopes.
struct HawkClient {
  std::string access_token;
  std::vector<std::string> scopes;
};
using HawkClientLookup = std::function<std::optional<HawkClient>(const std::string& client_id)>;

// A request as the server received it.
struct HawkRequest {
  std::string method;
  std::string resource;       // raw path + query as received (bewit included, if any)
  std::string host;           // from the Host header, without port
  int port = 0;               // from the Host header, or by scheme
  std::string authorization;  // the Authorization header, "" when absent
  // The raw body and Content-Type. When `payload` is set and the header carries `hash`, the hash
  // must match HawkPayloadHash(content_type, *payload); when unset, a `hash` is only covered by
  // the MAC (official clients never send one). The viewed bytes must outlive HawkVerify.
  std::optional<std::string_view> payload;
  std::string content_type;
};

// Who made the request and with which scopes: the client's scopes, or the certificate's for
// temporary credentials, narrowed to authorizedScopes when given.
struct HawkIdentity {
  std::string client_id;
  std::vector<std::string> scopes;
};

// Authorization headers and bewit-carrying resources longer than this are refused unparsed.
inline constexpr size_t kHawkMaxInputBytes = 64 * 1024;

// Verifies a header or (GET/HEAD) bewit: MAC, timestamp within `skew_seconds` of `now` (unix
// seconds), certificate signature, validity window (5 min slack, at most 31 days) and issuer
// scopes, authorizedScopes satisfied by the credentials. A request with neither header nor
// bewit is anonymous: client_id "" and no scopes. Failure: kPermissionDenied with a message
// saying what was wrong (never a secret).
Result<HawkIdentity> HawkVerify(const HawkRequest& request, const HawkClientLookup& lookup,
                                int64_t now, int64_t skew_seconds = 900);

}  // namespace docker_worker
