# env-exec (src/env_exec/env_exec.c): a static launcher embedded in docker-worker and placed in
# containers of tasks with secret environment variables (see include/docker_worker/secret_env.h).
# Built with musl-gcc (about 30 KB) when present, else with the C compiler and -static (glibc,
# about 700 KB). Produces ${ENV_EXEC_BIN} and the source ${ENV_EXEC_EMBED_CC} embedding it.
find_program(MUSL_GCC musl-gcc)
if(MUSL_GCC)
  set(ENV_EXEC_CC ${MUSL_GCC})
else()
  find_program(ENV_EXEC_CC NAMES cc gcc REQUIRED)
  message(WARNING "musl-gcc not found (Debian package musl-tools): env-exec is linked "
                  "statically with glibc and is about 700 KB instead of 30 KB")
endif()
set(ENV_EXEC_SRC ${CMAKE_SOURCE_DIR}/src/env_exec/env_exec.c)
set(ENV_EXEC_BIN ${CMAKE_BINARY_DIR}/generated/env-exec)
add_custom_command(
  OUTPUT ${ENV_EXEC_BIN}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/generated
  COMMAND ${ENV_EXEC_CC} -std=c11 -Os -Wall -Wextra -static -s -o ${ENV_EXEC_BIN} ${ENV_EXEC_SRC}
  DEPENDS ${ENV_EXEC_SRC}
  COMMENT "Building the static env-exec launcher"
  VERBATIM)
add_custom_target(env_exec DEPENDS ${ENV_EXEC_BIN})
set(ENV_EXEC_EMBED_CC ${CMAKE_SOURCE_DIR}/src/env_exec/env_exec_binary.cc)
set_source_files_properties(${ENV_EXEC_EMBED_CC} PROPERTIES
  OBJECT_DEPENDS ${ENV_EXEC_BIN}
  COMPILE_DEFINITIONS "ENV_EXEC_BIN=\"${ENV_EXEC_BIN}\"")
