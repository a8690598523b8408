// Runs the built docker-worker binary (or any program) for end-to-end style tests.
//
// Start() forks and execs with extra environment variables and stdout/stderr redirected to
// files; Wait() reaps it and reports the exit code and the child's peak RSS (from wait4).
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

namespace docker_worker::testing {

struct ProcessResult {
  int exit_code = -1;  // 128 + signal when killed by a signal
  long max_rss_kb = 0;
};

class Subprocess {
 public:
  // `env` entries are set (or, with an empty value, unset) on top of this process's environment.
  Subprocess(std::vector<std::string> argv, std::map<std::string, std::string> env,
             std::string stdout_path, std::string stderr_path);
  ~Subprocess();
  void Signal(int sig);
  ProcessResult Wait();
  // False once the process has exited (it is then reaped; Wait() reports nothing more).
  bool Running();

 private:
  pid_t pid_ = -1;
};

// Convenience: run to completion.
ProcessResult RunProcess(std::vector<std::string> argv, std::map<std::string, std::string> env,
                         const std::string& stdout_path, const std::string& stderr_path);

// The docker-worker binary under test.
std::string WorkerBinary();

// The path of `program` found on $PATH, or "" when absent.
std::string FindProgram(const std::string& program);

}  // namespace docker_worker::testing
