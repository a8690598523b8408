// The env-exec launcher (src/env_exec/env_exec.c), a static executable embedded in docker-worker
// at build time.
#pragma once

#include <string_view>

namespace docker_worker {

// Its bytes; valid for the life of the process.
std::string_view EnvExecBinary();

}  // namespace docker_worker
