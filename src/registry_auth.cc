#include "docker_worker/registry_auth.h"

#include <vector>

#include "docker_worker/base64.h"
#include "docker_worker/json.h"

namespace docker_worker {
namespace {

std::vector<std::string_view> Components(std::string_view repository) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start <= repository.size()) {
    size_t end = repository.find('/', start);
    if (end == std::string_view::npos) end = repository.size();
    if (end > start) parts.push_back(repository.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

// Docker's rule for whether the first component names a registry.
bool LooksLikeHost(std::string_view component) {
  return component.find_first_of(".:") != std::string_view::npos || component == "localhost";
}

}  // namespace

RegistryCredentialMatch FindRegistryCredentials(std::string_view repository,
                                                const WorkerConfig& config) {
  RegistryCredentialMatch match;
  auto parts = Components(repository);
  if (parts.size() < 2) return match;
  const bool explicit_host = LooksLikeHost(parts[0]);
  match.registry = explicit_host ? std::string(parts[0]) : config.default_registry;
  const size_t path_start = explicit_host ? 1 : 0;
  std::string user;
  if (parts.size() - path_start >= 2) user = parts[path_start];
  std::vector<std::string> keys;
  if (!user.empty()) keys.push_back(match.registry + "/" + user);
  keys.push_back(match.registry + "/");
  keys.push_back(match.registry);
  for (const std::string& key : keys) {
    auto it = config.registries.find(key);
    if (it == config.registries.end()) continue;
    match.key = key;
    match.credentials = &it->second;
    break;
  }
  return match;
}

std::string RegistryAuthHeader(const RegistryCredentials& credentials,
                               const std::string& server_address) {
  json::Document doc(rapidjson::kObjectType);
  auto& a = doc.GetAllocator();
  doc.AddMember("username", json::Str(credentials.username, a), a);
  doc.AddMember("password", json::Str(credentials.password, a), a);
  if (!credentials.email.empty()) doc.AddMember("email", json::Str(credentials.email, a), a);
  doc.AddMember("serveraddress", json::Str(server_address, a), a);
  // The engine decodes this header with Go's base64.URLEncoding (padded).
  return Base64Encode(json::Serialize(doc), Base64::kUrlSafe);
}

}  // namespace docker_worker
