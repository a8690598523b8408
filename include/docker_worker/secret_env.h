// Secret environment variables (the decrypted payload.encryptedEnv) given to a task container
// without making them part of the container's configuration, which `docker inspect`, the
// engine's logs and anyone with access to the engine can read.
//
// The container is created with the env-exec launcher (env_exec_binary.h) as its entrypoint:
//   Entrypoint [kSecretEnvDir/env-exec, kSecretEnvDir/env]
//   Cmd        image Entrypoint + (payload.command, or the image's Cmd when it is empty)
// which is the argv Docker would have run. Before the container starts, the worker uploads
// `archive` into "/" with the Engine API (PutArchive): the launcher (mode 0555), the variables
// as NAME=VALUE\0 entries (mode 0444, so any image user can read them) and their directory
// (0777, so any image user may remove them). The launcher sets the variables, removes the three
// and execs the command, which keeps PID 1, signals and the exit code of the task's own process.
#pragma once

#include <string>
#include <vector>

#include "docker_worker/docker_engine.h"
#include "docker_worker/encrypted_env.h"
#include "docker_worker/status.h"

namespace docker_worker {

inline constexpr char kSecretEnvDir[] = "/.taskcluster-secret-env";

struct SecretEnvLaunch {
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::string archive;  // tar for PutArchive(container, "/", archive)
};

// `secrets` must be non-empty, with names free of '=' and NUL and values free of NUL (as
// DecryptEncryptedEnv guarantees). kInvalidArgument "No command specified" when neither the
// image nor the payload gives a command (Docker's own refusal). The error never holds a value.
Result<SecretEnvLaunch> PrepareSecretEnv(const EnvVars& secrets, const ImageInfo& image,
                                         const std::vector<std::string>& command);

}  // namespace docker_worker
