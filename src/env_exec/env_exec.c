/* env-exec: the launcher the worker places in a task container whose task has secret
 * environment variables (payload.encryptedEnv), so that their values are never part of the
 * container's configuration (what `docker inspect` shows).
 *
 *   env-exec ENV_FILE PROGRAM [ARG...]
 *
 * ENV_FILE holds NAME=VALUE entries, each ended by a NUL byte. env-exec reads it, sets every
 * variable (replacing one of the same name), removes ENV_FILE, itself and their directory where
 * it may (so the values do not stay in the container's filesystem for artifacts to pick up), and
 * then executes PROGRAM with its ARGs, searching PATH as execvp does. It becomes the task's
 * process: signals, exit code and output are the program's own.
 *
 * Failures print one line "env-exec: <what>: <reason>" on stderr (never a value) and exit 127
 * (program or ENV_FILE not found, malformed ENV_FILE) or 126 (found, not executable).
 *
 * Built as a small static executable (musl where available) so that it runs in any image of the
 * host's architecture, with or without a C library or shell; embedded in docker-worker.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fail(int code, const char* what, const char* reason) {
  fprintf(stderr, "env-exec: %s: %s\n", what, reason);
  return code;
}

/* Reads the whole file; NULL with errno set on failure. */
static char* read_all(const char* path, size_t* length) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  size_t cap = 4096, len = 0;
  char* buf = malloc(cap);
  while (buf) {
    if (len == cap) {
      char* grown = realloc(buf, cap * 2);
      if (!grown) break;
      buf = grown;
      cap *= 2;
    }
    ssize_t n = read(fd, buf + len, cap - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    if (n == 0) {
      close(fd);
      *length = len;
      return buf;
    }
    len += (size_t)n;
  }
  int saved = errno ? errno : ENOMEM;
  free(buf);
  close(fd);
  errno = saved;
  return NULL;
}

int main(int argc, char** argv) {
  if (argc < 3) return fail(127, "usage", "env-exec ENV_FILE PROGRAM [ARG...]");
  const char* env_file = argv[1];
  size_t len = 0;
  char* entries = read_all(env_file, &len);
  if (!entries) return fail(127, env_file, strerror(errno));
  size_t start = 0;
  for (size_t i = 0; i < len; ++i) {
    if (entries[i] != '\0') continue;
    char* entry = entries + start;
    if (entry[0] == '=' || !strchr(entry, '=')) return fail(127, env_file, "malformed entry");
    if (putenv(entry) != 0) return fail(127, env_file, strerror(errno));
    start = i + 1;
  }
  if (start != len) return fail(127, env_file, "malformed entry");

  /* Best effort: a task running as an unprivileged user may not be allowed to. */
  unlink(env_file);
  unlink(argv[0]);
  char* dir = strdup(env_file);
  char* slash = dir ? strrchr(dir, '/') : NULL;
  if (slash && slash != dir) {
    *slash = '\0';
    rmdir(dir);
  }
  free(dir);

  execvp(argv[2], argv + 2);
  int error = errno;
  return fail(error == ENOENT ? 127 : 126, argv[2], strerror(error));
}
