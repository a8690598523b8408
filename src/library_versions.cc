#include "docker_worker/library_versions.h"

#include <archive.h>
#include <curl/curl.h>
#include <sodium.h>
#include <sqlite3.h>

#include <Poco/Version.h>
#include <cstring>

namespace docker_worker {

std::string LinkedLibraryVersions() {
  const curl_version_info_data* curl = curl_version_info(CURLVERSION_NOW);
  std::string out = std::string("libcurl ") + curl->version;
  if (curl->ssl_version) out += std::string(" (") + curl->ssl_version + ")";
  out += std::string(", ") + archive_version_string();
  out += std::string(", SQLite ") + sqlite3_libversion();
  out += std::string(", libsodium ") + sodium_version_string();
  out += ", Poco " + std::to_string(POCO_VERSION >> 24) + "." +
         std::to_string((POCO_VERSION >> 16) & 0xff) + "." + std::to_string((POCO_VERSION >> 8) & 0xff);
  return out;
}

std::string CurlCapabilityProblems() {
  const curl_version_info_data* curl = curl_version_info(CURLVERSION_NOW);
  std::string problems;
  auto need = [&](bool ok, const char* what) {
    if (ok) return;
    if (!problems.empty()) problems += ", ";
    problems += what;
  };
  bool http = false, https = false;
  for (const char* const* p = curl->protocols; *p; ++p) {
    if (std::strcmp(*p, "http") == 0) http = true;
    if (std::strcmp(*p, "https") == 0) https = true;
  }
  need(http, "the http protocol");
  need(https, "the https protocol");
  need(curl->features & CURL_VERSION_SSL, "TLS");
  need(curl->features & CURL_VERSION_UNIX_SOCKETS, "unix sockets");
  need(curl->features & CURL_VERSION_LIBZ, "gzip decoding");
  return problems.empty() ? "" : "libcurl lacks " + problems;
}

}  // namespace docker_worker
