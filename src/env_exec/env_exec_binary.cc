#include "docker_worker/env_exec_binary.h"

// The bytes of the env-exec executable built by cmake/env_exec.cmake (path in ENV_EXEC_BIN).
__asm__(
    ".section .rodata\n"
    ".balign 16\n"
    ".globl dw_env_exec_begin\n"
    ".hidden dw_env_exec_begin\n"
    "dw_env_exec_begin:\n"
    ".incbin \"" ENV_EXEC_BIN "\"\n"
    ".globl dw_env_exec_end\n"
    ".hidden dw_env_exec_end\n"
    "dw_env_exec_end:\n"
    ".previous\n");

extern "C" const char dw_env_exec_begin[];
extern "C" const char dw_env_exec_end[];

namespace docker_worker {

std::string_view EnvExecBinary() {
  return std::string_view(dw_env_exec_begin,
                          static_cast<size_t>(dw_env_exec_end - dw_env_exec_begin));
}

}  // namespace docker_worker
