// Private registries: which of the worker's credentials (config `registries`) apply to an image
// repository, and the X-Registry-Auth value that hands them to the engine for one pull.
//
// Upstream's lookup, with one deliberate difference. A repository of one component ("ubuntu")
// never authenticates. Otherwise the registry host is the first component when Docker would read
// it as one (it holds a "." or a ":", or is "localhost"), else `dockerConfig.defaultRegistry`
// (upstream always took the default for two components and the first component for three, and
// never authenticated four or more: `127.0.0.1:5000/app` looked for
// `registry.hub.docker.com/127.0.0.1:5000`). The user is the first path component after the
// host when more than one follows it. Keys: `host/user` (exact, wins), else `host/` or `host`.
//
// Pure functions over the configuration; safe from any thread. The returned header value holds
// the password: pass it to the engine and nowhere else.
#pragma once

#include <string>
#include <string_view>

#include "docker_worker/worker_config.h"

namespace docker_worker {

struct RegistryCredentialMatch {
  // The registry the repository is pulled from, as named in messages and config keys, e.g.
  // "127.0.0.1:5000" ("" for a one-component repository such as "ubuntu"), credentials or not.
  std::string registry;
  std::string key;       // the `registries` key that matched, e.g. "127.0.0.1:5000/team"
  const RegistryCredentials* credentials = nullptr;  // null: no credentials apply
};

// The credentials for `repository` (no tag or digest), if any key of `config.registries` matches.
RegistryCredentialMatch FindRegistryCredentials(std::string_view repository,
                                                const WorkerConfig& config);

// base64url(JSON {username, password, [email], serveraddress}), the engine's X-Registry-Auth.
std::string RegistryAuthHeader(const RegistryCredentials& credentials,
                               const std::string& server_address);

}  // namespace docker_worker
