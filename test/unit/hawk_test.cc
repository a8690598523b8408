// Hawk signing and verification.
//
// test/data/hawk/hawk-vectors.json is a byte-identical copy of shared/reference/hawk-vectors.json:
// official vectors produced by shared/reference/gen-hawk-vectors.js with the npm packages
// taskcluster-client@87.1.3 and hawk@9.0.2 (headers and a bewit computed by the official client,
// each checked by hawk.server.authenticate), plus the two temporary-credential cases of the Go
// client's test data (clients/client-go/testcases.json). Every vector is replayed byte for byte;
// then the verifier is driven through tampering, clock skew, certificates, bewits and hostile
// headers.
#include "docker_worker/hawk.h"

#include <catch2/catch.hpp>
#include <cctype>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "docker_worker/json.h"
#include "docker_worker/slugid.h"

namespace docker_worker {
namespace {

constexpr int64_t kFixedTs = 1735689600;  // the vectors' ts: 2025-01-01T00:00:00Z

const json::Document& Vectors() {
  static const json::Document doc = [] {
    auto parsed = json::ParseFile(std::string(DW_SOURCE_DIR) + "/test/data/hawk/hawk-vectors.json");
    json::Document out;
    if (parsed.ok()) out = std::move(parsed).value();
    return out;
  }();
  return doc;
}

const json::Value& At(const json::Value& v, const char* key) {
  const json::Value* p = json::Find(v, key);
  INFO("missing key " << key);
  REQUIRE(p != nullptr);
  return *p;
}

std::string Text(const json::Value& v, const char* key) {
  const json::Value& p = At(v, key);
  INFO("key " << key);
  REQUIRE(p.IsString());
  return std::string(p.GetString(), p.GetStringLength());
}

std::optional<std::string> OptText(const json::Value& v, const char* key) {
  const json::Value* p = json::Find(v, key);
  if (p == nullptr || p->IsNull()) return std::nullopt;
  REQUIRE(p->IsString());
  return std::string(p->GetString(), p->GetStringLength());
}

int64_t Int(const json::Value& v, const char* key) {
  const json::Value& p = At(v, key);
  REQUIRE(p.IsInt64());
  return p.GetInt64();
}

std::optional<std::vector<std::string>> OptList(const json::Value& v, const char* key) {
  const json::Value* p = json::Find(v, key);
  if (p == nullptr || p->IsNull()) return std::nullopt;
  REQUIRE(p->IsArray());
  std::vector<std::string> out;
  for (const auto& item : p->GetArray()) {
    REQUIRE(item.IsString());
    out.emplace_back(item.GetString(), item.GetStringLength());
  }
  return out;
}

std::vector<const json::Value*> VectorsOfKind(std::string_view kind) {
  REQUIRE(Vectors().IsObject());
  std::vector<const json::Value*> out;
  for (const auto& v : At(Vectors(), "vectors").GetArray()) {
    if (Text(v, "kind") == kind) out.push_back(&v);
  }
  return out;
}

// Every token the tests use: none may appear in an error message.
const std::vector<std::string>& Secrets() {
  static const std::vector<std::string> secrets = {
      "dGVzdC1hY2Nlc3MtdG9rZW4tbm90LWEtc2VjcmV0",
      "R4OVHWpIvy6KsqS4AWE51QwbvgLvsstS6e6UW8IfHUY",
      "tokenABCDEFGH",
      "no-secret",
      "lREZD5-jA3rA1_U0YjtTxhxrBXw9OEvvQT7deud_mkM",
      "issuer-token-NEVER-SHOWN",
      "wrong-issuer-token",
  };
  return secrets;
}

// The result is a kPermissionDenied naming `what`, and leaks no token (nor `mac`, when given).
void CheckDenied(const Result<HawkIdentity>& r, std::string_view what, std::string_view mac = {}) {
  REQUIRE_FALSE(r.ok());
  const std::string& message = r.status().message();
  INFO("message: " << message);
  CHECK(r.status().code() == Code::kPermissionDenied);
  CHECK_THAT(message, Catch::Contains(std::string(what)));
  for (const auto& secret : Secrets()) CHECK_THAT(message, !Catch::Contains(secret));
  if (!mac.empty()) CHECK_THAT(message, !Catch::Contains(std::string(mac)));
}

// A fixed set of clients, as the verifier's lookup sees them.
struct Directory {
  std::map<std::string, HawkClient> clients;
  HawkClientLookup Lookup() const {
    return [this](const std::string& id) -> std::optional<HawkClient> {
      auto it = clients.find(id);
      if (it == clients.end()) return std::nullopt;
      return it->second;
    };
  }
};

// The clients behind the vectors: for temporary credentials, the issuer's permanent token.
Directory VectorDirectory() {
  Directory d;
  d.clients["project/test/worker"] = {"dGVzdC1hY2Nlc3MtdG9rZW4tbm90LWEtc2VjcmV0", {"queue:*"}};
  d.clients["def/ghi@XXX"] = {"tokenABCDEFGH", {"scope/asd:fhjdf/*"}};
  d.clients["tester"] = {"no-secret", {"test:*", "auth:create-client:tester/*"}};
  return d;
}

HawkRequest RequestForVector(const json::Value& v) {
  const json::Value& in = At(v, "inputs");
  const json::Value& derived = At(v, "derived");
  HawkRequest r;
  r.method = Text(in, "method");
  r.resource = Text(derived, "resource");
  r.host = Text(derived, "host");
  r.port = static_cast<int>(Int(derived, "port"));
  r.authorization = Text(At(v, "expected"), "authorizationHeader");
  return r;
}

Credentials CredentialsOf(const json::Value& in) {
  return Credentials{Text(in, "clientId"), Text(in, "accessToken"),
                     OptText(in, "certificate").value_or("")};
}

// --- Replaying the official vectors ---

TEST_CASE("hawk: the vectors file is the official one", "[unit]") {
  REQUIRE(Vectors().IsObject());
  CHECK_THAT(Text(Vectors(), "generatedBy"), Catch::Contains("taskcluster-client@87.1.3"));
  CHECK(VectorsOfKind("header").size() == 11);
  CHECK(VectorsOfKind("bewit").size() == 1);
}

TEST_CASE("hawk: header vectors replay byte for byte", "[unit]") {
  for (const json::Value* v : VectorsOfKind("header")) {
    const std::string name = Text(*v, "name");
    INFO("vector " << name);
    const json::Value& in = At(*v, "inputs");
    const json::Value& derived = At(*v, "derived");
    const json::Value& expected = At(*v, "expected");
    const Credentials creds = CredentialsOf(in);
    const auto authorized = OptList(in, "authorizedScopes");
    const auto hash = OptText(derived, "hash");

    auto target = HawkTargetFromUrl(Text(in, "url"));
    REQUIRE(target.ok());
    CHECK(target->resource == Text(derived, "resource"));
    CHECK(target->host == Text(derived, "host"));
    CHECK(target->port == Int(derived, "port"));

    auto ext = HawkExt(creds, authorized);
    REQUIRE(ext.ok());
    CHECK(*ext == OptText(in, "ext").value_or(""));

    const std::string normalized =
        HawkNormalizedString("header", Int(in, "ts"), Text(in, "nonce"), Text(in, "method"),
                             *target, hash.value_or(""), *ext);
    CHECK(normalized == Text(derived, "normalizedString"));
    CHECK(HawkMac(creds.access_token, normalized) == Text(expected, "mac"));

    if (hash) {
      CHECK(HawkPayloadHash(Text(in, "contentType"), Text(in, "payload")) == *hash);
    }

    HawkSignOptions options;
    options.ts = Int(in, "ts");
    options.nonce = Text(in, "nonce");
    options.authorized_scopes = authorized;
    options.payload_hash = hash;
    auto header = HawkAuthorizationHeader(creds, Text(in, "method"), Text(in, "url"), options);
    REQUIRE(header.ok());
    CHECK(*header == Text(expected, "authorizationHeader"));
  }
}

TEST_CASE("hawk: the bewit vector replays byte for byte", "[unit]") {
  auto bewits = VectorsOfKind("bewit");
  REQUIRE(bewits.size() == 1);
  const json::Value& v = *bewits[0];
  const json::Value& in = At(v, "inputs");
  const json::Value& derived = At(v, "derived");
  const json::Value& expected = At(v, "expected");
  const Credentials creds = CredentialsOf(in);
  const int64_t exp = Int(in, "nowSeconds") + Int(in, "ttlSeconds");
  CHECK(exp == Int(derived, "exp"));

  auto target = HawkTargetFromUrl(Text(in, "url"));
  REQUIRE(target.ok());
  auto ext = HawkExt(creds, std::nullopt);
  REQUIRE(ext.ok());
  CHECK(*ext == Text(in, "ext"));
  const std::string normalized = HawkNormalizedString("bewit", exp, "", "GET", *target, "", *ext);
  CHECK(normalized == Text(derived, "normalizedString"));
  CHECK(HawkMac(creds.access_token, normalized) == Text(expected, "mac"));

  auto signed_url = HawkSignUrl(creds, Text(in, "url"), exp, std::nullopt);
  REQUIRE(signed_url.ok());
  CHECK(*signed_url == Text(expected, "signedUrl"));
  CHECK(*signed_url == Text(in, "url") + "?bewit=" + Text(expected, "bewit"));
}

TEST_CASE("hawk: temporary credentials match the Go client's test data", "[unit]") {
  const json::Value& tc = At(Vectors(), "temporaryCredentials");
  const json::Value& in = At(tc, "inputs");
  const Credentials issuer{Text(At(in, "issuer"), "clientId"),
                           Text(At(in, "issuer"), "accessToken"), ""};
  const auto scopes = OptList(in, "scopes").value();

  for (const char* kind : {"unnamed", "named"}) {
    INFO(kind);
    const json::Value& c = At(tc, kind);
    const json::Value& expected = At(c, "expected");
    const std::string name = OptText(c, "tempClientId").value_or("");
    auto creds = CreateTemporaryCredentials(issuer, name, scopes, Int(in, "start"),
                                            Int(in, "expiry"), Text(in, "seed"));
    REQUIRE(creds.ok());
    CHECK(creds->client_id == Text(expected, "clientId"));
    CHECK(creds->access_token == Text(expected, "accessToken"));
    CHECK(creds->certificate == Text(c, "certificate"));
    auto cert = json::Parse(creds->certificate);
    REQUIRE(cert.ok());
    CHECK(Text(*cert, "signature") == Text(expected, "signature"));
    // The signature is the MAC of the documented signature input.
    CHECK(HawkMac(issuer.access_token, Text(c, "signatureInput")) == Text(expected, "signature"));
  }
}

TEST_CASE("hawk: the named tester credentials of the vectors are reproduced", "[unit]") {
  const json::Value* v = nullptr;
  for (const json::Value* h : VectorsOfKind("header")) {
    if (Text(*h, "name") == "auth-test-authenticate-named-temp-creds") v = h;
  }
  REQUIRE(v != nullptr);
  const json::Value& in = At(*v, "inputs");
  auto creds = CreateTemporaryCredentials({"tester", "no-secret", ""}, "tester/temp-1", {"test:x"},
                                          kFixedTs * 1000, (kFixedTs + 3600) * 1000,
                                          "c2VlZC1zZWVkLXNlZWQtc2VlZC1zZWVkLXNlZWQtc2Vl");
  REQUIRE(creds.ok());
  CHECK(creds->client_id == Text(in, "clientId"));
  CHECK(creds->access_token == Text(in, "accessToken"));
  CHECK(creds->certificate == Text(in, "certificate"));
}

// --- Verifying the official vectors ---

// The Go client's certificate (start 2015-08-07, expiry a day later) rides in four vectors whose
// ts is 2025-01-01: no server accepts them at that ts. They verify up to the validity window
// (MAC, skew, certificate signature), which is where they fail.
bool CarriesExpiredGoCertificate(const json::Value& v) {
  auto cert = OptText(At(v, "inputs"), "certificate");
  return cert && cert->find("1439051211744") != std::string::npos;
}

TEST_CASE("hawk: every header vector verifies with its client's token", "[unit]") {
  const Directory dir = VectorDirectory();
  int verified = 0, expired = 0;
  for (const json::Value* v : VectorsOfKind("header")) {
    const std::string name = Text(*v, "name");
    INFO("vector " << name);
    const json::Value& in = At(*v, "inputs");
    HawkRequest request = RequestForVector(*v);
    const auto payload = OptText(in, "payload");
    const std::string content_type = OptText(in, "contentType").value_or("");
    if (payload) {
      request.payload = *payload;
      request.content_type = content_type;
    }
    auto id = HawkVerify(request, dir.Lookup(), Int(in, "ts"));
    if (CarriesExpiredGoCertificate(*v)) {
      CheckDenied(id, "ext.certificate has expired", Text(At(*v, "expected"), "mac"));
      ++expired;
      continue;
    }
    INFO((id.ok() ? "" : id.status().message()));
    REQUIRE(id.ok());
    ++verified;
    if (name == "auth-test-authenticate-named-temp-creds") {
      CHECK(id->client_id == "tester/temp-1");
      CHECK(id->scopes == std::vector<std::string>{"test:x"});
      continue;
    }
    CHECK(id->client_id == Text(in, "clientId"));
    const auto authorized = OptList(in, "authorizedScopes");
    CHECK(id->scopes == authorized.value_or(dir.clients.at(Text(in, "clientId")).scopes));
  }
  CHECK(verified == 8);
  CHECK(expired == 3);
}

TEST_CASE("hawk: the payload hash is checked against the body when one is given", "[unit]") {
  const Directory dir = VectorDirectory();
  for (const json::Value* v : VectorsOfKind("header")) {
    if (Text(*v, "name") != "claim-work-with-payload-hash") continue;
    HawkRequest request = RequestForVector(*v);
    const std::string body = Text(At(*v, "inputs"), "payload");
    request.content_type = "application/json; charset=utf-8";
    request.payload = body;
    CHECK(HawkVerify(request, dir.Lookup(), kFixedTs).ok());
    const std::string other = body + " ";
    request.payload = other;
    CheckDenied(HawkVerify(request, dir.Lookup(), kFixedTs), "payload hash");
    request.content_type = "text/plain";
    request.payload = body;
    CheckDenied(HawkVerify(request, dir.Lookup(), kFixedTs), "payload hash");
  }
}

// `s` with byte `i` replaced by something else that is still plausible in place.
std::string ReplaceByte(std::string s, size_t i) {
  s[i] = (s[i] == 'q' || s[i] == 'Q') ? 'z' : 'q';
  return s;
}

TEST_CASE("hawk: any single-byte tamper of a verified vector fails", "[unit]") {
  const Directory dir = VectorDirectory();
  int attempts = 0;
  for (const json::Value* v : VectorsOfKind("header")) {
    if (CarriesExpiredGoCertificate(*v)) continue;
    const std::string name = Text(*v, "name");
    INFO("vector " << name);
    const HawkRequest good = RequestForVector(*v);
    REQUIRE(HawkVerify(good, dir.Lookup(), kFixedTs).ok());
    auto expect_fail = [&](const HawkRequest& r, const std::string& what) {
      INFO("tampered " << what);
      ++attempts;
      auto id = HawkVerify(r, dir.Lookup(), kFixedTs);
      CHECK_FALSE(id.ok());
      if (!id.ok()) CHECK(id.status().code() == Code::kPermissionDenied);
    };
    for (size_t i = 0; i < good.method.size(); ++i) {
      HawkRequest r = good;
      r.method = ReplaceByte(r.method, i);
      expect_fail(r, "method byte " + std::to_string(i));
    }
    for (size_t i = 0; i < good.resource.size(); ++i) {
      HawkRequest r = good;
      r.resource = ReplaceByte(r.resource, i);
      expect_fail(r, "resource byte " + std::to_string(i));
    }
    for (size_t i = 0; i < good.host.size(); ++i) {
      HawkRequest r = good;
      r.host = ReplaceByte(r.host, i);
      expect_fail(r, "host byte " + std::to_string(i));
    }
    for (int delta : {-1, 1}) {
      HawkRequest r = good;
      r.port += delta;
      expect_fail(r, "port");
    }
    // Every byte inside each attribute value of the header: id, ts, nonce, hash, ext, mac.
    const std::string& h = good.authorization;
    for (const char* attr : {"id=\"", "ts=\"", "nonce=\"", "hash=\"", "ext=\"", "mac=\""}) {
      size_t start = h.find(std::string(", ") + attr);
      start = start == std::string::npos ? h.find(std::string("Hawk ") + attr) : start;
      if (start == std::string::npos) continue;
      start = h.find('"', start) + 1;
      size_t end = h.find('"', start);
      for (size_t i = start; i < end; ++i) {
        HawkRequest r = good;
        r.authorization = ReplaceByte(h, i);
        expect_fail(r, std::string(attr) + " byte " + std::to_string(i - start));
      }
    }
  }
  CHECK(attempts > 1000);
}

// --- Verification scenarios ---

const std::string kUrl = "https://tc.example.com/api/queue/v1/task/fN1SbArXTPSVFNUvaOlinQ";

HawkRequest RequestFor(const std::string& method, const std::string& url,
                       const std::string& authorization) {
  auto target = HawkTargetFromUrl(url);
  REQUIRE(target.ok());
  HawkRequest r;
  r.method = method;
  r.resource = target->resource;
  r.host = target->host;
  r.port = target->port;
  r.authorization = authorization;
  return r;
}

// Signs GET kUrl at `ts` and verifies it at `now` against `dir`.
Result<HawkIdentity> SignAndVerify(const Credentials& creds, const Directory& dir, int64_t ts,
                                   int64_t now,
                                   std::optional<std::vector<std::string>> authorized = {}) {
  HawkSignOptions options;
  options.ts = ts;
  options.nonce = "n0nce1";
  options.authorized_scopes = std::move(authorized);
  auto header = HawkAuthorizationHeader(creds, "GET", kUrl, options);
  REQUIRE(header.ok());
  return HawkVerify(RequestFor("GET", kUrl, *header), dir.Lookup(), now);
}

const Credentials kWorker{"project/test/worker", "dGVzdC1hY2Nlc3MtdG9rZW4tbm90LWEtc2VjcmV0", ""};

TEST_CASE("hawk: timestamps more than 900 s away are refused", "[unit]") {
  const Directory dir = VectorDirectory();
  const int64_t now = kFixedTs;
  CHECK(SignAndVerify(kWorker, dir, now - 899, now).ok());
  CHECK(SignAndVerify(kWorker, dir, now + 899, now).ok());
  CHECK(SignAndVerify(kWorker, dir, now - 900, now).ok());
  CheckDenied(SignAndVerify(kWorker, dir, now - 901, now), "skew");
  CheckDenied(SignAndVerify(kWorker, dir, now + 901, now), "skew");
}

TEST_CASE("hawk: unknown clients and wrong tokens are refused", "[unit]") {
  Directory dir = VectorDirectory();
  CheckDenied(SignAndVerify({"nobody", "x", ""}, dir, kFixedTs, kFixedTs), "unknown clientId");
  dir.clients["project/test/worker"].access_token = "wrong-issuer-token";
  CheckDenied(SignAndVerify(kWorker, dir, kFixedTs, kFixedTs), "invalid MAC");
  CheckDenied(HawkVerify(RequestFor("GET", kUrl, "Hawk id=\"a\", ts=\"1\", nonce=\"n\", mac=\"m\""),
                         HawkClientLookup(), kFixedTs),
              "lookup");
}

// An independent certificate builder (string concatenation, signature = HawkMac over the
// documented lines), so a test can make certificates CreateTemporaryCredentials refuses.
Credentials MakeTemporary(const std::string& issuer_id, const std::string& issuer_token,
                          const std::string& name, const std::vector<std::string>& scopes,
                          int64_t start, int64_t expiry, const std::string& seed,
                          const std::string& signing_token = "") {
  std::string lines = "version:1\n";
  if (!name.empty()) lines += "clientId:" + name + "\nissuer:" + issuer_id + "\n";
  lines += "seed:" + seed + "\nstart:" + std::to_string(start) +
           "\nexpiry:" + std::to_string(expiry) + "\nscopes:";
  std::string scope_json;
  for (const auto& s : scopes) {
    lines += "\n" + s;
    scope_json += (scope_json.empty() ? "\"" : ",\"") + s + "\"";
  }
  const std::string signature =
      HawkMac(signing_token.empty() ? issuer_token : signing_token, lines);
  std::string cert = "{\"version\":1,\"scopes\":[" + scope_json +
                     "],\"start\":" + std::to_string(start) +
                     ",\"expiry\":" + std::to_string(expiry) + ",\"seed\":\"" + seed +
                     "\",\"signature\":\"" + signature + "\"";
  if (!name.empty()) cert += ",\"issuer\":\"" + issuer_id + "\"";
  cert += "}";
  std::string token = HawkMac(issuer_token, seed);  // base64 -> base64url without padding
  for (char& c : token) c = c == '+' ? '-' : c == '/' ? '_' : c;
  while (!token.empty() && token.back() == '=') token.pop_back();
  return Credentials{name.empty() ? issuer_id : name, token, cert};
}

TEST_CASE("hawk: temporary credentials verify within their limits", "[unit]") {
  const std::string issuer_id = "project/test/issuer";
  const std::string issuer_token = "issuer-token-NEVER-SHOWN";
  const Credentials issuer{issuer_id, issuer_token, ""};
  Directory dir;
  dir.clients[issuer_id] = {issuer_token, {"queue:*", "auth:create-client:project/test/temp-*"}};
  const int64_t now = kFixedTs;
  const int64_t now_ms = now * 1000;
  const int64_t hour = 3600 * 1000;
  const std::string seed = NewSlugId() + NewSlugId();
  const std::vector<std::string> scopes = {"queue:claim-work:proj/*", "queue:get-task:x"};

  SECTION("our builder and CreateTemporaryCredentials agree") {
    for (const std::string name : {"", "project/test/temp-1"}) {
      auto made = CreateTemporaryCredentials(issuer, name, scopes, now_ms, now_ms + hour, seed);
      REQUIRE(made.ok());
      Credentials mine =
          MakeTemporary(issuer_id, issuer_token, name, scopes, now_ms, now_ms + hour, seed);
      CHECK(made->client_id == mine.client_id);
      CHECK(made->access_token == mine.access_token);
      CHECK(made->certificate == mine.certificate);
    }
  }
  SECTION("unnamed: the issuer's id with the certificate's scopes") {
    auto creds = CreateTemporaryCredentials(issuer, "", scopes, now_ms, now_ms + hour, seed);
    REQUIRE(creds.ok());
    auto id = SignAndVerify(*creds, dir, now, now);
    REQUIRE(id.ok());
    CHECK(id->client_id == issuer_id);
    CHECK(id->scopes == scopes);
  }
  SECTION("named: the new name, given auth:create-client") {
    auto creds = CreateTemporaryCredentials(issuer, "project/test/temp-1", scopes, now_ms,
                                            now_ms + hour, seed);
    REQUIRE(creds.ok());
    auto id = SignAndVerify(*creds, dir, now, now);
    REQUIRE(id.ok());
    CHECK(id->client_id == "project/test/temp-1");
    CHECK(id->scopes == scopes);
  }
  SECTION("named without auth:create-client:<name>") {
    auto creds = CreateTemporaryCredentials(issuer, "project/other/temp-1", scopes, now_ms,
                                            now_ms + hour, seed);
    REQUIRE(creds.ok());
    CheckDenied(SignAndVerify(*creds, dir, now, now), "auth:create-client:project/other/temp-1");
  }
  SECTION("the issuer's token is not the one that issued them") {
    auto creds = CreateTemporaryCredentials(issuer, "", scopes, now_ms, now_ms + hour, seed);
    REQUIRE(creds.ok());
    Directory wrong = dir;
    wrong.clients[issuer_id].access_token = "wrong-issuer-token";
    CheckDenied(SignAndVerify(*creds, wrong, now, now), "invalid MAC", creds->access_token);
  }
  SECTION("a certificate signed with another token, used with the right temporary key") {
    for (const std::string name : {"", "project/test/temp-1"}) {
      Credentials forged = MakeTemporary(issuer_id, issuer_token, name, scopes, now_ms,
                                         now_ms + hour, seed, "wrong-issuer-token");
      CheckDenied(SignAndVerify(forged, dir, now, now), "ext.certificate.signature is not valid");
    }
  }
  SECTION("validity window with 5 minutes of slack") {
    auto at = [&](int64_t start, int64_t expiry) {
      auto creds = CreateTemporaryCredentials(issuer, "", scopes, start, expiry, seed);
      REQUIRE(creds.ok());
      return SignAndVerify(*creds, dir, now, now);
    };
    CHECK(at(now_ms - hour, now_ms - 299 * 1000).ok());
    CheckDenied(at(now_ms - hour, now_ms - 301 * 1000), "expired");
    CHECK(at(now_ms + 299 * 1000, now_ms + hour).ok());
    CheckDenied(at(now_ms + 301 * 1000, now_ms + hour), "not valid yet");
  }
  SECTION("at most 31 days") {
    const int64_t days31 = int64_t{31} * 24 * hour;
    CHECK(SignAndVerify(MakeTemporary(issuer_id, issuer_token, "", scopes, now_ms - hour,
                                      now_ms - hour + days31, seed),
                        dir, now, now)
              .ok());
    CheckDenied(SignAndVerify(MakeTemporary(issuer_id, issuer_token, "", scopes, now_ms - hour,
                                            now_ms - hour + days31 + 1, seed),
                              dir, now, now),
                "31 days");
    auto refused =
        CreateTemporaryCredentials(issuer, "", scopes, now_ms, now_ms + days31 + 1, seed);
    REQUIRE_FALSE(refused.ok());
    CHECK_THAT(refused.status().message(), Catch::Contains("31 days"));
  }
  SECTION("certificate scopes beyond the issuer's") {
    auto creds = CreateTemporaryCredentials(issuer, "", {"queue:get-task:x", "secrets:get:y"},
                                            now_ms, now_ms + hour, seed);
    REQUIRE(creds.ok());
    CheckDenied(SignAndVerify(*creds, dir, now, now), "secrets:get:y");
  }
  SECTION("authorizedScopes narrow the certificate's scopes") {
    auto creds = CreateTemporaryCredentials(issuer, "", scopes, now_ms, now_ms + hour, seed);
    REQUIRE(creds.ok());
    auto id = SignAndVerify(*creds, dir, now, now,
                            std::vector<std::string>{"queue:claim-work:proj/linux"});
    REQUIRE(id.ok());
    CHECK(id->scopes == std::vector<std::string>{"queue:claim-work:proj/linux"});
    // The issuer holds queue:*, but the certificate does not: refused.
    CheckDenied(SignAndVerify(*creds, dir, now, now, std::vector<std::string>{"queue:cancel:x"}),
                "authorizedScope");
  }
  SECTION("temporary credentials cannot issue temporary credentials") {
    auto creds = CreateTemporaryCredentials(issuer, "", scopes, now_ms, now_ms + hour, seed);
    REQUIRE(creds.ok());
    CHECK_FALSE(CreateTemporaryCredentials(*creds, "", scopes, now_ms, now_ms + hour, seed).ok());
    CHECK_FALSE(
        CreateTemporaryCredentials(issuer, "", scopes, now_ms, now_ms + hour, "short").ok());
  }
}

TEST_CASE("hawk: authorizedScopes narrow permanent credentials", "[unit]") {
  const Directory dir = VectorDirectory();
  auto narrowed =
      SignAndVerify(kWorker, dir, kFixedTs, kFixedTs, std::vector<std::string>{"queue:get-task:x"});
  REQUIRE(narrowed.ok());
  CHECK(narrowed->scopes == std::vector<std::string>{"queue:get-task:x"});
  auto none = SignAndVerify(kWorker, dir, kFixedTs, kFixedTs, std::vector<std::string>{});
  REQUIRE(none.ok());
  CHECK(none->scopes.empty());
  CheckDenied(SignAndVerify(kWorker, dir, kFixedTs, kFixedTs,
                            std::vector<std::string>{"queue:get-task:x", "secrets:get:y"}),
              "secrets:get:y");
}

// --- Bewits ---

HawkRequest BewitRequest(const std::string& method, const std::string& signed_url) {
  return RequestFor(method, signed_url, "");
}

TEST_CASE("hawk: the bewit vector verifies up to its expired certificate", "[unit]") {
  const json::Value& v = *VectorsOfKind("bewit").at(0);
  const std::string signed_url = Text(At(v, "expected"), "signedUrl");
  const Directory dir = VectorDirectory();
  CheckDenied(HawkVerify(BewitRequest("GET", signed_url), dir.Lookup(), kFixedTs),
              "ext.certificate has expired", Text(At(v, "expected"), "mac"));
  CheckDenied(HawkVerify(BewitRequest("GET", signed_url), dir.Lookup(), kFixedTs + 900),
              "bewit: expired");
}

TEST_CASE("hawk: bewits verify until expiry, for GET and HEAD only", "[unit]") {
  const Directory dir = VectorDirectory();
  const int64_t now = kFixedTs;
  const std::string url = kUrl + "/runs/0/artifacts/private%2Fbuild%2Fa.tar.gz?x=1&y=%2F";

  SECTION("permanent credentials") {
    auto signed_url = HawkSignUrl(kWorker, url + "#frag", now + 900, std::nullopt);
    REQUIRE(signed_url.ok());
    CHECK(signed_url->starts_with(url + "&bewit="));
    CHECK(signed_url->ends_with("#frag"));
    auto id = HawkVerify(BewitRequest("GET", *signed_url), dir.Lookup(), now);
    REQUIRE(id.ok());
    CHECK(id->client_id == kWorker.client_id);
    CHECK(id->scopes == std::vector<std::string>{"queue:*"});
    CHECK(HawkVerify(BewitRequest("HEAD", *signed_url), dir.Lookup(), now + 899).ok());
    CheckDenied(HawkVerify(BewitRequest("GET", *signed_url), dir.Lookup(), now + 900), "expired");
    CheckDenied(HawkVerify(BewitRequest("GET", *signed_url), dir.Lookup(), now + 901), "expired");
    CheckDenied(HawkVerify(BewitRequest("POST", *signed_url), dir.Lookup(), now),
                "only GET and HEAD");
    CheckDenied(HawkVerify(BewitRequest("PUT", *signed_url), dir.Lookup(), now),
                "only GET and HEAD");
  }
  SECTION("temporary credentials and authorizedScopes ride in ext") {
    auto temp = CreateTemporaryCredentials({"def/ghi@XXX", "tokenABCDEFGH", ""}, "",
                                           {"scope/asd:fhjdf/X", "scope/asd:fhjdf/Y"}, now * 1000,
                                           (now + 3600) * 1000, NewSlugId() + NewSlugId());
    REQUIRE(temp.ok());
    auto signed_url =
        HawkSignUrl(*temp, url, now + 60, std::vector<std::string>{"scope/asd:fhjdf/X"});
    REQUIRE(signed_url.ok());
    auto id = HawkVerify(BewitRequest("GET", *signed_url), dir.Lookup(), now);
    REQUIRE(id.ok());
    CHECK(id->client_id == "def/ghi@XXX");
    CHECK(id->scopes == std::vector<std::string>{"scope/asd:fhjdf/X"});
  }
  SECTION("the bewit parameter may sit anywhere in the query; the rest is signed") {
    auto signed_url = HawkSignUrl(kWorker, kUrl, now + 900, std::nullopt);
    REQUIRE(signed_url.ok());
    const std::string bewit = signed_url->substr(signed_url->find("bewit="));
    HawkRequest r = BewitRequest("GET", *signed_url);
    CHECK(HawkVerify(r, dir.Lookup(), now).ok());
    // Anything added to the query changes the signed resource.
    for (const std::string& resource : {r.resource + "&a=1", r.resource + "&",
                                        "/api/queue/v1/task/fN1SbArXTPSVFNUvaOlinQ?a=1&" + bewit}) {
      HawkRequest t = r;
      t.resource = resource;
      CheckDenied(HawkVerify(t, dir.Lookup(), now), "invalid MAC");
    }
    HawkRequest t = r;
    t.resource = ReplaceByte(r.resource, 5);
    CheckDenied(HawkVerify(t, dir.Lookup(), now), "invalid MAC");
    t = r;
    t.host = "tc.example.org";
    CheckDenied(HawkVerify(t, dir.Lookup(), now), "invalid MAC");
    t = r;
    t.port = 8443;
    CheckDenied(HawkVerify(t, dir.Lookup(), now), "invalid MAC");
  }
  SECTION("an Authorization header takes precedence over a bewit") {
    auto signed_url = HawkSignUrl(kWorker, kUrl, now + 900, std::nullopt);
    REQUIRE(signed_url.ok());
    HawkRequest r = BewitRequest("GET", *signed_url);
    r.authorization = "Hawk garbage";
    CheckDenied(HawkVerify(r, dir.Lookup(), now), "Authorization header");
  }
  SECTION("malformed bewits") {
    for (const std::string& bewit :
         {std::string(""), std::string("!!!"), std::string("YWJj"),  // "abc": no separators
          std::string("cHJvamVjdC90ZXN0L3dvcmtlclwxXG1hYw"),         // "project/test/worker\1\mac"
          std::string("XDE3MzU2OTA1MDBcbWFjXA"),                     // "\1735690500\mac\": no id
          std::string("YVxhYmNcbWFjXA")}) {                          // "a\abc\mac\": bad exp
      INFO("bewit " << bewit);
      HawkRequest r = RequestFor("GET", kUrl, "");
      r.resource += "?bewit=" + bewit;
      CheckDenied(HawkVerify(r, dir.Lookup(), now), "bewit");
    }
  }
  SECTION("signing refuses a URL that already has a bewit") {
    CHECK_FALSE(HawkSignUrl(kWorker, kUrl + "?bewit=abc", now + 900, std::nullopt).ok());
  }
}

// --- Hostile input ---

TEST_CASE("hawk: malformed Authorization headers fail cleanly", "[unit]") {
  const Directory dir = VectorDirectory();
  const std::string good =
      "Hawk id=\"project/test/worker\", ts=\"1735689600\", nonce=\"Xk3mQ9\", "
      "mac=\"MYZY+yxp+cSIyMJFZZDKkgm8RcRZYIcmw5d2fL9v+5c=\"";
  const std::string url = "https://tc.example.com/api/queue/v1/task/fN1SbArXTPSVFNUvaOlinQ";
  REQUIRE(HawkVerify(RequestFor("GET", url, good), dir.Lookup(), kFixedTs).ok());
  // Reordered attributes and a trailing comma are fine.
  CHECK(HawkVerify(RequestFor("GET", url,
                              "hawk mac=\"MYZY+yxp+cSIyMJFZZDKkgm8RcRZYIcmw5d2fL9v+5c=\",nonce="
                              "\"Xk3mQ9\",   ts=\"1735689600\" ,id=\"project/test/worker\","),
                   dir.Lookup(), kFixedTs)
            .ok());

  auto b64 = [](std::string_view text) {
    // Standard base64, spelled out here so the hostile ext cases do not lean on the code under
    // test.
    static const char* kTable = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    size_t i = 0;
    for (; i + 2 < text.size(); i += 3) {
      unsigned n = (static_cast<unsigned char>(text[i]) << 16) |
                   (static_cast<unsigned char>(text[i + 1]) << 8) |
                   static_cast<unsigned char>(text[i + 2]);
      for (int k = 18; k >= 0; k -= 6) out += kTable[(n >> k) & 63];
    }
    if (i + 1 == text.size()) {
      unsigned n = static_cast<unsigned char>(text[i]) << 16;
      out += kTable[(n >> 18) & 63];
      out += kTable[(n >> 12) & 63];
      out += "==";
    } else if (i + 2 == text.size()) {
      unsigned n = (static_cast<unsigned char>(text[i]) << 16) |
                   (static_cast<unsigned char>(text[i + 1]) << 8);
      out += kTable[(n >> 18) & 63];
      out += kTable[(n >> 12) & 63];
      out += kTable[(n >> 6) & 63];
      out += "=";
    }
    return out;
  };
  REQUIRE(b64("{}") == "e30=");
  const std::string head = "Hawk id=\"project/test/worker\", ts=\"1735689600\", nonce=\"Xk3mQ9\"";
  const std::string mac = ", mac=\"MYZY+yxp+cSIyMJFZZDKkgm8RcRZYIcmw5d2fL9v+5c=\"";
  auto with_ext = [&](std::string_view json_text) {
    return head + ", ext=\"" + b64(json_text) + "\"" + mac;
  };

  const std::vector<std::pair<std::string, std::string>> cases = {
      {"garbage", "not a Hawk header"},
      {"Hawk", "no attributes"},
      {"Hawk    ", "no attributes"},
      {"Basic dXNlcjpwYXNz", "not a Hawk header"},
      {"Hawkish id=\"a\"", "not a Hawk header"},
      {"Hawk,id=\"a\"", "malformed scheme"},
      {head, "missing attribute mac"},
      {"Hawk id=\"project/test/worker\", nonce=\"Xk3mQ9\"" + mac, "missing attribute ts"},
      {"Hawk ts=\"1735689600\", nonce=\"Xk3mQ9\"" + mac, "missing attribute id"},
      {"Hawk id=\"project/test/worker\", ts=\"1735689600\"" + mac, "missing attribute nonce"},
      {head + ", app=\"x\"" + mac, "unknown attribute app"},
      {head + ", dlg=\"x\"" + mac, "unknown attribute dlg"},
      {head + ", id=\"other\"" + mac, "duplicate attribute id"},
      {head + mac + mac, "duplicate attribute mac"},
      {"Hawk id=\"project/test/worker\", ts=\"1735689600\", nonce=\"Xk3\"mQ9\"" + mac,
       "expected a comma"},
      {"Hawk id=\"project/test/worker\", ts=\"1735689600\", nonce=\"Xk3\\mQ9\"" + mac,
       "not allowed"},
      {"Hawk id=\"project/test/worker\", ts=\"1735689600\", nonce=\"Xk3\tmQ9\"" + mac,
       "not allowed"},
      {"Hawk id=\"project/test/worker\", ts=\"1735689600\", nonce=\"\"" + mac, "nonce is empty"},
      {"Hawk id=project/test/worker" + mac, "name=\"value\""},
      {"Hawk id=\"project/test/worker", "not terminated"},
      {"Hawk id=\"a\" ts=\"1\"", "expected a comma"},
      {"Hawk =\"a\"", "malformed attribute name"},
      {"Hawk id-x=\"a\"", "name=\"value\""},
      {"Hawk averyveryverylongattributename=\"a\"", "malformed attribute name"},
      {"Hawk id=\"project/test/worker\", ts=\"abc\", nonce=\"Xk3mQ9\"" + mac, "ts is not"},
      {"Hawk id=\"project/test/worker\", ts=\"-5\", nonce=\"Xk3mQ9\"" + mac, "ts is not"},
      {"Hawk id=\"project/test/worker\", ts=\"01735689600\", nonce=\"Xk3mQ9\"" + mac, "ts is not"},
      {"Hawk id=\"project/test/worker\", ts=\"99999999999999999999\", nonce=\"Xk3mQ9\"" + mac,
       "ts is not"},
      {"Hawk id=\"nobody\", ts=\"1735689600\", nonce=\"Xk3mQ9\"" + mac, "unknown clientId"},
      {head + ", ext=\"!!!!\"" + mac, "ext is not valid base64"},
      {with_ext("{\"certificate\":"), "ext is not valid JSON"},
      {with_ext("[]"), "ext must be a JSON object"},
      {with_ext("\"text\""), "ext must be a JSON object"},
      {with_ext("{\"certificate\":\"{}\"}"), "ext.certificate must be a JSON object"},
      {with_ext("{\"certificate\":null}"), "ext.certificate must be a JSON object"},
      {with_ext("{\"certificate\":{\"version\":2}}"), "version must be 1"},
      {with_ext("{\"certificate\":{\"version\":1,\"seed\":\"short\"}}"), "44 characters"},
      {with_ext("{\"certificate\":{\"version\":1,\"seed\":\"" + std::string(44, 'a') +
                "\",\"start\":1.5,\"expiry\":2}}"),
       "start must be"},
      {with_ext("{\"certificate\":{\"version\":1,\"seed\":\"" + std::string(44, 'a') +
                "\",\"start\":1,\"expiry\":2,\"scopes\":[1]}}"),
       "array of strings"},
      {with_ext("{\"certificate\":{\"version\":1,\"seed\":\"" + std::string(44, 'a') +
                "\",\"start\":1,\"expiry\":2,\"scopes\":[],\"signature\":\"x\",\"issuer\":7}}"),
       "issuer must be"},
      {with_ext("{\"authorizedScopes\":\"queue:*\"}"), "authorizedScopes must be an array"},
      {with_ext("{\"authorizedScopes\":[\"a\\nb\"]}"), "invalid scope"},
      {with_ext(std::string(40000, '[')), "nested too deeply"},
      {with_ext("{\"a\":" + std::string(20, '{') + std::string(20, '}') + "}"),
       "nested too deeply"},
      {head + ", ext=\"" + std::string(100 * 1024, 'A') + "\"" + mac, "too long"},
  };
  for (const auto& [header, what] : cases) {
    INFO("header: " << header.substr(0, 200));
    CheckDenied(HawkVerify(RequestFor("GET", url, header), dir.Lookup(), kFixedTs), what,
                "MYZY+yxp+cSIyMJFZZDKkgm8RcRZYIcmw5d2fL9v+5c=");
  }

  // Every prefix of a valid header, and random bytes, fail without crashing.
  for (size_t n = 0; n < good.size(); ++n) {
    auto id = HawkVerify(RequestFor("GET", url, good.substr(0, n)), dir.Lookup(), kFixedTs);
    if (n == 0) {
      CHECK(id.ok());  // no header at all: anonymous
    } else {
      CHECK_FALSE(id.ok());
    }
  }
  std::mt19937 rng(12345);
  const std::string alphabet = "Hawk idtsnoncemacxh=\", \\\t\x01\xff{}[]AZaz09+/";
  for (int k = 0; k < 3000; ++k) {
    std::string h = k % 2 ? "Hawk " : "";
    size_t len = 1 + rng() % 200;
    for (size_t i = 0; i < len; ++i) h += alphabet[rng() % alphabet.size()];
    CHECK_FALSE(HawkVerify(RequestFor("GET", url, h), dir.Lookup(), kFixedTs).ok());
  }
}

TEST_CASE("hawk: a request without header or bewit is anonymous", "[unit]") {
  const Directory dir = VectorDirectory();
  for (const std::string& resource :
       {std::string("/"), std::string("/api/queue/v1/task/x?limit=5"),
        std::string("/p?notbewit=1&xbewit=2"), std::string("/p/bewit=3"),
        std::string(kHawkMaxInputBytes + 10, '/')}) {
    HawkRequest r;
    r.method = "POST";
    r.resource = resource;
    r.host = "tc.example.com";
    r.port = 443;
    auto id = HawkVerify(r, dir.Lookup(), kFixedTs);
    REQUIRE(id.ok());
    CHECK(id->client_id.empty());
    CHECK(id->scopes.empty());
  }
}

// --- Signing ---

TEST_CASE("hawk: URL targets", "[unit]") {
  struct Case {
    std::string url, resource, host;
    int port;
  };
  for (const auto& c : std::vector<Case>{
           {"https://tc.example.com", "/", "tc.example.com", 443},
           {"http://tc.example.com", "/", "tc.example.com", 80},
           {"HTTPS://TC.Example.COM/A/b?C=d", "/A/b?C=d", "tc.example.com", 443},
           {"http://localhost:8080/api?x=%2F#frag", "/api?x=%2F", "localhost", 8080},
           {"https://h.example:8443?q=1", "/?q=1", "h.example", 8443},
           {"https://h.example/p?", "/p?", "h.example", 443},
           {"https://h.example#frag", "/", "h.example", 443},
           {"http://[::1]:8080/x", "/x", "[::1]", 8080},
           {"https://[2001:DB8::1]/x", "/x", "[2001:db8::1]", 443},
           {"http://user:pw@h.example:81/x", "/x", "h.example", 81},
           {"http://h.example:/x", "/x", "h.example", 80},
           {"https://tc.example.com/a/proj%2Flinux//b", "/a/proj%2Flinux//b", "tc.example.com",
            443},
       }) {
    INFO(c.url);
    auto t = HawkTargetFromUrl(c.url);
    REQUIRE(t.ok());
    CHECK(t->resource == c.resource);
    CHECK(t->host == c.host);
    CHECK(t->port == c.port);
  }
  for (const std::string bad :
       {"", "tc.example.com/x", "ftp://h/x", "https:///x", "https://:443/x", "https://h:0/",
        "https://h:65536/", "https://h:123456/", "https://h:8a/", "https://[::1/x",
        "https://[::1]x/", "https://[zz]/", "https://h/a b", "https://h\"/", "https://h/\n"}) {
    INFO(bad);
    auto t = HawkTargetFromUrl(bad);
    REQUIRE_FALSE(t.ok());
    CHECK(t.status().code() == Code::kInvalidArgument);
  }
}

TEST_CASE("hawk: ext and header attribute values", "[unit]") {
  auto none = HawkExt(kWorker, std::nullopt);
  REQUIRE(none.ok());
  CHECK(none->empty());
  auto empty_list = HawkExt(kWorker, std::vector<std::string>{});
  REQUIRE(empty_list.ok());
  CHECK(*empty_list == "eyJhdXRob3JpemVkU2NvcGVzIjpbXX0=");  // {"authorizedScopes":[]}
  for (const std::string cert : {"\"{}\"", "[1]", "not json", "{\"a\":1", "7"}) {
    INFO(cert);
    CHECK_FALSE(HawkExt({"a", "b", cert}, std::nullopt).ok());
  }
  // A certificate is re-serialised compactly, as JSON.stringify(JSON.parse(text)) would.
  auto spaced = HawkExt({"a", "b", "{ \"version\" : 1.0,\n \"scopes\": [ ] }"}, std::nullopt);
  REQUIRE(spaced.ok());
  CHECK(*spaced == "eyJjZXJ0aWZpY2F0ZSI6eyJ2ZXJzaW9uIjoxLCJzY29wZXMiOltdfX0=");

  HawkSignOptions options;
  options.ts = kFixedTs;
  options.nonce = "abc";
  CHECK(HawkAuthorizationHeader(kWorker, "GET", kUrl, options).ok());
  CHECK_FALSE(HawkAuthorizationHeader({"a\"b", "t", ""}, "GET", kUrl, options).ok());
  CHECK_FALSE(HawkAuthorizationHeader({"a\\b", "t", ""}, "GET", kUrl, options).ok());
  CHECK_FALSE(HawkAuthorizationHeader({"", "t", ""}, "GET", kUrl, options).ok());
  CHECK_FALSE(HawkAuthorizationHeader({"a", "", ""}, "GET", kUrl, options).ok());
  CHECK_FALSE(HawkAuthorizationHeader(kWorker, "GET", "ftp://h/", options).ok());
  CHECK_FALSE(HawkAuthorizationHeader(kWorker, "", kUrl, options).ok());
  CHECK_FALSE(HawkAuthorizationHeader(kWorker, "GET X", kUrl, options).ok());
  CHECK(HawkAuthorizationHeader(kWorker, "VERSION-CONTROL", kUrl, options).ok());
  for (const std::string nonce : {"", "a\"b", "a\\b", "a\nb"}) {
    options.nonce = nonce;
    CHECK_FALSE(HawkAuthorizationHeader(kWorker, "GET", kUrl, options).ok());
  }
  options.nonce = "abc";
  options.payload_hash = "x\"y";
  CHECK_FALSE(HawkAuthorizationHeader(kWorker, "GET", kUrl, options).ok());
  options.payload_hash.reset();
  options.ts = -1;
  CHECK_FALSE(HawkAuthorizationHeader(kWorker, "GET", kUrl, options).ok());
  // Signing errors never carry the token.
  auto bad = HawkAuthorizationHeader({"a\"b", "s3cr3t-token", ""}, "GET", kUrl, options);
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.status().message(), !Catch::Contains("s3cr3t-token"));
}

TEST_CASE("hawk: random URLs round-trip from signing to verification", "[unit]") {
  std::mt19937 rng(20250101);
  auto pick = [&](std::string_view from, size_t n) {
    std::string out;
    for (size_t i = 0; i < n; ++i) out += from[rng() % from.size()];
    return out;
  };
  const std::string unreserved =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
  Directory dir = VectorDirectory();
  const Credentials temp = CreateTemporaryCredentials(
                               {"def/ghi@XXX", "tokenABCDEFGH", ""}, "", {"scope/asd:fhjdf/*"},
                               kFixedTs * 1000, (kFixedTs + 600) * 1000, NewSlugId() + NewSlugId())
                               .value();
  for (int k = 0; k < 200; ++k) {
    const bool https = rng() % 2;
    const std::string host = pick("abcdefXYZ", 1 + rng() % 8) + ".Example.com";
    const int port = rng() % 3 == 0 ? static_cast<int>(1 + rng() % 65535) : 0;
    std::string path;
    for (size_t s = 1 + rng() % 4; s > 0; --s) {
      path += "/" + pick(unreserved, rng() % 10) + (rng() % 2 ? "%2F" : "") +
              pick(unreserved, 1 + rng() % 5);
    }
    std::string query = "q=" + pick(unreserved, rng() % 6) + "&r=%2F" + pick(unreserved, 3);
    const std::string url = std::string(https ? "https" : "http") + "://" + host +
                            (port ? ":" + std::to_string(port) : "") + path + "?" + query;
    INFO(url);
    const bool use_temp = k % 3 == 0;
    const std::string method = k % 2 ? "POST" : "GET";
    HawkSignOptions options;
    options.ts = kFixedTs + static_cast<int64_t>(rng() % 1000) - 500;
    options.nonce = pick(unreserved, 6);
    if (k % 5 == 0) {
      options.authorized_scopes =
          use_temp ? std::vector<std::string>{"scope/asd:fhjdf/a"}
                   : std::vector<std::string>{"queue:get-artifact:" + pick(unreserved, 4)};
    }
    auto header = HawkAuthorizationHeader(use_temp ? temp : kWorker, method, url, options);
    REQUIRE(header.ok());

    // The server's view, built independently of HawkTargetFromUrl.
    HawkRequest r;
    r.method = method;
    r.resource = path + "?" + query;
    for (char c : host) r.host += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.port = port ? port : (https ? 443 : 80);
    r.authorization = *header;
    auto id = HawkVerify(r, dir.Lookup(), kFixedTs);
    INFO((id.ok() ? "" : id.status().message()));
    REQUIRE(id.ok());
    CHECK(id->client_id == (use_temp ? "def/ghi@XXX" : kWorker.client_id));
    if (options.authorized_scopes) {
      CHECK(id->scopes == *options.authorized_scopes);
    } else {
      CHECK(id->scopes == (use_temp ? std::vector<std::string>{"scope/asd:fhjdf/*"}
                                    : std::vector<std::string>{"queue:*"}));
    }
  }
}

}  // namespace
}  // namespace docker_worker
