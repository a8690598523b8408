#include "docker_worker/secret_env.h"

#include "docker_worker/env_exec_binary.h"
#include "docker_worker/tar_builder.h"

namespace docker_worker {

Result<SecretEnvLaunch> PrepareSecretEnv(const EnvVars& secrets, const ImageInfo& image,
                                         const std::vector<std::string>& command) {
  if (secrets.empty()) return Status(Code::kInvalidArgument, "no secret variables to deliver");
  SecretEnvLaunch launch;
  launch.cmd = image.entrypoint;
  const auto& args = command.empty() ? image.cmd : command;
  launch.cmd.insert(launch.cmd.end(), args.begin(), args.end());
  if (launch.cmd.empty()) return Status(Code::kInvalidArgument, "No command specified");

  const std::string dir = kSecretEnvDir;
  launch.entrypoint = {dir + "/env-exec", dir + "/env"};

  std::string entries;
  for (const auto& [name, value] : secrets) {
    if (name.empty() || name.find_first_of(std::string("=\0", 2)) != std::string::npos ||
        value.find('\0') != std::string::npos) {
      return Status(Code::kInvalidArgument, "a secret variable has a malformed name or value");
    }
    entries += name;
    entries += '=';
    entries += value;
    entries += '\0';
  }
  TarBuilder tar;
  const std::string base = dir.substr(1);  // relative to "/"
  tar.AddDir(base + "/", 0777);
  tar.AddFile(base + "/env-exec", EnvExecBinary(), 0555);
  tar.AddFile(base + "/env", entries, 0444);
  auto bytes = tar.Finish();
  if (!bytes.ok()) return bytes.status();
  launch.archive = std::move(*bytes);
  return launch;
}

}  // namespace docker_worker
