#include "docker_worker/hawk.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sodium.h>

#include <array>
#include <cstring>
#include <utility>

#include "docker_worker/base64.h"
#include "docker_worker/scopes.h"

namespace docker_worker {
namespace {

constexpr int64_t kCertificateSlackMs = 5 * 60 * 1000;
constexpr int64_t kCertificateMaxSpanMs = int64_t{31} * 24 * 60 * 60 * 1000;
constexpr size_t kSeedLength = 44;
constexpr size_t kMaxTimestampDigits = 15;  // ~31 million years in seconds: no overflow anywhere

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// Raw HMAC-SHA256 of `data` keyed with the bytes of `key` (any length).
std::string HmacSha256(std::string_view key, std::string_view data) {
  crypto_auth_hmacsha256_state state;
  crypto_auth_hmacsha256_init(&state, Bytes(key), key.size());
  crypto_auth_hmacsha256_update(&state, Bytes(data), data.size());
  std::array<unsigned char, crypto_auth_hmacsha256_BYTES> mac;
  crypto_auth_hmacsha256_final(&state, mac.data());
  std::string out(reinterpret_cast<const char*>(mac.data()), mac.size());
  sodium_memzero(&state, sizeof state);
  return out;
}

// The access token of temporary credentials: base64url (no padding) HMAC(issuer token, seed).
std::string TemporaryAccessToken(std::string_view issuer_token, std::string_view seed) {
  return Base64Encode(HmacSha256(issuer_token, seed), Base64::kUrlSafeUnpadded);
}

bool ConstantTimeEqual(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }
char Upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Characters Hawk accepts inside a quoted header attribute value: printable ASCII except `"`
// and `\`.
bool IsAttributeChar(char c) { return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\'; }

bool IsAttributeValue(std::string_view v) {
  if (v.empty()) return false;
  for (char c : v) {
    if (!IsAttributeChar(c)) return false;
  }
  return true;
}

// An HTTP method: a non-empty RFC 9110 token.
bool IsMethod(std::string_view m) {
  if (m.empty()) return false;
  for (char c : m) {
    bool alnum = IsDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alnum && std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

// Taskcluster's valid scope: printable ASCII.
bool IsValidScope(std::string_view s) {
  for (char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

// A canonical non-negative decimal of at most kMaxTimestampDigits digits ("0" or no leading 0).
std::optional<int64_t> ParseTimestamp(std::string_view s) {
  if (s.empty() || s.size() > kMaxTimestampDigits || (s.size() > 1 && s[0] == '0')) {
    return std::nullopt;
  }
  int64_t v = 0;
  for (char c : s) {
    if (!IsDigit(c)) return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

constexpr int kMaxJsonDepth = 16;

Status Invalid(std::string message) { return Status(Code::kInvalidArgument, std::move(message)); }
Status Denied(std::string message) { return Status(Code::kPermissionDenied, std::move(message)); }

// --- signing helpers ---

Status CheckSigningCredentials(const Credentials& creds) {
  if (creds.client_id.empty() || creds.access_token.empty()) {
    return Invalid("Hawk: credentials need a clientId and an accessToken");
  }
  if (!IsAttributeValue(creds.client_id)) {
    return Invalid("Hawk: clientId contains a character not allowed in a header value");
  }
  return Status::Ok();
}

// The signature of a certificate (standard base64 HMAC keyed with the issuer's token).
std::string CertificateSignature(std::string_view issuer_token, std::string_view client_id,
                                 const std::optional<std::string>& issuer, std::string_view seed,
                                 int64_t start, int64_t expiry,
                                 const std::vector<std::string>& scopes) {
  std::string text = "version:1\n";
  if (issuer) {
    text += "clientId:";
    text += client_id;
    text += "\nissuer:";
    text += *issuer;
    text += "\n";
  }
  text += "seed:";
  text += seed;
  text += "\nstart:" + std::to_string(start) + "\nexpiry:" + std::to_string(expiry) + "\nscopes:";
  for (const auto& scope : scopes) {
    text += "\n";
    text += scope;
  }
  return Base64Encode(HmacSha256(issuer_token, text));
}

// --- verification helpers ---

// The attributes of an Authorization header; each may be absent.
struct HeaderAttributes {
  std::optional<std::string> id, ts, nonce, hash, ext, mac;
};

std::optional<std::string>* AttributeSlot(HeaderAttributes& attrs, std::string_view name) {
  if (name == "id") return &attrs.id;
  if (name == "ts") return &attrs.ts;
  if (name == "nonce") return &attrs.nonce;
  if (name == "hash") return &attrs.hash;
  if (name == "ext") return &attrs.ext;
  if (name == "mac") return &attrs.mac;
  return nullptr;
}

bool IsSpace(char c) { return c == ' ' || c == '\t'; }
bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsDigit(c) || c == '_';
}

// Parses `Hawk name="value", ...` (any order, optional trailing comma). Values never reach the
// error messages; attribute names do (they are short \w+ words).
Result<HeaderAttributes> ParseAuthorizationHeader(std::string_view header) {
  constexpr std::string_view kBad = "Authorization header: ";
  size_t i = 0;
  while (i < header.size() && IsSpace(header[i])) ++i;
  size_t scheme_start = i;
  while (i < header.size() && IsNameChar(header[i])) ++i;
  std::string_view scheme = header.substr(scheme_start, i - scheme_start);
  if (scheme.size() != 4 || Lower(scheme[0]) != 'h' || Lower(scheme[1]) != 'a' ||
      Lower(scheme[2]) != 'w' || Lower(scheme[3]) != 'k') {
    return Denied(std::string(kBad) + "not a Hawk header");
  }
  if (i < header.size() && !IsSpace(header[i])) {
    return Denied(std::string(kBad) + "malformed scheme");
  }
  HeaderAttributes attrs;
  bool any = false;
  while (true) {
    while (i < header.size() && IsSpace(header[i])) ++i;
    if (i == header.size()) break;
    size_t name_start = i;
    while (i < header.size() && IsNameChar(header[i])) ++i;
    std::string_view name = header.substr(name_start, i - name_start);
    if (name.empty() || name.size() > 16) {
      return Denied(std::string(kBad) + "malformed attribute name");
    }
    if (i + 1 >= header.size() || header[i] != '=' || header[i + 1] != '"') {
      return Denied(std::string(kBad) + "attribute " + std::string(name) +
                    " is not of the form name=\"value\"");
    }
    i += 2;
    size_t value_start = i;
    while (i < header.size() && header[i] != '"') {
      if (!IsAttributeChar(header[i])) {
        return Denied(std::string(kBad) + "attribute " + std::string(name) +
                      " contains a character not allowed in a value");
      }
      ++i;
    }
    if (i == header.size()) {
      return Denied(std::string(kBad) + "attribute " + std::string(name) + " is not terminated");
    }
    std::string_view value = header.substr(value_start, i - value_start);
    ++i;  // closing quote
    std::optional<std::string>* slot = AttributeSlot(attrs, name);
    if (slot == nullptr) {
      return Denied(std::string(kBad) + "unknown attribute " + std::string(name));
    }
    if (slot->has_value()) {
      return Denied(std::string(kBad) + "duplicate attribute " + std::string(name));
    }
    if (value.empty()) {
      return Denied(std::string(kBad) + "attribute " + std::string(name) + " is empty");
    }
    *slot = std::string(value);
    any = true;
    while (i < header.size() && IsSpace(header[i])) ++i;
    if (i == header.size()) break;
    if (header[i] != ',') {
      return Denied(std::string(kBad) + "expected a comma after attribute " + std::string(name));
    }
    ++i;
  }
  if (!any) return Denied(std::string(kBad) + "no attributes");
  for (auto [name, value] : {std::pair{"id", &attrs.id}, std::pair{"ts", &attrs.ts},
                             std::pair{"nonce", &attrs.nonce}, std::pair{"mac", &attrs.mac}}) {
    if (!value->has_value()) {
      return Denied(std::string(kBad) + "missing attribute " + name);
    }
  }
  return attrs;
}

// A temporary credential's certificate, checked for shape (not yet for signature or time).
struct Certificate {
  std::vector<std::string> scopes;
  int64_t start = 0;
  int64_t expiry = 0;
  std::string seed;
  std::string signature;
  std::optional<std::string> issuer;
};

// What ext carries.
struct ExtData {
  std::optional<Certificate> certificate;
  std::optional<std::vector<std::string>> authorized_scopes;
};

Result<std::vector<std::string>> ScopeList(const json::Value& v, const std::string& what) {
  if (!v.IsArray()) return Denied(what + " must be an array of scopes");
  std::vector<std::string> out;
  out.reserve(v.Size());
  for (const auto& item : v.GetArray()) {
    if (!item.IsString()) return Denied(what + " must be an array of strings");
    std::string_view s(item.GetString(), item.GetStringLength());
    if (!IsValidScope(s)) return Denied(what + " contains an invalid scope");
    out.emplace_back(s);
  }
  return out;
}

Result<Certificate> ParseCertificate(const json::Value& v) {
  if (!v.IsObject()) return Denied("ext.certificate must be a JSON object");
  Certificate cert;
  if (json::GetInt(v, "version") != std::optional<int64_t>(1)) {
    return Denied("ext.certificate.version must be 1");
  }
  auto seed = json::GetString(v, "seed");
  if (!seed) return Denied("ext.certificate.seed must be a string");
  if (seed->size() != kSeedLength) return Denied("ext.certificate.seed is not 44 characters");
  cert.seed = std::move(*seed);
  auto start = json::GetInt(v, "start");
  auto expiry = json::GetInt(v, "expiry");
  if (!start || *start < 0) return Denied("ext.certificate.start must be a non-negative integer");
  if (!expiry || *expiry < 0) {
    return Denied("ext.certificate.expiry must be a non-negative integer");
  }
  cert.start = *start;
  cert.expiry = *expiry;
  const json::Value* scopes = json::Find(v, "scopes");
  if (scopes == nullptr) return Denied("ext.certificate.scopes is missing");
  auto list = ScopeList(*scopes, "ext.certificate.scopes");
  if (!list.ok()) return list.status();
  cert.scopes = std::move(*list);
  auto signature = json::GetString(v, "signature");
  if (!signature) return Denied("ext.certificate.signature must be a string");
  cert.signature = std::move(*signature);
  if (const json::Value* issuer = json::Find(v, "issuer")) {
    if (!issuer->IsString() || issuer->GetStringLength() == 0) {
      return Denied("ext.certificate.issuer must be a non-empty string");
    }
    cert.issuer = std::string(issuer->GetString(), issuer->GetStringLength());
    if (!IsAttributeValue(*cert.issuer)) {
      return Denied("ext.certificate.issuer is not a valid clientId");
    }
  }
  return cert;
}

Result<ExtData> ParseExt(std::string_view ext) {
  ExtData out;
  if (ext.empty()) return out;
  auto decoded = Base64Decode(ext, {Base64::kStandard, Base64::kStandardUnpadded});
  if (!decoded) return Denied("ext is not valid base64");
  if (!json::NestingWithin(*decoded, kMaxJsonDepth)) return Denied("ext is nested too deeply");
  auto doc = json::Parse(*decoded);
  if (!doc.ok()) return Denied("ext is not valid JSON");
  if (!doc->IsObject()) return Denied("ext must be a JSON object");
  if (const json::Value* cert = json::Find(*doc, "certificate")) {
    auto parsed = ParseCertificate(*cert);
    if (!parsed.ok()) return parsed.status();
    out.certificate = std::move(*parsed);
  }
  if (const json::Value* scopes = json::Find(*doc, "authorizedScopes")) {
    auto list = ScopeList(*scopes, "ext.authorizedScopes");
    if (!list.ok()) return list.status();
    out.authorized_scopes = std::move(*list);
  }
  return out;
}

// A request's signed claims, from a header or a bewit.
struct SignedClaims {
  std::string_view type;  // "header" or "bewit"
  std::string id;
  int64_t ts = 0;
  std::string nonce;
  std::string method;
  std::string resource;
  std::string hash;
  std::string ext;
  std::string mac;
};

std::string Quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

// Checks the MAC and then everything the credentials imply. `check_skew` for headers.
Result<HawkIdentity> Authenticate(const SignedClaims& claims, const HawkRequest& request,
                                  const HawkClientLookup& lookup, int64_t now, int64_t skew_seconds,
                                  bool check_skew) {
  auto ext = ParseExt(claims.ext);
  if (!ext.ok()) return ext.status();
  const std::optional<Certificate>& cert = ext->certificate;
  const bool named = cert && cert->issuer;
  const std::string issuer_id = named ? *cert->issuer : claims.id;
  if (!lookup) return Denied("no client lookup configured");
  std::optional<HawkClient> client = lookup(issuer_id);
  if (!client) {
    return Denied(std::string(named ? "unknown certificate issuer " : "unknown clientId ") +
                  Quoted(issuer_id));
  }
  const std::string key =
      cert ? TemporaryAccessToken(client->access_token, cert->seed) : client->access_token;

  HawkTarget target{claims.resource, request.host, request.port};
  const std::string expected_mac =
      HawkMac(key, HawkNormalizedString(claims.type, claims.ts, claims.nonce, claims.method, target,
                                        claims.hash, claims.ext));
  if (!ConstantTimeEqual(expected_mac, claims.mac)) {
    return Denied("invalid MAC for clientId " + Quoted(claims.id) +
                  " (wrong accessToken, or method, resource, host, port or ext differ from what "
                  "was signed)");
  }
  if (!claims.hash.empty() && request.payload) {
    if (!ConstantTimeEqual(HawkPayloadHash(request.content_type, *request.payload), claims.hash)) {
      return Denied("payload hash does not match the body");
    }
  }
  if (check_skew) {
    int64_t delta = now - claims.ts;
    if (delta > skew_seconds || delta < -skew_seconds) {
      return Denied("ts is " + std::to_string(delta < 0 ? -delta : delta) +
                    " s away from the server clock (allowed skew " + std::to_string(skew_seconds) +
                    " s)");
    }
  }

  std::vector<std::string> scopes = client->scopes;
  if (cert) {
    std::optional<std::string> signed_issuer = cert->issuer;
    const std::string expected_signature =
        CertificateSignature(client->access_token, claims.id, signed_issuer, cert->seed,
                             cert->start, cert->expiry, cert->scopes);
    if (!ConstantTimeEqual(expected_signature, cert->signature)) {
      return Denied(named ? "ext.certificate.signature is not valid, or wrong clientId provided"
                          : "ext.certificate.signature is not valid");
    }
    const int64_t now_ms = now * 1000;
    if (cert->start > now_ms + kCertificateSlackMs) {
      return Denied("ext.certificate is not valid yet (start is in the future)");
    }
    if (cert->expiry < now_ms - kCertificateSlackMs) {
      return Denied("ext.certificate has expired");
    }
    if (cert->expiry < cert->start) return Denied("ext.certificate expires before it starts");
    if (cert->expiry - cert->start > kCertificateMaxSpanMs) {
      return Denied("ext.certificate spans more than 31 days");
    }
    if (named && issuer_id != claims.id) {
      const std::string create = "auth:create-client:" + claims.id;
      if (!ScopeSatisfied(client->scopes, create)) {
        return Denied("ext.certificate issuer " + Quoted(issuer_id) + " lacks scope " + create);
      }
    }
    for (const auto& scope : cert->scopes) {
      if (!ScopeSatisfied(client->scopes, scope)) {
        return Denied("ext.certificate issuer " + Quoted(issuer_id) +
                      " does not satisfy certificate scope " + Quoted(scope));
      }
    }
    scopes = cert->scopes;
  }
  if (ext->authorized_scopes) {
    for (const auto& scope : *ext->authorized_scopes) {
      if (!ScopeSatisfied(scopes, scope)) {
        return Denied("credentials do not satisfy authorizedScope " + Quoted(scope));
      }
    }
    scopes = *ext->authorized_scopes;
  }
  return HawkIdentity{claims.id, std::move(scopes)};
}

// Where a `bewit` query parameter sits in a resource.
struct BewitLocation {
  size_t separator = 0;  // index of the '?' or '&' before "bewit="
  std::string_view value;
  std::string resource_without;  // the resource as signed
};

// The last `bewit` parameter of the query, if any.
std::optional<BewitLocation> FindBewit(std::string_view resource) {
  size_t query = resource.find('?');
  if (query == std::string_view::npos) return std::nullopt;
  constexpr std::string_view kName = "bewit=";
  for (size_t i = resource.size(); i-- > query;) {
    if ((resource[i] != '?' && resource[i] != '&') ||
        resource.substr(i + 1, kName.size()) != kName) {
      continue;
    }
    BewitLocation loc;
    loc.separator = i;
    size_t value_start = i + 1 + kName.size();
    size_t value_end = resource.find('&', value_start);
    loc.value =
        resource.substr(value_start, value_end == std::string_view::npos ? std::string_view::npos
                                                                         : value_end - value_start);
    loc.resource_without = std::string(resource.substr(0, i));
    if (value_end != std::string_view::npos) {
      loc.resource_without += resource[i];
      loc.resource_without += resource.substr(value_end + 1);
    }
    return loc;
  }
  return std::nullopt;
}

Result<HawkIdentity> VerifyBewit(const HawkRequest& request, const BewitLocation& loc,
                                 const HawkClientLookup& lookup, int64_t now) {
  if (request.method != "GET" && request.method != "HEAD") {
    return Denied("bewit: only GET and HEAD requests may use a bewit");
  }
  if (loc.value.empty()) return Denied("bewit: empty");
  auto decoded = Base64Decode(loc.value, {Base64::kUrlSafeUnpadded});
  if (!decoded) return Denied("bewit: not valid base64url");
  std::string_view parts[4];
  std::string_view rest = *decoded;
  for (int k = 0; k < 3; ++k) {
    size_t sep = rest.find('\\');
    if (sep == std::string_view::npos) return Denied("bewit: expected id\\exp\\mac\\ext");
    parts[k] = rest.substr(0, sep);
    rest.remove_prefix(sep + 1);
  }
  parts[3] = rest;
  if (rest.find('\\') != std::string_view::npos) {
    return Denied("bewit: expected id\\exp\\mac\\ext");
  }
  if (parts[0].empty() || parts[1].empty() || parts[2].empty()) {
    return Denied("bewit: missing id, exp or mac");
  }
  if (!IsAttributeValue(parts[0])) return Denied("bewit: invalid clientId");
  auto exp = ParseTimestamp(parts[1]);
  if (!exp) return Denied("bewit: exp is not a timestamp");
  if (*exp <= now) return Denied("bewit: expired");
  SignedClaims claims;
  claims.type = "bewit";
  claims.id = std::string(parts[0]);
  claims.ts = *exp;
  claims.method = "GET";
  claims.resource = loc.resource_without;
  claims.mac = std::string(parts[2]);
  claims.ext = std::string(parts[3]);
  return Authenticate(claims, request, lookup, now, 0, /*check_skew=*/false);
}

Result<HawkIdentity> VerifyHeader(const HawkRequest& request, const HawkClientLookup& lookup,
                                  int64_t now, int64_t skew_seconds) {
  auto attrs = ParseAuthorizationHeader(request.authorization);
  if (!attrs.ok()) return attrs.status();
  auto ts = ParseTimestamp(*attrs->ts);
  if (!ts) return Denied("Authorization header: ts is not a timestamp in seconds");
  SignedClaims claims;
  claims.type = "header";
  claims.id = std::move(*attrs->id);
  claims.ts = *ts;
  claims.nonce = std::move(*attrs->nonce);
  claims.method = request.method;
  claims.resource = request.resource;
  claims.hash = attrs->hash.value_or("");
  claims.ext = attrs->ext.value_or("");
  claims.mac = std::move(*attrs->mac);
  return Authenticate(claims, request, lookup, now, skew_seconds, /*check_skew=*/true);
}

}  // namespace

Result<HawkTarget> HawkTargetFromUrl(std::string_view url) {
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return Invalid("Hawk: URL has no scheme");
  std::string scheme;
  for (char c : url.substr(0, scheme_end)) scheme += Lower(c);
  int default_port = 0;
  if (scheme == "http") {
    default_port = 80;
  } else if (scheme == "https") {
    default_port = 443;
  } else {
    return Invalid("Hawk: URL scheme must be http or https");
  }
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return Invalid("Hawk: URL contains whitespace or a control character");
    }
  }
  std::string_view rest = url.substr(scheme_end + 3);
  size_t authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view tail =
      authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
  if (size_t at = authority.rfind('@'); at != std::string_view::npos) {
    authority.remove_prefix(at + 1);
  }
  std::string_view host;
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return Invalid("Hawk: URL has an unterminated IPv6 host");
    host = authority.substr(0, close + 1);
    for (char c : host.substr(1, host.size() - 2)) {
      bool hex = IsDigit(c) || (Lower(c) >= 'a' && Lower(c) <= 'f');
      if (!hex && c != ':' && c != '.') return Invalid("Hawk: URL has an invalid IPv6 host");
    }
    if (host.size() < 4) return Invalid("Hawk: URL has an invalid IPv6 host");
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return Invalid("Hawk: URL has garbage after the IPv6 host");
      port_text = after.substr(1);
    }
  } else {
    size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
    for (char c : host) {
      if (c == '"' || c == '\\' || c == '[' || c == ']' || c == '<' || c == '>' || c == '{' ||
          c == '}' || c == '|' || c == '^' || c == '`') {
        return Invalid("Hawk: URL has an invalid host");
      }
    }
  }
  if (host.empty()) return Invalid("Hawk: URL has no host");
  int port = default_port;
  if (!port_text.empty()) {
    if (port_text.size() > 5) return Invalid("Hawk: URL port is out of range");
    port = 0;
    for (char c : port_text) {
      if (!IsDigit(c)) return Invalid("Hawk: URL port is not a number");
      port = port * 10 + (c - '0');
    }
    if (port < 1 || port > 65535) return Invalid("Hawk: URL port is out of range");
  }
  HawkTarget target;
  for (char c : host) target.host += Lower(c);
  target.port = port;
  tail = tail.substr(0, tail.find('#'));
  if (tail.empty() || tail.front() != '/') target.resource = "/";
  target.resource += tail;
  return target;
}

Result<std::string> HawkExt(const Credentials& creds,
                            const std::optional<std::vector<std::string>>& authorized_scopes) {
  if (creds.certificate.empty() && !authorized_scopes) return std::string();
  json::Document ext;
  ext.SetObject();
  auto& alloc = ext.GetAllocator();
  if (!creds.certificate.empty()) {
    if (!json::NestingWithin(creds.certificate, kMaxJsonDepth)) {
      return Invalid("Hawk: certificate is nested too deeply");
    }
    auto cert = json::Parse(creds.certificate);
    if (!cert.ok()) return Invalid("Hawk: certificate is not valid JSON");
    if (!cert->IsObject()) return Invalid("Hawk: certificate must be a JSON object");
    json::Value copy(*cert, alloc);
    ext.AddMember("certificate", copy, alloc);
  }
  if (authorized_scopes) {
    json::Value list(rapidjson::kArrayType);
    for (const auto& scope : *authorized_scopes) list.PushBack(json::Str(scope, alloc), alloc);
    ext.AddMember("authorizedScopes", list, alloc);
  }
  return Base64Encode(json::Serialize(ext));
}

std::string HawkPayloadHash(std::string_view content_type, std::string_view payload) {
  std::string_view mime = content_type.substr(0, content_type.find(';'));
  while (!mime.empty() && IsSpace(mime.front())) mime.remove_prefix(1);
  while (!mime.empty() && IsSpace(mime.back())) mime.remove_suffix(1);
  std::string text = "hawk.1.payload\n";
  for (char c : mime) text += Lower(c);
  text += "\n";
  text += payload;
  text += "\n";
  std::array<unsigned char, crypto_hash_sha256_BYTES> digest;
  crypto_hash_sha256(digest.data(), Bytes(text), text.size());
  return Base64Encode(
      std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
}

std::string HawkNormalizedString(std::string_view type, int64_t ts, std::string_view nonce,
                                 std::string_view method, const HawkTarget& target,
                                 std::string_view hash, std::string_view ext) {
  std::string s = "hawk.1.";
  s += type;
  s += "\n" + std::to_string(ts) + "\n";
  s += nonce;
  s += "\n";
  for (char c : method) s += Upper(c);
  s += "\n";
  s += target.resource;
  s += "\n";
  for (char c : target.host) s += Lower(c);
  s += "\n" + std::to_string(target.port) + "\n";
  s += hash;
  s += "\n";
  for (char c : ext) {
    if (c == '\\') {
      s += "\\\\";
    } else if (c == '\n') {
      s += "\\n";
    } else {
      s += c;
    }
  }
  s += "\n";
  return s;
}

std::string HawkMac(std::string_view key, std::string_view normalized) {
  return Base64Encode(HmacSha256(key, normalized));
}

Result<std::string> HawkAuthorizationHeader(const Credentials& creds, std::string_view method,
                                            std::string_view url, const HawkSignOptions& options) {
  if (Status s = CheckSigningCredentials(creds); !s.ok()) return s;
  if (!IsMethod(method)) return Invalid("Hawk: invalid HTTP method");
  if (options.ts < 0) return Invalid("Hawk: ts must not be negative");
  if (!IsAttributeValue(options.nonce)) {
    return Invalid("Hawk: nonce must be non-empty, printable, without '\"' or '\\'");
  }
  if (options.payload_hash && !IsAttributeValue(*options.payload_hash)) {
    return Invalid("Hawk: payload hash must be non-empty, printable, without '\"' or '\\'");
  }
  auto target = HawkTargetFromUrl(url);
  if (!target.ok()) return target.status();
  auto ext = HawkExt(creds, options.authorized_scopes);
  if (!ext.ok()) return ext.status();
  const std::string hash = options.payload_hash.value_or("");
  const std::string mac = HawkMac(
      creds.access_token,
      HawkNormalizedString("header", options.ts, options.nonce, method, *target, hash, *ext));
  std::string header = "Hawk id=\"" + creds.client_id + "\", ts=\"" + std::to_string(options.ts) +
                       "\", nonce=\"" + options.nonce + "\"";
  if (!hash.empty()) header += ", hash=\"" + hash + "\"";
  if (!ext->empty()) header += ", ext=\"" + *ext + "\"";
  header += ", mac=\"" + mac + "\"";
  return header;
}

Result<std::string> HawkSignUrl(const Credentials& creds, std::string_view url, int64_t expires,
                                const std::optional<std::vector<std::string>>& authorized_scopes) {
  if (Status s = CheckSigningCredentials(creds); !s.ok()) return s;
  if (expires < 0) return Invalid("Hawk: bewit expiry must not be negative");
  auto target = HawkTargetFromUrl(url);
  if (!target.ok()) return target.status();
  if (FindBewit(target->resource)) return Invalid("Hawk: URL already has a bewit parameter");
  auto ext = HawkExt(creds, authorized_scopes);
  if (!ext.ok()) return ext.status();
  const std::string mac = HawkMac(
      creds.access_token, HawkNormalizedString("bewit", expires, "", "GET", *target, "", *ext));
  const std::string bewit =
      Base64Encode(creds.client_id + "\\" + std::to_string(expires) + "\\" + mac + "\\" + *ext,
                   Base64::kUrlSafeUnpadded);
  std::string_view base = url.substr(0, url.find('#'));
  std::string_view fragment = url.substr(base.size());
  std::string signed_url(base);
  signed_url += base.find('?') == std::string_view::npos ? "?bewit=" : "&bewit=";
  signed_url += bewit;
  signed_url += fragment;
  return signed_url;
}

Result<Credentials> CreateTemporaryCredentials(const Credentials& issuer, std::string_view name,
                                               const std::vector<std::string>& scopes,
                                               int64_t start, int64_t expiry,
                                               std::string_view seed) {
  if (Status s = CheckSigningCredentials(issuer); !s.ok()) return s;
  if (!issuer.certificate.empty()) {
    return Invalid("Hawk: temporary credentials cannot issue temporary credentials");
  }
  if (!name.empty() && !IsAttributeValue(name)) {
    return Invalid("Hawk: temporary clientId contains a character not allowed in a header value");
  }
  if (seed.size() != kSeedLength) return Invalid("Hawk: certificate seed must be 44 characters");
  if (start < 0 || expiry <= start) {
    return Invalid("Hawk: certificate start must be non-negative and before expiry");
  }
  if (expiry - start > kCertificateMaxSpanMs) {
    return Invalid("Hawk: temporary credentials cannot span more than 31 days");
  }
  for (const auto& scope : scopes) {
    if (!IsValidScope(scope)) return Invalid("Hawk: invalid scope in temporary credentials");
  }
  const bool named = !name.empty();
  Credentials out;
  out.client_id = named ? std::string(name) : issuer.client_id;
  const std::optional<std::string> cert_issuer =
      named ? std::optional<std::string>(issuer.client_id) : std::nullopt;
  const std::string signature = CertificateSignature(issuer.access_token, out.client_id,
                                                     cert_issuer, seed, start, expiry, scopes);
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("version");
  w.Int(1);
  w.Key("scopes");
  w.StartArray();
  for (const auto& scope : scopes) {
    w.String(scope.data(), static_cast<rapidjson::SizeType>(scope.size()));
  }
  w.EndArray();
  w.Key("start");
  w.Int64(start);
  w.Key("expiry");
  w.Int64(expiry);
  w.Key("seed");
  w.String(seed.data(), static_cast<rapidjson::SizeType>(seed.size()));
  w.Key("signature");
  w.String(signature.data(), static_cast<rapidjson::SizeType>(signature.size()));
  if (cert_issuer) {
    w.Key("issuer");
    w.String(cert_issuer->data(), static_cast<rapidjson::SizeType>(cert_issuer->size()));
  }
  w.EndObject();
  out.certificate.assign(buf.GetString(), buf.GetSize());
  out.access_token = TemporaryAccessToken(issuer.access_token, seed);
  return out;
}

Result<HawkIdentity> HawkVerify(const HawkRequest& request, const HawkClientLookup& lookup,
                                int64_t now, int64_t skew_seconds) {
  if (!request.authorization.empty()) {
    if (request.authorization.size() > kHawkMaxInputBytes) {
      return Denied("Authorization header is too long");
    }
    return VerifyHeader(request, lookup, now, skew_seconds);
  }
  if (request.resource.size() > kHawkMaxInputBytes) {
    if (request.resource.find("bewit=") != std::string::npos) {
      return Denied("bewit: resource is too long");
    }
    return HawkIdentity{};
  }
  if (auto loc = FindBewit(request.resource)) return VerifyBewit(request, *loc, lookup, now);
  return HawkIdentity{};
}

}  // namespace docker_worker
